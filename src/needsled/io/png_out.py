"""Charts as PNG images sized for a slide (``needsled report RUN_DIR --png``).

Each chart is the same Altair definition the HTML report embeds (:func:`needsled.report.
chart_specs`), restyled with :data:`needsled.charts.SLIDE_CONFIG` (large type) and rendered
by vl-convert, offline. Every image is exactly ``SLIDE_WIDTH x SLIDE_HEIGHT`` pixels times the
scale: the plot areas are sized so that the chart fills a 16:9 slide (one measuring pass, then
the real one), and whatever is left over is white margin around the centred chart.
"""

from __future__ import annotations

import copy
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import altair as alt

from needsled import charts
from needsled.report import ReportInputs, chart_specs

__all__ = ["chart_filename", "render_png", "slide_spec", "write_pngs"]

_MIN_PANEL = 80.0  # px: a plot area never shrinks below this, however crowded the chart
_SVG_SIZE = re.compile(r'<svg[^>]*?\swidth="([\d.]+)"[^>]*?\sheight="([\d.]+)"')


def _merged(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out


def _grid(spec: Mapping[str, Any]) -> tuple[int, int]:
    """(columns, rows) of plot areas: a wrapped facet has one per value of its field."""
    facet = spec.get("facet")
    if not isinstance(facet, Mapping) or "field" not in facet:
        return 1, 1
    data = spec.get("data", {})
    values = spec.get("datasets", {}).get(data.get("name"), data.get("values", []))
    n = max(1, len({row.get(facet["field"]) for row in values}))
    cols = min(n, int(spec.get("columns", n)))
    return cols, math.ceil(n / cols)


def _set_panel(spec: dict[str, Any], width: float, height: float) -> None:
    target = spec["spec"] if "facet" in spec else spec
    target["width"] = round(max(width, _MIN_PANEL))
    target["height"] = round(max(height, _MIN_PANEL))


def _panel(spec: Mapping[str, Any]) -> tuple[float, float]:
    target = spec["spec"] if "facet" in spec else spec
    return float(target["width"]), float(target["height"])


def slide_spec(chart: alt.TopLevelMixin) -> dict[str, Any]:
    """The chart's Vega-Lite spec with the slide config and a first guess at panel sizes."""
    spec: dict[str, Any] = copy.deepcopy(chart.to_dict())
    spec["config"] = _merged(spec.get("config", {}), charts.SLIDE_CONFIG)
    cols, rows = _grid(spec)
    _set_panel(
        spec,
        charts.SLIDE_WIDTH / cols - 150.0,
        (charts.SLIDE_HEIGHT - 180.0) / rows - 60.0,
    )
    return spec


def _svg(spec: dict[str, Any]) -> tuple[str, float, float]:
    import vl_convert as vlc

    svg = str(vlc.vegalite_to_svg(spec))
    size = _SVG_SIZE.search(svg)
    if size is None:  # pragma: no cover - vl-convert always writes both
        raise RuntimeError("vl-convert wrote an SVG without a width and height")
    return svg, float(size.group(1)), float(size.group(2))


def render_png(
    chart: alt.TopLevelMixin,
    *,
    width: int = charts.SLIDE_WIDTH,
    height: int = charts.SLIDE_HEIGHT,
    scale: float = 1.0,
) -> bytes:
    """One chart as a PNG of exactly ``width x height`` pixels times ``scale``."""
    import vl_convert as vlc

    spec = slide_spec(chart)
    svg, w, h = _svg(spec)
    if abs(w - width) > 0.01 * width or abs(h - height) > 0.01 * height:
        # the margins (axes, titles, legend) hardly change with the plot area: give the
        # plot areas what is left over, then measure again
        cols, rows = _grid(spec)
        pw, ph = _panel(spec)
        _set_panel(spec, pw + (width - w) / cols, ph + (height - h) / rows)
        svg, w, h = _svg(spec)
    fit = min(width / w, height / h, 1.0)
    x, y = (width - w * fit) / 2.0, (height - h * fit) / 2.0
    framed = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><rect width="{width}" height="{height}" fill="white"/>'
        f'<g transform="translate({x:.2f},{y:.2f}) scale({fit:.5f})">{svg}</g></svg>'
    )
    return bytes(vlc.svg_to_png(framed, scale=scale))


def chart_filename(key: str) -> str:
    """``demand-reports-up-20pc`` -> ``demand-reports-up-20pc.png`` (safe on any system)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", key).strip("._") + ".png"


def write_pngs(inp: ReportInputs, folder: str | Path, *, scale: float = 1.0) -> list[Path]:
    """Every chart in the report as ``folder/<chart>.png``; return the paths written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for key, chart in chart_specs(inp).items():
        path = folder / chart_filename(key)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(render_png(chart, scale=scale))
        os.replace(tmp, path)
        paths.append(path)
    return paths
