"""Where the areas are, for the report's map: a built-in tile map of London, or boundaries.

Two kinds of map, chosen by :func:`area_geometry`:

* **Tiles**: the 32 London boroughs and the City of London, one square each on an 8 x 6
  grid laid out by hand to keep neighbours next to each other (north at the top, the Thames
  between rows 3 and 4 in the middle). Used by itself whenever the model's area codes are
  London borough GSS codes (E09), so a London model gets a map with no extra file.
* **Boundaries**: the polygons of a GeoJSON FeatureCollection (lon/lat, as the GeoJSON
  standard says), matched to the model's areas by a property holding their codes if there is
  one, else by name (case, punctuation and "&"/"and" ignored), simplified and rounded so that
  the report stays small.

Nothing is dropped without a word: areas with no tile or polygon, and polygons that match no
area, are listed in :attr:`AreaGeometry.notes`, which the report prints beside the map.
This module is pure: reading a GeoJSON file is :mod:`needsled.io.geojson`'s job.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "LONDON_TILES",
    "AreaGeometry",
    "Tile",
    "area_geometry",
    "match_features",
    "normalise_name",
    "simplify_collection",
    "simplify_ring",
]


@dataclass(frozen=True)
class Tile:
    """One square of the tile map: ``col`` counts from the west, ``row`` from the north."""

    code: str
    name: str
    short: str
    col: int
    row: int


#: The London tile map: every London borough and the City of London once, by GSS code.
LONDON_TILES: tuple[Tile, ...] = (
    Tile("E09000003", "Barnet", "BRN", 2, 0),
    Tile("E09000010", "Enfield", "ENF", 3, 0),
    Tile("E09000015", "Harrow", "HRW", 1, 1),
    Tile("E09000005", "Brent", "BRT", 2, 1),
    Tile("E09000014", "Haringey", "HGY", 3, 1),
    Tile("E09000031", "Waltham Forest", "WTH", 4, 1),
    Tile("E09000026", "Redbridge", "RDB", 5, 1),
    Tile("E09000016", "Havering", "HAV", 6, 1),
    Tile("E09000017", "Hillingdon", "HDN", 0, 2),
    Tile("E09000009", "Ealing", "ELG", 1, 2),
    Tile("E09000007", "Camden", "CMD", 2, 2),
    Tile("E09000019", "Islington", "ISL", 3, 2),
    Tile("E09000012", "Hackney", "HCK", 4, 2),
    Tile("E09000025", "Newham", "NWM", 5, 2),
    Tile("E09000002", "Barking and Dagenham", "BKD", 6, 2),
    Tile("E09000018", "Hounslow", "HNS", 0, 3),
    Tile("E09000013", "Hammersmith and Fulham", "HMF", 1, 3),
    Tile("E09000020", "Kensington and Chelsea", "KNS", 2, 3),
    Tile("E09000033", "Westminster", "WSM", 3, 3),
    Tile("E09000001", "City of London", "CTY", 4, 3),
    Tile("E09000030", "Tower Hamlets", "TOW", 5, 3),
    Tile("E09000011", "Greenwich", "GRN", 6, 3),
    Tile("E09000004", "Bexley", "BXL", 7, 3),
    Tile("E09000027", "Richmond upon Thames", "RCH", 1, 4),
    Tile("E09000032", "Wandsworth", "WND", 2, 4),
    Tile("E09000022", "Lambeth", "LBH", 3, 4),
    Tile("E09000028", "Southwark", "SWK", 4, 4),
    Tile("E09000023", "Lewisham", "LSH", 5, 4),
    Tile("E09000021", "Kingston upon Thames", "KTN", 1, 5),
    Tile("E09000024", "Merton", "MRT", 2, 5),
    Tile("E09000029", "Sutton", "STN", 3, 5),
    Tile("E09000008", "Croydon", "CRD", 4, 5),
    Tile("E09000006", "Bromley", "BRM", 5, 5),
)
#: Coordinates are rounded to this many decimal places of a degree (about 11 m at London).
ROUND_DIGITS = 4
#: Douglas-Peucker tolerance in degrees: about 35 m east-west and 55 m north-south at
#: London's latitude, under a pixel on a 600-pixel-wide map of a city 45 km across.
SIMPLIFY_DEGREES = 0.0005


@dataclass(frozen=True)
class AreaGeometry:
    """What the map draws: ``kind`` is "tiles", "boundaries" or "none" (no map).

    ``tiles`` are the tiles of a tile map (every tile, including areas not in the model);
    ``features`` are GeoJSON features whose properties carry the model's ``area`` code and
    ``area_name``; ``notes`` say in plain words what could not be matched and why.
    """

    kind: str
    tiles: tuple[Tile, ...] = ()
    features: tuple[dict[str, Any], ...] = ()
    source: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)


def normalise_name(name: str) -> str:
    """A name reduced for matching: "Hammersmith & Fulham" and "hammersmith and fulham"
    agree, and so do "London, City of" and "City of London"."""
    text = name.strip().lower().replace("&", " and ")
    match = re.fullmatch(r"(.+),\s*(city|county|borough) of", text)
    if match:  # the ONS lookups' inverted form
        text = f"{match.group(2)} of {match.group(1)}"
    text = re.sub(r"^(london borough|royal borough) of ", "", text)
    return " ".join(re.sub(r"[^0-9a-z]+", " ", text).split())


def _listing(items: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _tile_map(areas: Mapping[str, str]) -> AreaGeometry | None:
    by_code = {t.code: t for t in LONDON_TILES}
    inside = [c for c in areas if c in by_code]
    if not inside:
        return None
    notes = []
    outside = [f"{areas[c]} ({c})" for c in areas if c not in by_code]
    if outside:
        notes.append(
            f"Not on the London tile map (no London borough code): {_listing(outside)}. "
            "Give their boundaries as a GeoJSON file (--geojson) to map them."
        )
    spare = [t.name for t in LONDON_TILES if t.code not in areas]
    if spare:
        notes.append(f"Grey tiles are not areas of this model: {_listing(spare)}.")
    return AreaGeometry(
        "tiles", tiles=LONDON_TILES, source="built-in London tile map", notes=tuple(notes)
    )


def _feature_label(feature: Mapping[str, Any], index: int) -> str:
    props = feature.get("properties") or {}
    texts = [str(v) for v in props.values() if isinstance(v, str) and v.strip()]
    return f"feature {index + 1} ({texts[0]})" if texts else f"feature {index + 1} (no name)"


def _string_properties(features: Sequence[Mapping[str, Any]]) -> list[str]:
    keys: dict[str, None] = {}
    for f in features:
        for k, v in (f.get("properties") or {}).items():
            if isinstance(v, str):
                keys[k] = None
    return list(keys)


def _best_key(
    features: Sequence[Mapping[str, Any]], keys: Sequence[str], wanted: set[str], norm: Any
) -> tuple[str | None, int]:
    best, hits = None, 0
    for key in keys:
        n = sum(
            1
            for f in features
            if isinstance((f.get("properties") or {}).get(key), str)
            and norm(f["properties"][key]) in wanted
        )
        if n > hits:
            best, hits = key, n
    return best, hits


def match_features(
    collection: Mapping[str, Any], areas: Mapping[str, str], source: str = "GeoJSON"
) -> AreaGeometry:
    """Features matched to the model's areas (code -> name).

    The property to match on is chosen from the data: a property whose values are the
    model's area codes if any has one, else the text property whose normalised values match
    the most area names. Each matched feature's properties become ``area``, ``area_name`` and
    ``feature_name``; features that match no area, and areas with no feature, are listed in
    the notes. Two features for one area are both kept (an area in two parts).
    """
    features = list(collection.get("features") or [])
    keys = _string_properties(features)
    key: str | None
    key, code_hits = _best_key(features, keys, set(areas), lambda s: s.strip())
    if key is not None and code_hits:
        by_code, lookup = True, {c: c for c in areas}
    else:
        by_name = {normalise_name(n): c for c, n in areas.items()}
        key, _ = _best_key(features, keys, set(by_name), normalise_name)
        by_code, lookup = False, by_name
    matched: list[dict[str, Any]] = []
    unmatched_features: list[str] = []
    for i, f in enumerate(features):
        raw = (f.get("properties") or {}).get(key) if key else None
        code = None
        if isinstance(raw, str):
            code = lookup.get(raw.strip() if by_code else normalise_name(raw))
        if code is None:
            unmatched_features.append(_feature_label(f, i))
            continue
        props = {"area": code, "area_name": areas[code], "feature_name": str(raw)}
        matched.append({"type": "Feature", "properties": props, "geometry": f["geometry"]})
    found = {f["properties"]["area"] for f in matched}
    missing = [f"{n} ({c})" for c, n in areas.items() if c not in found]
    how = (
        f"by the area code in property {key!r}"
        if by_code
        else f"by name in property {key!r}"
        if key
        else "by name, but no property of the features holds a matching name or code"
    )
    notes = [f"Boundaries from {source}: {len(found)} of {len(areas)} areas matched {how}."]
    if missing:
        notes.append(
            f"Areas with no boundary in {source} (not on the map): {_listing(missing)}. Add "
            "their polygons, or make a property of the features hold their code or name."
        )
    if unmatched_features:
        notes.append(
            f"Features in {source} that match no area of the model (not drawn): "
            f"{_listing(unmatched_features)}."
        )
    return AreaGeometry("boundaries", features=tuple(matched), source=source, notes=tuple(notes))


def area_geometry(
    areas: Mapping[str, str], boundaries: Mapping[str, Any] | None = None, source: str = ""
) -> AreaGeometry:
    """The map for these areas (code -> name): boundaries when given, else the London tile
    map when the areas are London boroughs, else no map (with a note saying why)."""
    if boundaries is not None:
        return match_features(boundaries, areas, source or "the GeoJSON file")
    tiles = _tile_map(areas)
    if tiles is not None:
        return tiles
    return AreaGeometry(
        "none",
        notes=(
            "No map: the areas are not London boroughs (the built-in tile map covers London "
            "only). Give the areas' boundaries as a GeoJSON file with --geojson to draw one.",
        ),
    )


def _perpendicular(points: NDArray[np.float64], a: int, b: int) -> NDArray[np.float64]:
    """Distances of points a..b from the straight line a-b."""
    p, q = points[a], points[b]
    seg = points[a : b + 1] - p
    d = q - p
    length = math.hypot(float(d[0]), float(d[1]))
    if length == 0.0:
        return np.asarray(np.hypot(seg[:, 0], seg[:, 1]), dtype=np.float64)
    return np.asarray(np.abs(seg[:, 0] * d[1] - seg[:, 1] * d[0]) / length, dtype=np.float64)


def simplify_ring(ring: Sequence[Sequence[float]], tolerance: float) -> list[list[float]]:
    """Douglas-Peucker simplification of a closed ring: keep the points more than
    ``tolerance`` from the simplified outline. A ring keeps at least four points (a closed
    triangle), so no polygon vanishes."""
    points = np.asarray(ring, dtype=np.float64)[:, :2]
    n = len(points)
    if n <= 4:
        return [[float(x), float(y)] for x, y in points]
    keep = np.zeros(n, dtype=bool)
    # split the ring at the point farthest from its start, so both halves are open lines
    far = int(np.argmax(np.hypot(*(points - points[0]).T)))
    keep[[0, far, n - 1]] = True
    stack = [(0, far), (far, n - 1)]
    while stack:
        a, b = stack.pop()
        if b - a < 2:
            continue
        dist = _perpendicular(points, a, b)
        i = int(np.argmax(dist[1:-1])) + 1
        if dist[i] > tolerance:
            keep[a + i] = True
            stack += [(a, a + i), (a + i, b)]
    if keep.sum() < 4:  # a tiny ring: keep its widest point as well
        inner = np.hypot(*(points - points[0]).T)
        inner[keep] = -1.0
        keep[int(np.argmax(inner))] = True
    return [[float(x), float(y)] for x, y in points[keep]]


def _simplify_polygon(
    rings: Sequence[Sequence[Sequence[float]]], tolerance: float, digits: int
) -> list[list[list[float]]]:
    return [
        [[round(x, digits), round(y, digits)] for x, y in simplify_ring(ring, tolerance)]
        for ring in rings
    ]


def simplify_collection(
    collection: Mapping[str, Any],
    tolerance: float = SIMPLIFY_DEGREES,
    digits: int = ROUND_DIGITS,
) -> dict[str, Any]:
    """A copy of a FeatureCollection of Polygons and MultiPolygons, simplified and rounded,
    keeping only the features' text and number properties."""
    out = []
    for f in collection.get("features") or []:
        geom = f["geometry"]
        if geom["type"] == "Polygon":
            coords: Any = _simplify_polygon(geom["coordinates"], tolerance, digits)
        else:
            coords = [_simplify_polygon(p, tolerance, digits) for p in geom["coordinates"]]
        props = {
            k: v
            for k, v in (f.get("properties") or {}).items()
            if isinstance(v, str | int | float) and not isinstance(v, bool)
        }
        out.append(
            {
                "type": "Feature",
                "properties": props,
                "geometry": {"type": geom["type"], "coordinates": coords},
            }
        )
    return {"type": "FeatureCollection", "features": out}
