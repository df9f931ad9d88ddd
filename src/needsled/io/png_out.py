"""Charts as slide-sized images: SVG for the PDF, PNG for slides (``needsled report --png``).

Each chart is the same Altair definition the HTML report embeds (:func:`needsled.report.
chart_specs`), restyled with :data:`needsled.charts.SLIDE_CONFIG` (large type) and rendered
by vl-convert, offline. :func:`slide_svgs` draws each to fill a 16:9 slide: the plot areas
get what the axes, titles and legends leave over (measured on a first drawing, so a second is
needed only when the first missed by more than :data:`SLIDE_TOLERANCE`). The PDF shows those
SVGs; a PNG is one of them centred on white at exactly ``SLIDE_WIDTH x SLIDE_HEIGHT`` pixels
times the scale. Maps keep their shape: they are scaled, never stretched.

vl-convert holds the interpreter lock while it draws, so PNG encoding can be handed to a
helper process; the images are the same either way.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import altair as alt

from needsled import charts
from needsled.io.report_worker import HelperStoppedError

__all__ = [
    "PAGE_TOLERANCE",
    "SLIDE_TOLERANCE",
    "PngBatch",
    "SlideSvg",
    "chart_filename",
    "encode_png_file",
    "fitted_svg",
    "render_png",
    "slide_spec",
    "slide_svg",
    "slide_svgs",
    "svg_to_png",
    "write_pngs",
]

_MIN_PANEL = 80.0  # px: a plot area never shrinks below this, however crowded the chart
_SVG_SIZE = re.compile(r'<svg[^>]*?\swidth="([\d.]+)"[^>]*?\sheight="([\d.]+)"')
#: How far (a share of the width or height) a chart may miss the 16:9 slide before it is
#: drawn again (a second drawing costs a quarter of a second or so): 4% for PNGs, which
#: then fill the slide but for a thin white margin; 15% when only the PDF wants the chart,
#: which scales each to its page.
SLIDE_TOLERANCE, PAGE_TOLERANCE = 0.04, 0.15


#: First guess at what a chart spends outside its plot areas on a slide, in px: a fixed part
#: (title, legend, axis titles) and a part per column or row of panels (axis labels, panel
#: headers, spacing), from the report's charts; a chart that misses is drawn again.
_MARGIN_W, _MARGIN_W_PER_COL = 260.0, 50.0
_MARGIN_H, _MARGIN_H_PER_ROW = 132.0, 158.0


@dataclass(frozen=True)
class SlideSvg:
    """A chart rendered once for a slide: its Vega-Lite spec, the SVG and the SVG's size."""

    spec: dict[str, Any]
    svg: str
    width: float
    height: float


def _merged(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out


def _grid(spec: Mapping[str, Any]) -> tuple[int, int]:
    """(columns, rows) of plot areas: a facet has one per value of its field(s)."""
    facet = spec.get("facet")
    if not isinstance(facet, Mapping):
        return 1, 1
    data = spec.get("data", {})
    values = spec.get("datasets", {}).get(data.get("name"), data.get("values", []))

    def count(field: Mapping[str, Any] | None) -> int:
        if not isinstance(field, Mapping) or "field" not in field:
            return 1
        return max(1, len({row.get(field["field"]) for row in values}))

    if "field" in facet:  # a wrapped facet
        n = count(facet)
        cols = min(n, int(spec.get("columns", n)))
        return cols, math.ceil(n / cols)
    return count(facet.get("column")), count(facet.get("row"))


def _keep_aspect(spec: Mapping[str, Any]) -> bool:
    meta = spec.get("usermeta")
    return isinstance(meta, Mapping) and bool(meta.get("needsled", {}).get("keep_aspect"))


def _set_panel(spec: dict[str, Any], width: float, height: float) -> None:
    target = spec["spec"] if "facet" in spec else spec
    target["width"] = round(max(width, _MIN_PANEL))
    target["height"] = round(max(height, _MIN_PANEL))


def _panel(spec: Mapping[str, Any]) -> tuple[float, float]:
    target = spec["spec"] if "facet" in spec else spec
    return float(target["width"]), float(target["height"])


def slide_spec(chart: alt.TopLevelMixin | Mapping[str, Any]) -> dict[str, Any]:
    """The chart's Vega-Lite spec with the slide config and a first guess at panel sizes."""
    base = chart if isinstance(chart, Mapping) else chart.to_dict()
    spec: dict[str, Any] = copy.deepcopy(dict(base))
    spec["config"] = _merged(spec.get("config", {}), charts.SLIDE_CONFIG)
    cols, rows = _grid(spec)
    room_w = (charts.SLIDE_WIDTH - _MARGIN_W) / cols - _MARGIN_W_PER_COL
    room_h = (charts.SLIDE_HEIGHT - _MARGIN_H) / rows - _MARGIN_H_PER_ROW
    if _keep_aspect(spec):
        pw, ph = _panel(spec)
        k = min(room_w / pw, room_h / ph)
        _set_panel(spec, pw * k, ph * k)
    else:
        _set_panel(spec, room_w, room_h)
    return spec


def _svg(spec: dict[str, Any]) -> SlideSvg:
    import vl_convert as vlc

    svg = str(vlc.vegalite_to_svg(spec))
    size = _SVG_SIZE.search(svg)
    if size is None:  # pragma: no cover - vl-convert always writes both
        raise RuntimeError("vl-convert wrote an SVG without a width and height")
    return SlideSvg(spec, svg, float(size.group(1)), float(size.group(2)))


def _fits(drawn: SlideSvg, width: float, height: float, tolerance: float) -> bool:
    """Within ``tolerance`` (a share) of the slide's width and height; a map (kept in
    shape) inside the slide and that near one of its sides."""
    w_ok = abs(drawn.width - width) <= tolerance * width
    h_ok = abs(drawn.height - height) <= tolerance * height
    if _keep_aspect(drawn.spec):
        inside = drawn.width <= 1.01 * width and drawn.height <= 1.01 * height
        return inside and (w_ok or h_ok)
    return w_ok and h_ok


def _margins(drawn: SlideSvg) -> tuple[float, float]:
    """What a drawing spends outside its plot areas (axes, titles, legend, spacing)."""
    cols, rows = _grid(drawn.spec)
    pw, ph = _panel(drawn.spec)
    return drawn.width - pw * cols, drawn.height - ph * rows


def _resized(
    spec: dict[str, Any], margins: tuple[float, float], width: float, height: float
) -> dict[str, Any]:
    """The spec with plot areas given whatever the margins leave of the slide."""
    out = copy.deepcopy(spec)
    cols, rows = _grid(out)
    room_w, room_h = (width - margins[0]) / cols, (height - margins[1]) / rows
    if _keep_aspect(out):
        pw, ph = _panel(out)
        k = min(room_w / pw, room_h / ph)
        _set_panel(out, pw * k, ph * k)
    else:
        _set_panel(out, room_w, room_h)
    return out


def _fit(drawn: SlideSvg, width: float, height: float, tolerance: float) -> SlideSvg:
    # the margins hardly change with the plot areas: give the plot areas what is left over,
    # then measure again
    if _fits(drawn, width, height, tolerance):
        return drawn
    return _svg(_resized(drawn.spec, _margins(drawn), width, height))


def slide_svg(chart: alt.TopLevelMixin | Mapping[str, Any]) -> SlideSvg:
    """The chart drawn to fill a 16:9 slide (a second drawing if the first missed)."""
    return _fit(_svg(slide_spec(chart)), charts.SLIDE_WIDTH, charts.SLIDE_HEIGHT, SLIDE_TOLERANCE)


def slide_svgs(
    specs: Mapping[str, alt.TopLevelMixin | Mapping[str, Any]],
    *,
    tolerance: float = SLIDE_TOLERANCE,
) -> dict[str, SlideSvg]:
    """Every chart drawn at slide size, drawn a second time to fit the 16:9 slide if the
    first missed by more than ``tolerance``. Charts of one kind (the same key up to its
    first "-", such as ``demand-baseline`` and ``demand-court-delays``) start from the
    margins measured on the first of them, so they seldom need a second drawing."""
    learned: dict[str, tuple[float, float]] = {}
    out = {}
    for key, chart in specs.items():
        kind = key.split("-", 1)[0]
        spec = slide_spec(chart)
        if kind in learned:
            spec = _resized(spec, learned[kind], charts.SLIDE_WIDTH, charts.SLIDE_HEIGHT)
        drawn = _fit(_svg(spec), charts.SLIDE_WIDTH, charts.SLIDE_HEIGHT, tolerance)
        learned[kind] = _margins(drawn)
        out[key] = drawn
    return out


def fitted_svg(
    drawn: SlideSvg, width: int = charts.SLIDE_WIDTH, height: int = charts.SLIDE_HEIGHT
) -> str:
    """An SVG of exactly ``width x height``: the chart centred on white (drawn again first
    if it was drawn for another size)."""
    if (width, height) != (charts.SLIDE_WIDTH, charts.SLIDE_HEIGHT):
        drawn = _fit(drawn, width, height, SLIDE_TOLERANCE)
    w, h = drawn.width, drawn.height
    fit = min(width / w, height / h, 1.0)
    x, y = (width - w * fit) / 2.0, (height - h * fit) / 2.0
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><rect width="{width}" height="{height}" fill="white"/>'
        f'<g transform="translate({x:.2f},{y:.2f}) scale({fit:.5f})">{drawn.svg}</g></svg>'
    )


def svg_to_png(svg: str, scale: float = 1.0) -> bytes:
    """Rasterise an SVG with vl-convert (a plain function, so a helper process can run it)."""
    import vl_convert as vlc

    return bytes(vlc.svg_to_png(svg, scale=scale))


def render_png(
    chart: alt.TopLevelMixin,
    *,
    width: int = charts.SLIDE_WIDTH,
    height: int = charts.SLIDE_HEIGHT,
    scale: float = 1.0,
) -> bytes:
    """One chart as a PNG of exactly ``width x height`` pixels times ``scale``."""
    drawn = _fit(_svg(slide_spec(chart)), width, height, SLIDE_TOLERANCE)
    return svg_to_png(fitted_svg(drawn, width, height), scale)


def chart_filename(key: str) -> str:
    """``demand-reports-up-20pc`` -> ``demand-reports-up-20pc.png`` (safe on any system)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", key).strip("._") + ".png"


class _Helper(Protocol):
    def submit(self, name: str, *args: Any, **kwargs: Any) -> Future[Any]: ...


def encode_png_file(svg: str, scale: float, path: Path) -> bool:
    """Write the PNG of ``svg`` at ``path`` unless it is there already (another process
    did it); True if this call wrote it."""
    if path.exists():
        return False
    data = svg_to_png(svg, scale)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return True


class PngBatch:
    """The PNGs of a set of slide SVGs, encoded by this process and a helper together.

    Made as soon as the SVGs are drawn: every chart is handed to the ``helper`` (if any),
    which works through them from the first when it has finished its other jobs. When this
    process has done its own work it calls :meth:`finish`, which encodes from the last chart
    backwards whatever the helper has not written yet, so neither waits for the other. The
    images go to a private folder first (a file there is a chart done, by whichever process)
    and into ``folder`` when all are done.
    """

    def __init__(
        self,
        svgs: Mapping[str, SlideSvg],
        folder: str | Path,
        *,
        scale: float = 1.0,
        helper: _Helper | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.work = Path(tempfile.mkdtemp(prefix=".png-", dir=self.folder))
        self.scale = scale
        self.jobs = [(chart_filename(key), fitted_svg(drawn)) for key, drawn in svgs.items()]
        self.futures: list[Future[Any]] = []
        if helper is not None:
            self.futures = [helper.submit("png", svg, scale, self.work / n) for n, svg in self.jobs]

    def finish(self) -> list[Path]:
        """Encode what is left, wait for the helper, move the PNGs into place (encoding here
        anything a helper that stopped did not write)."""
        try:
            for name, svg in reversed(self.jobs):
                encode_png_file(svg, self.scale, self.work / name)
            for future in self.futures:
                with contextlib.suppress(HelperStoppedError):
                    future.result()
            for name, svg in self.jobs:
                encode_png_file(svg, self.scale, self.work / name)
            paths = []
            for name, _ in self.jobs:
                os.replace(self.work / name, self.folder / name)
                paths.append(self.folder / name)
            return paths
        finally:
            shutil.rmtree(self.work, ignore_errors=True)


def write_pngs(
    svgs: Mapping[str, SlideSvg],
    folder: str | Path,
    *,
    scale: float = 1.0,
    helper: _Helper | None = None,
) -> list[Path]:
    """Every chart as ``folder/<chart>.png`` from its slide SVG; return the paths written
    (with a ``helper``, :class:`needsled.io.report_worker.Helper`, sharing the encoding)."""
    return PngBatch(svgs, folder, scale=scale, helper=helper).finish()
