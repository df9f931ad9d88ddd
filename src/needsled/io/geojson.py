"""Read a GeoJSON file of area boundaries for the report's map (``--geojson PATH``).

The file must be a GeoJSON FeatureCollection of Polygon or MultiPolygon features in
longitude/latitude (WGS 84, as the GeoJSON standard requires). Everything wrong with it is
reported at once, as an :class:`~needsled.errors.InputError` naming the file, the feature and
the fix; the file itself is never modified. Matching the features to the model's areas and
simplifying them is :mod:`needsled.maps`'s job.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from needsled.errors import InputError, Problem
from needsled.io.atomic import write_text_atomic
from needsled.maps import simplify_collection

__all__ = ["BOUNDARIES_FILE", "load_boundaries", "read_geojson", "write_boundaries"]

#: The simplified boundaries a run folder keeps, so that ``needsled report`` redraws the map.
BOUNDARIES_FILE = "boundaries.geojson"
_EXPORT = (
    "export the boundaries again as GeoJSON in longitude/latitude (WGS 84, EPSG:4326), "
    "e.g. in QGIS with Export > Save Features As > GeoJSON"
)
_SHAPES = ("Polygon", "MultiPolygon")


def _name(feature: Any, index: int) -> str:
    props = feature.get("properties") if isinstance(feature, dict) else None
    if isinstance(props, dict):
        for value in props.values():
            if isinstance(value, str) and value.strip():
                return f"feature {index + 1} ({value})"
    return f"feature {index + 1}"


def _is_position(p: Any) -> bool:
    return (
        isinstance(p, list)
        and len(p) >= 2
        and all(isinstance(x, int | float) and not isinstance(x, bool) for x in p[:2])
    )


def _ring_problem(ring: Any) -> str | None:
    if not isinstance(ring, list) or not all(_is_position(p) for p in ring):
        return "has coordinates that are not lists of [longitude, latitude] numbers"
    if len(ring) < 4:
        return f"has a ring of {len(ring)} positions (a closed ring needs at least 4)"
    if any(abs(p[0]) > 180 or abs(p[1]) > 90 for p in ring):
        x, y = ring[0][0], ring[0][1]
        return (
            f"has coordinates such as [{x}, {y}] outside longitude/latitude: they look "
            "like metres on a projected grid (such as British National Grid, EPSG:27700)"
        )
    return None


def _geometry_problem(geometry: Any) -> str | None:
    if not isinstance(geometry, dict):
        return "has no geometry"
    kind = geometry.get("type")
    if kind not in _SHAPES:
        return f"has a {kind} geometry; the map needs Polygon or MultiPolygon boundaries"
    coords = geometry.get("coordinates")
    polygons = [coords] if kind == "Polygon" else coords
    if not isinstance(polygons, list) or not polygons:
        return "has no coordinates"
    for polygon in polygons:
        if not isinstance(polygon, list) or not polygon:
            return "has a polygon with no rings"
        for ring in polygon:
            problem = _ring_problem(ring)
            if problem:
                return problem
    return None


def _parse(path: Path) -> tuple[Any, list[Problem]]:
    file = str(path)
    if not path.exists():
        return None, [Problem(file, "does not exist", "give the path of a GeoJSON file")]
    if not path.is_file():
        return None, [Problem(file, "is a folder, not a file", "give the path of a GeoJSON file")]
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        return None, [Problem(file, f"is not UTF-8 text ({exc.reason})", _EXPORT)]
    except OSError as exc:
        return None, [Problem(file, f"cannot be read ({exc.strerror or exc})", _EXPORT)]
    try:
        return json.loads(text), []
    except json.JSONDecodeError as exc:
        return None, [
            Problem(
                file,
                f"is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}",
                _EXPORT,
            )
        ]


def read_geojson(path: str | Path) -> dict[str, Any]:
    """The FeatureCollection in ``path`` (raises InputError listing every problem)."""
    path = Path(path)
    data, problems = _parse(path)
    what = f"the GeoJSON file {path}"
    if problems:
        raise InputError(problems, what)
    file = str(path)
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        kind = data.get("type") if isinstance(data, dict) else type(data).__name__
        raise InputError(
            [Problem(file, f"is a {kind}, not a GeoJSON FeatureCollection", _EXPORT)], what
        )
    features = data.get("features")
    if not isinstance(features, list) or not features:
        raise InputError([Problem(file, "has no features", _EXPORT)], what)
    for i, feature in enumerate(features):
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            problems.append(Problem(file, f"{_name(feature, i)} is not a GeoJSON Feature", _EXPORT))
            continue
        props = feature.get("properties")
        if props is not None and not isinstance(props, dict):
            problems.append(
                Problem(file, f"{_name(feature, i)} has properties that are not an object", _EXPORT)
            )
        problem = _geometry_problem(feature.get("geometry"))
        if problem:
            problems.append(Problem(file, f"{_name(feature, i)} {problem}", _EXPORT))
    if problems:
        raise InputError(problems, what)
    return data


def load_boundaries(path: str | Path) -> dict[str, Any]:
    """The boundaries in a GeoJSON file, checked, simplified and rounded for the report;
    the collection's ``name`` is the file's name (the report says where the map came from)."""
    path = Path(path)
    collection = simplify_collection(read_geojson(path))
    collection["name"] = path.name
    return collection


def write_boundaries(collection: dict[str, Any], path: str | Path) -> Path:
    """Write (simplified) boundaries compactly, through a temporary file."""
    return write_text_atomic(path, json.dumps(collection, separators=(",", ":")))
