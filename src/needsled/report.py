"""The run report: one self-contained HTML file that works offline (no CDN, no network), and
the same report as a PDF.

Vega, Vega-Lite and Vega-Embed come from the installed ``vl-convert-python`` package and are
inlined once; each chart is a Vega-Lite spec from :mod:`needsled.charts`. For the PDF the same
template is rendered with each chart as an SVG image (rendered by vl-convert, passed in by the
caller) in place of the script, and print CSS lays it out on landscape A4 pages.
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache, cached_property
from importlib import resources
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import altair as alt
import jinja2
import numpy as np
import pandas as pd

from needsled import __version__, charts
from needsled.maps import AreaGeometry, area_geometry
from needsled.privacy import LEGEND
from needsled.results import ALL_AREAS

if TYPE_CHECKING:
    from needsled.returns.compare import Comparison

__all__ = [
    "ACTUAL_ROWS",
    "ReportInputs",
    "actual_section",
    "area_values",
    "chart_specs",
    "chart_titles",
    "figures",
    "headline",
    "headline_lines",
    "map_geometry",
    "render_html",
    "vega_bundle",
]


@dataclass(frozen=True)
class ReportInputs:
    """What the report needs: the run's tables and a little about the run.

    ``boundaries`` is a simplified GeoJSON FeatureCollection of the areas (from ``--geojson``;
    its ``name`` member is the file it came from), or None for the built-in tile map.
    ``actual`` is the providers' returns set against scenario ``actual_scenario``
    (:func:`needsled.returns.compare.compare`), or None for a report without returns (which
    is then exactly as it was before returns could be added).
    """

    model_name: str
    results: pd.DataFrame
    summary: pd.DataFrame
    waterfall: pd.DataFrame
    queueing: pd.DataFrame
    observed: pd.DataFrame
    assumptions: pd.DataFrame
    manifest: dict[str, object]
    area_names: dict[str, str]
    service_names: dict[str, str]
    suppressed: bool = True
    boundaries: Mapping[str, Any] | None = None
    actual: Comparison | None = None
    actual_scenario: str = ""

    @cached_property
    def everywhere(self) -> pd.DataFrame:
        """The results for all areas together (every chart and headline uses these), with
        text columns as plain strings: a few thousand rows instead of the whole table."""
        res = self.results
        rows = res.loc[res["area"] == ALL_AREAS]
        text = [c for c in ("scenario", "area", "service", "month", "metric") if c in rows]
        return rows.astype(dict.fromkeys(text, str)).reset_index(drop=True)

    @cached_property
    def scenarios(self) -> list[str]:
        """Scenario names in the order they were run."""
        return [str(s) for s in pd.unique(self.everywhere["scenario"])]

    @cached_property
    def headlines(self) -> dict[str, list[str]]:
        """The headline sentences of every scenario (:func:`headline`)."""
        return {sc: headline(self, sc) for sc in self.scenarios}

    @cached_property
    def target_waits(self) -> dict[str, float]:
        """Each service's target wait in weeks, from the assumptions table."""
        out: dict[str, float] = {}
        rows = self.assumptions
        if not {"item", "value"} <= set(rows.columns):
            return out
        for item, value in zip(rows["item"].astype(str), rows["value"].astype(str), strict=True):
            found = re.fullmatch(r"target_wait_weeks \((.+)\)", item.strip())
            if found is None:
                continue
            with contextlib.suppress(ValueError):  # "4 (80%: 3-5)": the point value first
                out[found.group(1)] = float(value.split()[0])
        return out

    @cached_property
    def last_year(self) -> str:
        """The last April-to-March year of the projection: the headline year."""
        return str(self.summary["year"].astype(str).max())


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "needsled"


@cache
def vega_bundle() -> str:
    """Vega, Vega-Lite and Vega-Embed as one script, from the installed vl-convert.

    Bundling takes vl-convert a second or two and gives the same script every time for one
    version of it, so the script is kept in the user's cache folder
    (``$XDG_CACHE_HOME/needsled``, else ``~/.cache/needsled``) and read from there next
    time; where that folder cannot be written it is simply made again.
    """
    import vl_convert as vlc

    path = _cache_dir() / f"vega-bundle-vl-convert-{version('vl-convert-python')}.js"
    try:
        text = path.read_text(encoding="utf-8")
        if "vegaEmbed" in text:
            return text
    except OSError:
        pass
    text = str(vlc.javascript_bundle(None))  # type: ignore[arg-type]  # stub says str; None = default
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass
    return text


def _sig(x: float, digits: int = 2) -> float:
    """``x`` to ``digits`` significant figures (a projection's sensible precision: the
    headline says 3,400 (1,200-5,900), not 3,446 (1,199-5,946))."""
    if not math.isfinite(x) or x == 0:
        return x
    return round(x, digits - 1 - math.floor(math.log10(abs(x))))


def _fmt(x: float) -> str:
    """A projected count or FTE in words: two significant figures, one decimal under 10."""
    v = _sig(float(x))
    return f"{v:,.1f}" if abs(v) < 10 and v != int(v) else f"{v:,.0f}"


def _money(x: float) -> str:
    v = _sig(float(x))
    if abs(v) >= 1e6:
        return f"£{v / 1e6:,.1f}m".replace(".0m", "m")
    return f"£{v / 1e3:,.0f}k"


Figures = dict[tuple[str, str], dict[str, float]]


def figures(cols: pd.DataFrame | Mapping[str, Any], sel: Any) -> Figures:
    """The selected rows' mean, p10 and p90 by (service, metric), from a table's columns
    (a DataFrame, or arrays by column name)."""
    picked = [np.asarray(cols[k])[sel] for k in ("service", "metric", "mean", "p10", "p90")]
    return {
        (str(s), str(m)): {"mean": float(a), "p10": float(lo), "p90": float(hi)}
        for s, m, a, lo, hi in zip(*picked, strict=True)
    }


def headline(inp: ReportInputs, scenario: str) -> list[str]:
    """Plain-words sentences: per service, the waiting list at the end and the gap to close."""
    res, summ = inp.everywhere, inp.summary
    last = str(res["month"].max())
    sel = ((res["scenario"] == scenario) & (res["month"] == last)).to_numpy(bool)
    ysel = (
        (summ["scenario"] == scenario)
        & (summ["area"] == ALL_AREAS)
        & (summ["year"] == inp.last_year)
    ).to_numpy(bool)
    services = list(dict.fromkeys(str(s) for s in res["service"].to_numpy()[sel]))
    return headline_lines(
        figures(res, sel), figures(summ, ysel), services, last, inp.last_year, inp.service_names
    )


def headline_lines(
    ends: Figures,
    year: Figures,
    services: list[str],
    last_month: str,
    last_year: str,
    service_names: Mapping[str, str],
) -> list[str]:
    """:func:`headline`'s sentences from its figures: ``ends``, each service's figures in
    the last month (``last_month``, "YYYY-MM"), and ``year``, those of the year
    ``last_year``, by (service, metric); ``services`` in the order they come in the tables.
    The most costly gap comes first."""
    when = pd.Period(last_month, "M").strftime("%B %Y")
    out = []
    cost = {s: f["mean"] for (s, m), f in year.items() if m == "cost_shortfall"}
    ranked = sorted(services, key=lambda s: -float(cost.get(s, 0.0)))
    for svc in ranked:
        name = service_names.get(svc, svc)
        fte = year[(svc, "fte_shortfall")]
        money = year[(svc, "cost_shortfall")]
        if (svc, "waiting") in ends and ends[(svc, "waiting")]["mean"] > 0:
            w = ends[(svc, "waiting")]
            lead = (
                f"By {when} the {name} waiting list reaches {_fmt(w['mean'])} "
                f"({_fmt(w['p10'])}–{_fmt(w['p90'])})"
            )
        else:
            c = ends[(svc, "caseload_per_fte")]
            lead = (
                f"By {when} {name} caseloads reach {_fmt(c['mean'])} open cases per FTE "
                f"({_fmt(c['p10'])}–{_fmt(c['p90'])})"
            )
        if fte["mean"] >= 0.05:
            gap = (
                f"closing the gap needs {_fmt(fte['mean'])} more FTE "
                f"({_fmt(fte['p10'])}–{_fmt(fte['p90'])}), {_money(money['mean'])} a year"
            )
        else:
            gap = "staffing meets the target wait"
        out.append(f"{lead}; {gap} in {last_year}.")
    return out


def area_values(inp: ReportInputs, scenario: str, year: str) -> pd.DataFrame:
    """The map's value per area: FTE short of what the target wait needs, all services
    together, in one year (average over replicates). Columns ``area, area_name, value,
    label``, as :func:`needsled.charts.area_map` takes them."""
    s = inp.summary
    sel = (
        (s["metric"] == "fte_shortfall")
        & (s["scenario"] == scenario)
        & (s["year"] == year)
        & (s["area"] != ALL_AREAS)
    )
    by_area = s.loc[sel].astype({"area": str}).groupby("area", sort=False)["mean"].sum()
    out = pd.DataFrame({"area": by_area.index.astype(str), "value": by_area.to_numpy(float)})
    out["area_name"] = out["area"].map(inp.area_names).fillna(out["area"])
    out["label"] = [f"{v:,.1f} FTE" for v in out["value"]]
    return out[["area", "area_name", "value", "label"]]


def map_geometry(inp: ReportInputs) -> AreaGeometry:
    """Boundaries from the run folder if it has them, else the London tile map, else none."""
    source = str((inp.boundaries or {}).get("name") or "the GeoJSON file")
    return area_geometry(inp.area_names, inp.boundaries, source)


def chart_specs(inp: ReportInputs) -> dict[str, alt.TopLevelMixin]:
    """Every chart in the report by key (its element is ``chart-<key>``); also the PNGs."""
    first, year, names = inp.scenarios[0], inp.last_year, inp.service_names
    res = inp.everywhere
    specs: dict[str, alt.TopLevelMixin] = {
        "waiting": charts.waiting_list(res, names),
    }
    waits = charts.waits(res, inp.target_waits, names)
    if waits is not None:
        specs["waits"] = waits
    specs |= {
        "scenario-shortfall": charts.scenario_shortfall(inp.summary, year, names),
        "shortfall": charts.shortfall_by_area(inp.summary, first, year, inp.area_names, names),
    }
    area_map = charts.area_map(
        area_values(inp, first, year),
        map_geometry(inp),
        title=f"Staff short by area, {year} ({first})",
        subtitle="FTE short of what the target wait needs, all services, average",
        value_title="FTE short",
    )
    if area_map is not None:
        specs["map"] = area_map
    for sc in inp.scenarios:
        specs[f"demand-{sc}"] = charts.demand_capacity(res, sc, names)
    specs["waterfall"] = charts.waterfalls(inp.waterfall, inp.scenarios)
    if inp.actual is not None:
        actual = charts.actual_vs_model(inp.actual.table, names)
        if actual is not None:
            specs["actual"] = actual
    return specs


def chart_titles(specs: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """Each chart's title as text, from its Vega-Lite spec (the PDF's image descriptions)."""
    out = {}
    for key, spec in specs.items():
        title = spec.get("title", key)
        text = title.get("text", key) if isinstance(title, Mapping) else title
        out[key] = " ".join(text) if isinstance(text, list) else str(text)
    return out


@cache
def _template() -> jinja2.Template:
    return jinja2.Environment(
        loader=jinja2.FunctionLoader(
            lambda n: resources.files("needsled.templates").joinpath(n).read_text(encoding="utf-8")
        ),
        autoescape=True,
    ).get_template("report.html.j2")


def render_html(
    inp: ReportInputs,
    specs: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    svgs: Mapping[str, str] | None = None,
    bundle: str | None = None,
) -> str:
    """The whole report as one HTML string.

    With ``svgs`` (chart key -> SVG text), the page is the PDF's: each chart is its SVG as an
    image and there is no script; otherwise each chart is drawn by the inlined Vega-Embed
    (``bundle``, :func:`vega_bundle` if not given). ``specs`` (chart key -> Vega-Lite spec,
    as :func:`chart_specs` gives them, made into dicts) saves building the charts again.
    """
    if specs is None:
        specs = {k: c.to_dict() for k, c in chart_specs(inp).items()}
    pdf = svgs is not None
    images = {
        k: "data:image/svg+xml;base64," + base64.b64encode(v.encode("utf-8")).decode("ascii")
        for k, v in (svgs or {}).items()
    }
    qsel = inp.queueing["statement"].str.startswith("grows")
    return _template().render(
        title=f"needsled: {inp.model_name}",
        version=__version__,
        manifest=inp.manifest,
        headlines=inp.headlines,
        scenarios=inp.scenarios,
        first=inp.scenarios[0],
        year=inp.last_year,
        pdf=pdf,
        charts=set(specs),
        images=images,
        alt_text=chart_titles(specs),
        specs="" if pdf else json.dumps(specs).replace("</", "<\\/"),
        bundle="" if pdf else (bundle or vega_bundle()).replace("</script", "<\\/script"),
        map_notes=map_geometry(inp).notes,
        queue_rows=inp.queueing.loc[qsel].head(40).to_dict("records"),
        queue_count=int(qsel.sum()),
        scenario_table=_scenario_table(inp, inp.scenarios, inp.last_year),
        observed=inp.observed,
        assumptions=inp.assumptions.to_dict("records"),
        suppressed=inp.suppressed,
        service_names=inp.service_names,
        actual=actual_section(inp),
    )


#: The most rows of the flagged-figures table in the report (the rest are in the CSV file).
ACTUAL_ROWS = 40
#: The most sentences of the plain-words summary in the report.
ACTUAL_LINES = 12
_MEASURE_WORDS = {
    "referrals": "Referrals",
    "starts": "Started support",
    "left_waiting_list": "Left the waiting list",
    "closures": "Closures",
    "open_end": "Open cases at quarter end",
    "waiting_end": "Waiting list at quarter end",
}


def actual_section(inp: ReportInputs) -> dict[str, Any] | None:
    """The report's section on what providers returned against the model: the summary in
    plain words, and the figures outside the model's 80% band (all areas together first,
    then by how far outside), or None when the report has no returns. Actual counts come as
    the comparison shows them (small ones already hidden); model figures are rounded."""
    if inp.actual is None:
        return None
    c = inp.actual
    t = c.table
    outside = t.loc[t["flag"].isin(["above", "below"])].copy()

    def distance(r: pd.Series) -> float:
        actual = pd.to_numeric(r["actual"], errors="coerce")
        if pd.isna(actual):
            return 0.0
        edge = float(r["model_p90"] if r["flag"] == "above" else r["model_p10"])
        return abs(float(actual) - edge) / max(1.0, float(r["model_p90"]) - float(r["model_p10"]))

    outside["_all"] = outside["area"] != ALL_AREAS
    outside["_far"] = [-distance(r) for _, r in outside.iterrows()] if len(outside) else []
    outside = outside.sort_values(["_all", "_far", "service", "area", "quarter", "measure"])
    rows = [
        {
            "service": inp.service_names.get(str(r["service"]), str(r["service"])),
            "area": "All areas" if r["area"] == ALL_AREAS else str(r["area_name"]),
            "quarter": str(r["quarter"]),
            "measure": _MEASURE_WORDS.get(str(r["measure"]), str(r["measure"]))
            + (" (received)" if r["basis"] == "received" else ""),
            "actual": str(r["actual"]),
            "band": f"{_fmt(float(r['model_p10']))}–{_fmt(float(r['model_p90']))}",
            "median": _fmt(float(r["model_p50"])),
            "flag": str(r["flag"]),
        }
        for _, r in outside.head(ACTUAL_ROWS).iterrows()
    ]
    lines = list(c.summary)
    return {
        "scenario": inp.actual_scenario or inp.scenarios[0],
        "quarters": sorted(set(t["quarter"].astype(str)), key=lambda q: (q[:4], q[-1])),
        "head": lines[:1],
        "lines": lines[1 : 1 + ACTUAL_LINES],
        "more_lines": max(0, len(lines) - 1 - ACTUAL_LINES),
        "notes": list(c.notes),
        "rows": rows,
        "outside": len(outside),
        "compared": int((t["flag"] != "").sum()),
        "suppressed": c.suppressed,
        "legend": LEGEND,
    }


def _scenario_table(inp: ReportInputs, scenarios: list[str], year: str) -> list[dict[str, str]]:
    s = inp.summary
    sel = (s["area"] == ALL_AREAS) & (s["year"] == year)
    rows = []
    for svc in dict.fromkeys(s.loc[sel, "service"].astype(str)):
        row = {"service": inp.service_names.get(svc, svc)}
        for sc in scenarios:
            pick = s.loc[sel & (s["scenario"] == sc) & (s["service"] == svc)]
            means = pick.set_index("metric")["mean"].astype(float)
            if float(means["waiting"]) > 0 or "caseload_per_fte" not in means:
                state = f"{_fmt(float(means['waiting']))} waiting"
            else:  # a stretch service: its pressure is the caseload, not a list
                state = f"{float(means['caseload_per_fte']):,.0f} open cases per FTE"
            row[sc] = f"{state}; {float(means['fte_shortfall']):,.1f} FTE short"
        rows.append(row)
    return rows
