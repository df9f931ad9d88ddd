"""The report's map: the built-in London tile map, and boundaries from a GeoJSON file.

Checked against the ONS borough codes and the real borough boundaries in the shared data
(``geo/london_boroughs.geojson``, whose features carry only a ``BOROUGH`` name).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr
from typer.testing import CliRunner

from needsled import charts
from needsled.cli import app
from needsled.errors import InputError
from needsled.example import write_example
from needsled.io.geojson import load_boundaries, read_geojson
from needsled.maps import (
    LONDON_TILES,
    area_geometry,
    match_features,
    normalise_name,
    simplify_collection,
    simplify_ring,
)

runner = CliRunner()
#: The example model's areas: the 32 London boroughs, without the City of London.
EXAMPLE_AREAS = {t.code: t.name for t in LONDON_TILES if t.code != "E09000001"}


@pytest.fixture(scope="module")
def boroughs(shared_data: Path) -> dict[str, Any]:
    return read_geojson(shared_data / "geo" / "london_boroughs.geojson")


def _area(ring: list[list[float]]) -> float:
    x, y = np.asarray(ring).T
    return float(abs((x[:-1] * y[1:] - x[1:] * y[:-1]).sum()) / 2.0)


def _centroid(ring: list[list[float]]) -> tuple[float, float]:
    x, y = np.asarray(ring).T
    cross = x[:-1] * y[1:] - x[1:] * y[:-1]
    a = cross.sum() / 2.0
    return (
        float(((x[:-1] + x[1:]) * cross).sum() / (6 * a)),
        float(((y[:-1] + y[1:]) * cross).sum() / (6 * a)),
    )


def test_tile_map_has_every_london_borough_once_on_its_own_tile() -> None:
    codes = [t.code for t in LONDON_TILES]
    # GSS codes E09000001 (City of London) to E09000033 are London's 33 local authorities
    assert sorted(codes) == [f"E09{n:06d}" for n in range(1, 34)]
    places = [(t.col, t.row) for t in LONDON_TILES]
    assert len(set(places)) == len(places), "two boroughs on one tile"
    assert all(0 <= c < 8 and 0 <= r < 6 for c, r in places)
    shorts = [t.short for t in LONDON_TILES]
    assert len(set(shorts)) == len(shorts)
    assert all(len(s) == 3 and s.isupper() for s in shorts)


def test_tile_names_are_the_ons_names(shared_data: Path) -> None:
    lookup = pd.read_csv(shared_data / "lookups" / "london_borough_codes.csv", dtype=str)
    assert {t.code: t.name for t in LONDON_TILES} == dict(
        zip(lookup["gss_code"], lookup["borough_name"], strict=True)
    )


def test_tile_map_is_roughly_geographic(boroughs: dict[str, Any]) -> None:
    """Tiles keep the boroughs' order west to east and north to south, and tiles side by
    side are boroughs close together (London is about 45 km across)."""
    centre = {
        f["properties"]["BOROUGH"]: _centroid(f["geometry"]["coordinates"][0])
        for f in boroughs["features"]
    }
    lon = [centre[t.name][0] for t in LONDON_TILES]
    lat = [centre[t.name][1] for t in LONDON_TILES]
    assert spearmanr([t.col for t in LONDON_TILES], lon)[0] > 0.95
    assert spearmanr([t.row for t in LONDON_TILES], lat)[0] < -0.95
    at = {(t.col, t.row): t for t in LONDON_TILES}
    for t in LONDON_TILES:
        for step in ((1, 0), (0, 1)):
            other = at.get((t.col + step[0], t.row + step[1]))
            if other is None:
                continue
            (x1, y1), (x2, y2) = centre[t.name], centre[other.name]
            km = math.hypot((x1 - x2) * 111.32 * math.cos(math.radians(51.5)), (y1 - y2) * 111.2)
            assert km < 15.0, (t.name, other.name, km)


def test_london_areas_get_the_tile_map_and_others_a_note() -> None:
    geo = area_geometry(EXAMPLE_AREAS)
    assert geo.kind == "tiles"
    assert geo.notes == ("Grey tiles are not areas of this model: City of London.",)
    mixed = area_geometry({**EXAMPLE_AREAS, "E06000001": "Hartlepool"})
    assert mixed.kind == "tiles"
    assert (
        "Not on the London tile map (no London borough code): Hartlepool (E06000001)"
        in (mixed.notes[0])
    )
    elsewhere = area_geometry({"E06000001": "Hartlepool", "E06000002": "Middlesbrough"})
    assert elsewhere.kind == "none"
    assert "No map: the areas are not London boroughs" in elsewhere.notes[0]
    assert charts.area_map(pd.DataFrame(), elsewhere, title="x") is None


def test_real_boundaries_match_all_32_boroughs_by_name(boroughs: dict[str, Any]) -> None:
    geo = match_features(boroughs, EXAMPLE_AREAS, "london_boroughs.geojson")
    assert geo.kind == "boundaries"
    assert sorted(f["properties"]["area"] for f in geo.features) == sorted(EXAMPLE_AREAS)
    for f in geo.features:
        assert f["properties"]["feature_name"] == EXAMPLE_AREAS[f["properties"]["area"]]
    assert geo.notes[0] == (
        "Boundaries from london_boroughs.geojson: 32 of 32 areas matched by name in "
        "property 'BOROUGH'."
    )
    # the file's City of London is not an area of the example: listed, not dropped silently
    assert geo.notes[1] == (
        "Features in london_boroughs.geojson that match no area of the model (not drawn): "
        "feature 7 (City of London)."
    )


def test_an_area_with_no_boundary_is_listed(boroughs: dict[str, Any]) -> None:
    areas = {**EXAMPLE_AREAS, "E09999999": "Atlantis"}
    geo = match_features(boroughs, areas, "london_boroughs.geojson")
    assert len(geo.features) == 32
    assert geo.notes[0].startswith("Boundaries from london_boroughs.geojson: 32 of 33 areas")
    assert (
        "Areas with no boundary in london_boroughs.geojson (not on the map): Atlantis "
        in (geo.notes[1])
    )
    assert "(E09999999)" in geo.notes[1]


def test_a_code_property_wins_over_names() -> None:
    square = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}

    def feature(code: str, name: str) -> dict[str, Any]:
        return {"type": "Feature", "properties": {"LAD": code, "NAME": name}, "geometry": square}

    collection = {
        "type": "FeatureCollection",
        "features": [
            feature("E09000007", "X"),
            feature("E09000019", "Y"),
            feature("W06000015", "Z"),
        ],
    }
    geo = match_features(collection, {"E09000007": "Camden", "E09000019": "Islington"})
    assert [f["properties"]["area"] for f in geo.features] == ["E09000007", "E09000019"]
    assert "matched by the area code in property 'LAD'" in geo.notes[0]
    assert "feature 3 (W06000015)" in geo.notes[1]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("Hammersmith & Fulham", "hammersmith and fulham"),
        ("  KENSINGTON AND CHELSEA ", "kensington and chelsea"),
        ("London, City of", "city of london"),
        ("Royal Borough of Greenwich", "greenwich"),
        ("Richmond-upon-Thames", "richmond upon thames"),
    ],
)
def test_normalise_name(given: str, expected: str) -> None:
    assert normalise_name(given) == expected


def test_simplify_ring_by_hand() -> None:
    # points on the sides of a unit square (and a 0.001 wobble) reduce to its corners
    ring = [[0, 0], [0.5, 0.001], [1, 0], [1, 0.5], [1, 1], [0.5, 1], [0, 1], [0, 0.5], [0, 0]]
    assert simplify_ring(ring, 0.01) == [[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]
    # a spike farther out than the tolerance stays
    spiky = [[0, 0], [0.5, 0.2], [1, 0], [1, 1], [0, 1], [0, 0]]
    assert [0.5, 0.2] in simplify_ring(spiky, 0.01)
    # a ring never falls below a closed triangle
    assert len(simplify_ring([[0, 0], [1e-9, 0], [1e-9, 1e-9], [0, 1e-9], [0, 0]], 1.0)) >= 4


def test_simplified_boroughs_are_small_and_keep_their_shape(boroughs: dict[str, Any]) -> None:
    small = simplify_collection(boroughs)
    assert len(json.dumps(small)) < len(json.dumps(boroughs)) / 20
    for before, after in zip(boroughs["features"], small["features"], strict=True):
        ring0 = before["geometry"]["coordinates"][0]
        ring1 = after["geometry"]["coordinates"][0]
        assert ring1[0] == ring1[-1], "ring no longer closed"
        assert _area(ring1) == pytest.approx(_area(ring0), rel=0.01)
        assert all(round(v, 4) == v for p in ring1 for v in p)
        assert after["properties"] == before["properties"]


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_bad_json_is_one_clear_problem(tmp_path: Path) -> None:
    bad = _write(tmp_path / "areas.geojson", '{"type": "FeatureCollection",\n "features": [}')
    with pytest.raises(InputError) as caught:
        read_geojson(bad)
    (problem,) = caught.value.problems
    assert problem.file == str(bad)
    assert "is not valid JSON" in problem.message
    assert "line 2" in problem.message
    assert "GeoJSON" in problem.fix


def test_every_bad_feature_is_listed_at_once(tmp_path: Path) -> None:
    features = [
        {"type": "Feature", "properties": {"name": "Dot"}, "geometry": {"type": "Point"}},
        {
            "type": "Feature",
            "properties": {"name": "Metres"},
            "geometry": {
                "type": "Polygon",
                "coordinates": [
                    [[530000, 180000], [531000, 180000], [531000, 181000], [530000, 180000]]
                ],
            },
        },
        {"type": "Feature", "properties": {"name": "Bare"}, "geometry": None},
    ]
    bad = _write(
        tmp_path / "areas.geojson", json.dumps({"type": "FeatureCollection", "features": features})
    )
    with pytest.raises(InputError) as caught:
        read_geojson(bad)
    messages = [p.message for p in caught.value.problems]
    assert len(messages) == 3
    assert "feature 1 (Dot) has a Point geometry" in messages[0]
    assert "feature 2 (Metres) has coordinates such as [530000, 180000]" in messages[1]
    assert "British National Grid" in messages[1]
    assert "feature 3 (Bare) has no geometry" in messages[2]
    assert all("EPSG:4326" in p.fix for p in caught.value.problems)


def test_not_a_feature_collection(tmp_path: Path) -> None:
    bad = _write(tmp_path / "one.geojson", '{"type": "Feature", "geometry": null}')
    with pytest.raises(InputError, match="is a Feature, not a GeoJSON FeatureCollection"):
        read_geojson(bad)
    with pytest.raises(InputError, match="does not exist"):
        read_geojson(tmp_path / "missing.geojson")


def test_load_boundaries_names_its_source(shared_data: Path) -> None:
    small = load_boundaries(shared_data / "geo" / "london_boroughs.geojson")
    assert small["name"] == "london_boroughs.geojson"
    assert len(small["features"]) == 33


def test_boundary_map_carries_values_and_labels(boroughs: dict[str, Any]) -> None:
    geo = match_features(simplify_collection(boroughs), EXAMPLE_AREAS, "london")
    values = pd.DataFrame(
        {
            "area": list(EXAMPLE_AREAS),
            "area_name": list(EXAMPLE_AREAS.values()),
            "value": np.arange(32, dtype=float),
        }
    )
    values["label"] = [f"{v:.0f} FTE" for v in values["value"]]
    spec = charts.area_map(values, geo, title="Staff short").to_dict()  # type: ignore[union-attr]
    (features,) = spec["datasets"].values()
    got = {f["properties"]["area"]: f["properties"]["value"] for f in features}
    assert got == dict(zip(values["area"], values["value"], strict=True))
    assert spec["layer"][1]["mark"]["type"] == "geoshape"
    assert spec["projection"]["type"] == "mercator"


def test_run_with_a_bad_geojson_stops_before_running(tmp_path: Path) -> None:
    model = write_example(tmp_path / "model")
    bad = _write(tmp_path / "areas.geojson", "not json")
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["run", str(model), "--out", str(out), "--geojson", str(bad), "--replicates", "2"]
    )
    assert result.exit_code == 1
    assert str(bad) in result.output
    said = " ".join(result.output.split())  # the console wraps long lines
    assert "is not valid JSON" in said
    assert "Traceback" not in said
    assert not out.exists()
