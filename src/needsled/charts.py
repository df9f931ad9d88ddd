"""Chart definitions (Altair / Vega-Lite), one per chart, for every place a chart is shown.

Each function takes the run's tables and returns an Altair chart; the HTML report embeds its
Vega-Lite spec, and the same spec can be rendered to PNG/SVG with vl-convert or shown in the
web page. Colours are the Okabe-Ito palette, which stays distinct with colour-blindness.
"""

from __future__ import annotations

from typing import cast

import altair as alt
import pandas as pd

from needsled.results import ALL_AREAS

__all__ = [
    "PALETTE",
    "SLIDE_CONFIG",
    "SLIDE_HEIGHT",
    "SLIDE_WIDTH",
    "demand_capacity",
    "shortfall_by_area",
    "waiting_list",
    "waterfall",
]

PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
WIDTH, HEIGHT = 260, 170

#: A 16:9 slide in pixels: the size of the PNGs that ``needsled report --png`` writes.
SLIDE_WIDTH, SLIDE_HEIGHT = 1600, 900
#: Vega-Lite config for slides, applied over any chart above: type large enough to read when
#: projected (at 1600 px wide, 18 px is about the smallest that reads from the back of a room).
SLIDE_CONFIG: dict[str, object] = {
    "background": "white",
    "padding": 28,
    "title": {
        "fontSize": 34,
        "subtitleFontSize": 22,
        "subtitleColor": "#333333",
        "anchor": "start",
        "offset": 18,
    },
    "axis": {
        "labelFontSize": 18,
        "titleFontSize": 21,
        "titlePadding": 12,
        "labelLimit": 360,
        "tickSize": 6,
    },
    "axisTemporal": {"tickCount": "year"},  # wide panels would otherwise label months
    "header": {"labelFontSize": 23, "labelFontWeight": "bold", "labelPadding": 10},
    "legend": {
        "labelFontSize": 20,
        "titleFontSize": 21,
        "symbolSize": 320,
        "labelLimit": 700,
        "rowPadding": 8,
        "columnPadding": 24,
    },
    "facet": {"spacing": 36},
    "line": {"strokeWidth": 3.5},
}


def _subset(
    results: pd.DataFrame, metrics: list[str], scenario: str | None = None, area: str = ALL_AREAS
) -> pd.DataFrame:
    sel = results["metric"].isin(metrics) & (results["area"] == area)
    if scenario is not None:
        sel &= results["scenario"] == scenario
    out = results.loc[sel, ["scenario", "service", "month", "metric", "mean", "p10", "p90"]]
    out = out.astype({"scenario": str, "service": str, "month": str, "metric": str})
    out["date"] = out["month"] + "-01"
    return out.reset_index(drop=True)


def _fan(
    data: pd.DataFrame, colour: alt.Color, y_title: str, opacity: float, title: alt.Title
) -> alt.FacetChart:
    """A line (mean) in an 80% band over months, one panel per service."""
    base = alt.Chart().encode(x=alt.X("date:T", title="Month"))
    band = base.mark_area(opacity=opacity).encode(
        y=alt.Y("p10:Q", title=y_title), y2="p90:Q", color=colour
    )
    line = base.mark_line().encode(y="mean:Q", color=colour)
    return cast(
        "alt.FacetChart",
        alt.layer(band, line, data=data)
        .properties(width=WIDTH, height=HEIGHT)
        .facet(facet=alt.Facet("service:N", title=None), columns=3)
        .resolve_scale(y="independent")
        .properties(title=title),
    )


def demand_capacity(results: pd.DataFrame, scenario: str) -> alt.FacetChart:
    """Referrals a month (mean and 80% band) against the starts a month staff can take on."""
    data = _subset(results, ["referrals", "capacity"], scenario)
    data["series"] = data["metric"].map(
        {"referrals": "Referrals (demand)", "capacity": "Capacity (starts staff can take on)"}
    )
    colour = alt.Color(
        "series:N",
        title=None,
        scale=alt.Scale(
            domain=["Referrals (demand)", "Capacity (starts staff can take on)"],
            range=[PALETTE[0], PALETTE[3]],
        ),
        legend=alt.Legend(orient="top"),
    )
    title = alt.Title(
        f"Demand against capacity, all areas ({scenario})",
        subtitle="Line: average; band: 80% range (10th to 90th percentile)",
    )
    return _fan(data, colour, "People a month", 0.25, title)


def waiting_list(results: pd.DataFrame) -> alt.FacetChart:
    """Waiting list at each month's end, every scenario, mean and 80% band."""
    colour = alt.Color(
        "scenario:N",
        title="Scenario",
        scale=alt.Scale(range=PALETTE),
        legend=alt.Legend(orient="top"),
    )
    title = alt.Title(
        "Waiting list by scenario, all areas",
        subtitle="People waiting at the end of each month. Line: average; band: 80% range",
    )
    return _fan(_subset(results, ["waiting"]), colour, "People waiting", 0.15, title)


def shortfall_by_area(
    summary: pd.DataFrame, scenario: str, year: str, names: dict[str, str]
) -> alt.Chart:
    """FTE shortfall by area and service in one year (mean over replicates)."""
    sel = (
        (summary["metric"] == "fte_shortfall")
        & (summary["scenario"] == scenario)
        & (summary["year"] == year)
        & (summary["area"] != ALL_AREAS)
    )
    data = summary.loc[sel, ["area", "service", "mean"]].copy()
    data["area_name"] = data["area"].map(names)
    return cast(
        "alt.Chart",
        alt.Chart(data)
        .mark_bar()
        .encode(
            y=alt.Y("area_name:N", title=None, sort="-x"),
            x=alt.X("sum(mean):Q", title="FTE short of what the target wait needs"),
            color=alt.Color("service:N", title="Service", scale=alt.Scale(range=PALETTE)),
            tooltip=["area_name", "service", alt.Tooltip("mean:Q", format=".1f")],
        )
        .properties(
            width=520,
            height=14 * max(1, data["area"].nunique()),
            title=f"Staff shortfall by area, {year} ({scenario})",
        ),
    )


def waterfall(table: pd.DataFrame, scenario: str) -> alt.Chart:
    """From baseline referrals to the scenario's, lever by lever (all areas, all services)."""
    sel = (table["scenario"] == scenario) & (table["area"] == ALL_AREAS)
    steps = pd.DataFrame(
        table.loc[sel].groupby(["step", "lever", "label"], as_index=False)["referrals"].sum()
    )
    steps = steps.sort_values(by="step").reset_index(drop=True)
    y0, y1, kind = [], [], []
    level = 0.0
    for lever, value in zip(steps["lever"], steps["referrals"], strict=True):
        if lever in ("baseline", "scenario"):
            y0.append(0.0)
            y1.append(value)
            kind.append("total")
            level = value
        else:
            y0.append(level)
            y1.append(level + value)
            kind.append("up" if value >= 0 else "down")
            level += value
    steps["y0"], steps["y1"], steps["kind"] = y0, y1, kind
    return cast(
        "alt.Chart",
        alt.Chart(steps)
        .mark_bar()
        .encode(
            x=alt.X("label:N", sort=None, title=None, axis=alt.Axis(labelAngle=-20)),
            y=alt.Y("y0:Q", title="Referrals over the projection"),
            y2="y1:Q",
            color=alt.Color(
                "kind:N",
                legend=None,
                scale=alt.Scale(
                    domain=["total", "up", "down"], range=[PALETTE[0], PALETTE[3], PALETTE[2]]
                ),
            ),
            tooltip=["label", alt.Tooltip("referrals:Q", format=",.0f")],
        )
        .properties(
            width=420,
            height=240,
            title=alt.Title(
                f"What drives the change in demand ({scenario})",
                subtitle="Referrals over the projection, all areas; a victim needing two "
                "services counts twice",
            ),
        ),
    )
