"""The run report: one self-contained HTML file that works offline (no CDN, no network).

Vega, Vega-Lite and Vega-Embed come from the installed ``vl-convert-python`` package and are
inlined once; each chart is a Vega-Lite spec from :mod:`needsled.charts`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

import altair as alt
import jinja2
import pandas as pd

from needsled import __version__, charts
from needsled.results import ALL_AREAS

__all__ = ["ReportInputs", "chart_specs", "headline", "render_html"]


@dataclass(frozen=True)
class ReportInputs:
    """What the report needs: the run's tables and a little about the run."""

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


@cache
def _vega_bundle() -> str:
    import vl_convert as vlc

    return str(vlc.javascript_bundle(None))  # type: ignore[arg-type]  # stub says str; None = default


def _fmt(x: float) -> str:
    return f"{x:,.0f}"


def _money(x: float) -> str:
    if abs(x) >= 1e6:
        return f"£{x / 1e6:,.1f}m"
    return f"£{x / 1e3:,.0f}k"


def headline(inp: ReportInputs, scenario: str) -> list[str]:
    """Plain-words sentences: per service, the waiting list at the end and the gap to close."""
    res, summ = inp.results, inp.summary
    last = res["month"].astype(str).max()
    last_year = summ["year"].astype(str).max()
    when = pd.Period(last, "M").strftime("%B %Y")
    out = []
    sel = (res["scenario"] == scenario) & (res["area"] == ALL_AREAS) & (res["month"] == last)
    ends = res.loc[sel].set_index(["service", "metric"])
    ysel = (
        (summ["scenario"] == scenario) & (summ["area"] == ALL_AREAS) & (summ["year"] == last_year)
    )
    year = summ.loc[ysel].set_index(["service", "metric"])
    services = list(dict.fromkeys(ends.index.get_level_values(0).astype(str)))
    cost = year["mean"].xs("cost_shortfall", level="metric").astype(float)
    ranked = sorted(services, key=lambda s: -float(cost.get(s, 0.0)))
    for svc in ranked:
        name = inp.service_names.get(svc, svc)
        fte = year.loc[(svc, "fte_shortfall")]
        cost = year.loc[(svc, "cost_shortfall")]
        if (svc, "waiting") in ends.index and ends.loc[(svc, "waiting"), "mean"] > 0:
            w = ends.loc[(svc, "waiting")]
            lead = (
                f"By {when} the {name} waiting list reaches {_fmt(w['mean'])} "
                f"({_fmt(w['p10'])}–{_fmt(w['p90'])})"
            )
        else:
            c = ends.loc[(svc, "caseload_per_fte")]
            lead = (
                f"By {when} {name} caseloads reach {c['mean']:.0f} open cases per FTE "
                f"({c['p10']:.0f}–{c['p90']:.0f})"
            )
        if fte["mean"] >= 0.05:
            gap = (
                f"closing the gap needs {fte['mean']:,.1f} more FTE "
                f"({fte['p10']:,.1f}–{fte['p90']:,.1f}), {_money(cost['mean'])} a year"
            )
        else:
            gap = "staffing meets the target wait"
        out.append(f"{lead}; {gap} in {last_year}.")
    return out


def chart_specs(inp: ReportInputs) -> dict[str, alt.TopLevelMixin]:
    """Every chart in the report by key (its element is ``chart-<key>``); also the PNGs."""
    scenarios = list(dict.fromkeys(inp.results["scenario"].astype(str)))
    first = scenarios[0]
    last_year = inp.summary["year"].astype(str).max()
    specs: dict[str, alt.TopLevelMixin] = {
        "waiting": charts.waiting_list(inp.results),
        "shortfall": charts.shortfall_by_area(inp.summary, first, last_year, inp.area_names),
    }
    for sc in scenarios:
        specs[f"demand-{sc}"] = charts.demand_capacity(inp.results, sc)
        specs[f"waterfall-{sc}"] = charts.waterfall(inp.waterfall, sc)
    return specs


def render_html(inp: ReportInputs) -> str:
    """The whole report as one HTML string."""
    scenarios = list(dict.fromkeys(inp.results["scenario"].astype(str)))
    last_year = inp.summary["year"].astype(str).max()
    spec_json = {k: json.loads(v.to_json()) for k, v in chart_specs(inp).items()}
    template = jinja2.Environment(
        loader=jinja2.FunctionLoader(
            lambda n: resources.files("needsled.templates").joinpath(n).read_text(encoding="utf-8")
        ),
        autoescape=True,
    ).get_template("report.html.j2")
    qsel = inp.queueing["statement"].str.startswith("grows")
    return template.render(
        title=f"needsled: {inp.model_name}",
        version=__version__,
        manifest=inp.manifest,
        headlines={sc: headline(inp, sc) for sc in scenarios},
        scenarios=scenarios,
        specs=json.dumps(spec_json).replace("</", "<\\/"),
        bundle=_vega_bundle().replace("</script", "<\\/script"),
        queue_rows=inp.queueing.loc[qsel].head(40).to_dict("records"),
        queue_count=int(qsel.sum()),
        scenario_table=_scenario_table(inp, scenarios, last_year),
        observed=inp.observed,
        assumptions=inp.assumptions.to_dict("records"),
        suppressed=inp.suppressed,
        service_names=inp.service_names,
    )


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
