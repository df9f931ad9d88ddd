"""Chart definitions (Altair / Vega-Lite), one per chart, for every place a chart is shown.

Each function takes the run's tables and returns an Altair chart; the HTML report embeds its
Vega-Lite spec, and the same spec is rendered to SVG (the PDF) and PNG (slides) with
vl-convert, or shown in the web page. Colours are the Okabe-Ito palette, which stays distinct
with colour-blindness; maps use a single-hue sequential scale (light = less, dark = more).
Charts take tables already cut to what they show (all areas together, one year), so their
embedded data stay small.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import Any, cast

import altair as alt
import pandas as pd

from needsled.maps import AreaGeometry
from needsled.results import ALL_AREAS

__all__ = [
    "ACTUAL_MEASURES",
    "PALETTE",
    "SLIDE_CONFIG",
    "SLIDE_HEIGHT",
    "SLIDE_WIDTH",
    "actual_vs_model",
    "actual_vs_model_rows",
    "area_map",
    "demand_capacity",
    "scenario_shortfall",
    "shortfall_by_area",
    "waiting_list",
    "waits",
    "waterfall",
    "waterfalls",
    "wrapped",
]

PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
NO_DATA = "#d9d9d9"
WIDTH, HEIGHT = 260, 170
TILE = 62  # px: one square of the tile map in the HTML report

#: A 16:9 slide in pixels: the size of the PNGs that ``needsled report --png`` writes.
SLIDE_WIDTH, SLIDE_HEIGHT = 1600, 900
#: Vega-Lite config for slides, applied over any chart above: type large enough to read when
#: projected (at 1600 px wide, 18 px is about the smallest that reads from the back of a room).
SLIDE_CONFIG: dict[str, object] = {
    "background": "white",
    # one font family named for both drawing the SVG (vl-convert, which sizes the layout by
    # it) and showing it (WeasyPrint for the PDF): with bare "sans-serif" each may pick a
    # different font, and wider letters then run out of their boxes
    "font": "Liberation Sans, DejaVu Sans, sans-serif",
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
        "gradientLength": 400,
        "gradientThickness": 24,
    },
    "facet": {"spacing": 36},
    "line": {"strokeWidth": 3.5},
}
#: ``usermeta`` of charts whose shape matters (maps): slides scale them without stretching.
KEEP_ASPECT = {"needsled": {"keep_aspect": True}}


def wrapped(names: Mapping[str, str], codes: Sequence[str], width: int = 30) -> dict[str, str]:
    """Service names for panel headers (and axis labels), broken into lines of at most
    ``width`` characters with "|" (split by ``_HEADER``)."""
    return {c: "|".join(textwrap.wrap(names.get(c, c), width)) or c for c in codes}


_HEADER = alt.Header(labelExpr="split(datum.label, '|')")


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
    data: pd.DataFrame,
    colour: alt.Color,
    y_title: str,
    opacity: float,
    title: alt.Title,
    names: Mapping[str, str] | None,
) -> alt.FacetChart:
    """A line (mean) in an 80% band over months, one panel per service."""
    codes = list(dict.fromkeys(data["service"]))
    panels = wrapped(names or {}, codes)
    data = data.assign(panel=data["service"].map(panels))
    base = alt.Chart().encode(x=alt.X("date:T", title="Month"))
    band = base.mark_area(opacity=opacity).encode(
        y=alt.Y("p10:Q", title=y_title), y2="p90:Q", color=colour
    )
    line = base.mark_line().encode(y="mean:Q", color=colour)
    return cast(
        "alt.FacetChart",
        alt.layer(band, line, data=data)
        .properties(width=WIDTH, height=HEIGHT)
        .facet(
            facet=alt.Facet("panel:N", title=None, sort=[panels[c] for c in codes], header=_HEADER),
            columns=3,
        )
        .resolve_scale(y="independent")
        .properties(title=title),
    )


def demand_capacity(
    results: pd.DataFrame, scenario: str, service_names: Mapping[str, str] | None = None
) -> alt.FacetChart:
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
        legend=alt.Legend(orient="top", symbolOpacity=1),
    )
    title = alt.Title(
        f"Demand against capacity, all areas ({scenario})",
        subtitle="Line: average; band: 80% range (10th to 90th percentile)",
    )
    return _fan(data, colour, "People a month", 0.25, title, service_names)


def waiting_list(
    results: pd.DataFrame, service_names: Mapping[str, str] | None = None
) -> alt.FacetChart:
    """Waiting list at each month's end, every scenario side by side, mean and 80% band."""
    data = _subset(results, ["waiting"])
    colour = alt.Color(
        "scenario:N",
        title="Scenario",
        scale=alt.Scale(domain=list(dict.fromkeys(data["scenario"])), range=PALETTE),
        legend=alt.Legend(orient="top", symbolOpacity=1),
    )
    title = alt.Title(
        "Waiting list by scenario, all areas",
        subtitle="People waiting at the end of each month. Line: average; band: 80% range",
    )
    return _fan(data, colour, "People waiting", 0.15, title, service_names)


def waits(
    results: pd.DataFrame,
    targets: Mapping[str, float],
    service_names: Mapping[str, str] | None = None,
) -> alt.FacetChart | None:
    """Average wait of those starting support each month against the service's target wait
    (a dashed line), every scenario side by side, one panel per service that keeps a waiting
    list (services that take every referral, with no wait in any scenario, are left out).
    None when no service has a wait and a target."""
    data = _subset(results, ["mean_wait_weeks"])
    waited = data.groupby("service")["p90"].max()
    keep = [str(c) for c in waited.index if waited[c] > 0 and str(c) in targets]
    data = data.loc[data["service"].isin(keep)]
    if data.empty:
        return None
    codes = list(dict.fromkeys(data["service"]))
    panels = wrapped(service_names or {}, codes)
    data = data.assign(panel=data["service"].map(panels), target=data["service"].map(targets))
    colour = alt.Color(
        "scenario:N",
        title="Scenario",
        scale=alt.Scale(domain=list(dict.fromkeys(data["scenario"])), range=PALETTE),
        legend=alt.Legend(orient="top", symbolOpacity=1),
    )
    base = alt.Chart().encode(x=alt.X("date:T", title="Month"))
    band = base.mark_area(opacity=0.15).encode(
        y=alt.Y("p10:Q", title="Average wait (weeks)"), y2="p90:Q", color=colour
    )
    line = base.mark_line().encode(y="mean:Q", color=colour)
    target = base.mark_line(color="#000000", strokeDash=[6, 4], strokeWidth=1.5).encode(
        y="target:Q"
    )
    return cast(
        "alt.FacetChart",
        alt.layer(band, line, target, data=data)
        .properties(width=WIDTH, height=HEIGHT)
        .facet(
            facet=alt.Facet("panel:N", title=None, sort=[panels[c] for c in codes], header=_HEADER),
            columns=3,
        )
        .resolve_scale(y="independent")
        .properties(
            title=alt.Title(
                "Waits against the target, all areas",
                subtitle="Average wait of those starting support each month. Line: average; "
                "band: 80% range; dashed: the service's target wait",
            )
        ),
    )


def scenario_shortfall(
    summary: pd.DataFrame, year: str, service_names: Mapping[str, str] | None = None
) -> alt.FacetChart:
    """Staff (FTE) and money (£ a year) short of what the target wait needs, per service,
    one bar per scenario with its 80% range, all areas together, in one year."""
    names = service_names or {}
    sel = (
        summary["metric"].isin(["fte_shortfall", "cost_shortfall"])
        & (summary["area"] == ALL_AREAS)
        & (summary["year"] == year)
    )
    data = summary.loc[sel, ["scenario", "service", "metric", "mean", "p10", "p90"]]
    data = data.astype({"scenario": str, "service": str, "metric": str}).reset_index(drop=True)
    money = data["metric"] == "cost_shortfall"
    data.loc[money, ["mean", "p10", "p90"]] /= 1e3
    panels = {"fte_shortfall": "Staff short (FTE)", "cost_shortfall": "Cost a year (£ thousand)"}
    data["measure"] = data["metric"].map(panels)
    codes = list(dict.fromkeys(data["service"]))
    data["service_name"] = data["service"].map(lambda c: names.get(c, c))
    lines = wrapped(names, codes, 26)
    data["service_label"] = data["service"].map(lines)
    scenarios = list(dict.fromkeys(data["scenario"]))
    colour = alt.Color(
        "scenario:N",
        title="Scenario",
        scale=alt.Scale(domain=scenarios, range=PALETTE),
        legend=alt.Legend(orient="top", symbolOpacity=1),
    )
    y = alt.Y(
        "service_label:N",
        title=None,
        sort=[lines[c] for c in codes],
        axis=alt.Axis(labelExpr="split(datum.label, '|')"),  # names on up to two lines
    )
    offset = alt.YOffset("scenario:N", sort=scenarios)
    x = alt.X("mean:Q", title="Average (line: 80% range)", axis=alt.Axis(format=",~f"))
    bars = (
        alt.Chart()
        .mark_bar()
        .encode(
            y=y,
            yOffset=offset,
            x=x,
            color=colour,
            tooltip=[
                alt.Tooltip("service_name:N", title="Service"),
                alt.Tooltip("scenario:N", title="Scenario"),
                alt.Tooltip("measure:N", title="Measure"),
                alt.Tooltip("mean:Q", title="Average", format=",.1f"),
                alt.Tooltip("p10:Q", title="10th percentile", format=",.1f"),
                alt.Tooltip("p90:Q", title="90th percentile", format=",.1f"),
            ],
        )
    )
    ranges = (
        alt.Chart().mark_rule(color="#333333").encode(y=y, yOffset=offset, x="p10:Q", x2="p90:Q")
    )
    return cast(
        "alt.FacetChart",
        alt.layer(bars, ranges, data=data)
        .properties(width=330, height=34 * max(1, len(codes)))
        .facet(
            column=alt.Column("measure:N", title=None, sort=list(panels.values()), header=_HEADER)
        )
        .resolve_scale(x="independent")
        .properties(
            title=alt.Title(
                f"Shortfall by scenario, all areas, {year}",
                subtitle="What each service is short of the staff its target wait needs, and "
                "what that staff would cost a year",
            )
        ),
    )


def shortfall_by_area(
    summary: pd.DataFrame,
    scenario: str,
    year: str,
    names: dict[str, str],
    service_names: Mapping[str, str] | None = None,
) -> alt.Chart:
    """FTE shortfall by area and service in one year (mean over replicates)."""
    sel = (
        (summary["metric"] == "fte_shortfall")
        & (summary["scenario"] == scenario)
        & (summary["year"] == year)
        & (summary["area"] != ALL_AREAS)
    )
    data = summary.loc[sel, ["area", "service", "mean"]].astype({"area": str, "service": str})
    data["area_name"] = data["area"].map(names)
    data["service_name"] = data["service"].map(lambda c: (service_names or {}).get(c, c))
    return cast(
        "alt.Chart",
        alt.Chart(data)
        .mark_bar()
        .encode(
            y=alt.Y("area_name:N", title=None, sort="-x"),
            x=alt.X("sum(mean):Q", title="FTE short of what the target wait needs"),
            color=alt.Color("service_name:N", title="Service", scale=alt.Scale(range=PALETTE)),
            tooltip=[
                alt.Tooltip("area_name:N", title="Area"),
                alt.Tooltip("service_name:N", title="Service"),
                alt.Tooltip("mean:Q", title="FTE short", format=".1f"),
            ],
        )
        .properties(
            width=520,
            height=14 * max(1, data["area"].nunique()),
            title=f"Staff shortfall by area, {year} ({scenario})",
        )
        .configure_legend(labelLimit=400),  # whole service names (slides raise it further)
    )


def _waterfall_steps(table: pd.DataFrame, scenario: str) -> pd.DataFrame:
    """Bars from baseline referrals to the scenario's, lever by lever (all areas and services):
    ``y0``-``y1`` is each bar, ``kind`` says whether it is a total or a lever up or down."""
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
    steps.insert(0, "scenario", scenario)
    return steps


def _waterfall_bars(data: pd.DataFrame | None = None) -> alt.Chart:
    chart = alt.Chart() if data is None else alt.Chart(data)
    return cast(
        "alt.Chart",
        chart.mark_bar().encode(
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
            tooltip=[
                alt.Tooltip("label:N", title="Step"),
                alt.Tooltip("referrals:Q", title="Referrals", format=",.0f"),
            ],
        ),
    )


_WATERFALL_NOTE = (
    "Referrals over the projection, all areas; a victim needing two services counts twice"
)


def waterfall(table: pd.DataFrame, scenario: str) -> alt.Chart:
    """From baseline referrals to the scenario's, lever by lever (all areas, all services)."""
    return _waterfall_bars(_waterfall_steps(table, scenario)).properties(
        width=420,
        height=240,
        title=alt.Title(f"What drives the change in demand ({scenario})", subtitle=_WATERFALL_NOTE),
    )


def waterfalls(table: pd.DataFrame, scenarios: Sequence[str]) -> alt.FacetChart:
    """The waterfalls of several scenarios side by side, one panel each."""
    data = pd.concat([_waterfall_steps(table, sc) for sc in scenarios], ignore_index=True)
    return cast(
        "alt.FacetChart",
        alt.layer(_waterfall_bars(), data=data)
        .properties(width=360, height=200)
        .facet(
            facet=alt.Facet("scenario:N", title=None, sort=list(scenarios)),
            columns=2 if len(scenarios) > 1 else 1,
        )
        .resolve_scale(x="independent")
        .properties(
            title=alt.Title(
                "What drives the change in demand, by scenario", subtitle=_WATERFALL_NOTE
            )
        ),
    )


def _map_colour(values: pd.Series, title: str, field: str) -> alt.Color:
    """Five shades of blue from 0 to the largest value, in equal steps (a classed map reads
    more easily than a continuous one, and its legend needs no gradient, which not every
    SVG renderer draws)."""
    top = float(values.max()) if values.notna().any() else 0.0
    return alt.Color(
        field,
        title=title,
        scale=alt.Scale(
            type="quantize", scheme="blues", domain=[0.0, max(top, 1e-9)], nice=True, zero=True
        ),
        legend=alt.Legend(orient="right", format=",~f"),
    )


def _tile_map(values: pd.DataFrame, geometry: AreaGeometry, value_title: str) -> alt.LayerChart:
    tiles = pd.DataFrame(
        [(t.code, t.name, t.short, t.col, t.row) for t in geometry.tiles],
        columns=["area", "tile_name", "short", "col", "row"],
    )
    data = tiles.merge(values, on="area", how="left")
    data["area_name"] = data["area_name"].fillna(data["tile_name"])
    data["label"] = data["label"].fillna("–")
    data = data.drop(columns="tile_name")
    cols, n_rows = int(data["col"].max()) + 1, int(data["row"].max()) + 1
    top = float(data["value"].max()) if data["value"].notna().any() else 0.0
    dark = f"isValid(datum.value) && datum.value > {0.55 * top:.6g}"
    base = alt.Chart().encode(
        x=alt.X("col:O", axis=None, scale=alt.Scale(domain=list(range(cols)))),
        y=alt.Y("row:O", axis=None, scale=alt.Scale(domain=list(range(n_rows)))),
        tooltip=[
            alt.Tooltip("area_name:N", title="Area"),
            alt.Tooltip("label:N", title=value_title),
        ],
    )
    # grey under every tile, coloured over those with a value (Vega-Lite leaves out marks
    # whose colour value is missing)
    blank = base.mark_rect(color=NO_DATA, stroke="white", strokeWidth=3)
    squares = base.mark_rect(stroke="white", strokeWidth=3).encode(
        color=_map_colour(data["value"], value_title, "value:Q")
    )
    # type sized to the tile, so that it reads the same in the report and on a slide
    text_colour = alt.condition(dark, alt.value("white"), alt.value("#1a1a1a"))
    short = base.mark_text(
        fontWeight="bold",
        fontSize={"expr": f"width / {cols} * 0.24"},
        dy={"expr": f"-width / {cols} * 0.13"},
    ).encode(text="short:N", color=text_colour)
    label = base.mark_text(
        fontSize={"expr": f"width / {cols} * 0.17"},
        dy={"expr": f"width / {cols} * 0.16"},
    ).encode(text="label:N", color=text_colour)
    return cast(
        "alt.LayerChart",
        alt.layer(blank, squares, short, label, data=data)
        .properties(width=TILE * cols, height=TILE * n_rows, usermeta=KEEP_ASPECT)
        .configure_view(stroke=None),
    )


def _boundary_map(values: pd.DataFrame, geometry: AreaGeometry, value_title: str) -> alt.LayerChart:
    lookup = values.set_index("area")[["value", "label"]].to_dict("index")
    features: list[dict[str, Any]] = []
    for f in geometry.features:
        props = dict(f["properties"])
        known = lookup.get(props["area"], {"value": None, "label": "no value"})
        props["value"] = None if known["value"] is None else float(known["value"])
        props["label"] = str(known["label"])
        features.append({"type": "Feature", "properties": props, "geometry": f["geometry"]})
    shown = pd.Series([f["properties"]["value"] for f in features], dtype=float)
    base = alt.Chart().encode(
        tooltip=[
            alt.Tooltip("properties.area_name:N", title="Area"),
            alt.Tooltip("properties.label:N", title=value_title),
        ]
    )
    blank = base.mark_geoshape(color=NO_DATA, stroke="white", strokeWidth=1)
    shapes = base.mark_geoshape(stroke="white", strokeWidth=1).encode(
        color=_map_colour(shown, value_title, "properties.value:Q")
    )
    return cast(
        "alt.LayerChart",
        alt.layer(blank, shapes, data=alt.InlineData(values=features))
        .project(type="mercator")
        .properties(width=560, height=420, usermeta=KEEP_ASPECT)
        .configure_view(stroke=None),
    )


def area_map(
    values: pd.DataFrame,
    geometry: AreaGeometry,
    *,
    title: str,
    subtitle: str = "",
    value_title: str = "Value",
) -> alt.TopLevelMixin | None:
    """A map of one value per area: ``values`` has columns ``area`` (code), ``area_name``,
    ``value`` (a number, shaded light to dark) and ``label`` (the value as text, shown on
    tiles and in tooltips). Tiles or boundaries come from ``geometry``; None when it has
    neither (the report then prints the geometry's note instead)."""
    if geometry.kind == "tiles":
        chart: alt.TopLevelMixin = _tile_map(values, geometry, value_title)
    elif geometry.kind == "boundaries" and geometry.features:
        chart = _boundary_map(values, geometry, value_title)
    else:
        return None
    heading = alt.Title(title, subtitle=subtitle) if subtitle else alt.Title(title)
    return chart.properties(title=heading)


#: The returned figures the actual-against-modelled chart shows, in its column order.
ACTUAL_MEASURES = {
    "referrals": "Referrals",
    "starts": "Started support",
    "waiting_end": "Waiting list at quarter end",
}
_FLAGS = {
    "above": "Above the band",
    "below": "Below the band",
    "within": "Within the band",
}


def actual_vs_model_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of an actual-against-modelled table (``needsled.returns.compare``) that the
    chart shows: for each service, all areas together (area ``ALL``) where the returns cover
    every area it serves, else its area with the most figures outside the band (the first
    such area in code order on a tie); only the measures in :data:`ACTUAL_MEASURES`."""
    rows = table.loc[table["measure"].isin(list(ACTUAL_MEASURES))].astype(
        {"service": str, "area": str, "measure": str, "flag": str}
    )
    keep = []
    for _service, part in rows.groupby("service", sort=False):
        if (part["area"] == ALL_AREAS).any():
            keep.append(part.loc[part["area"] == ALL_AREAS])
            continue
        outside = part["flag"].isin(["above", "below"]).groupby(part["area"]).sum()
        worst = sorted(outside.index, key=lambda a: (-int(outside[a]), a))[0]
        keep.append(part.loc[part["area"] == worst])
    if not keep:
        return rows.iloc[0:0]
    return pd.concat(keep).reset_index(drop=True)


def actual_vs_model(
    table: pd.DataFrame, service_names: Mapping[str, str] | None = None
) -> alt.FacetChart | None:
    """What providers returned each quarter against the model's 80% band for the same
    quarter, one row of panels per service (all areas together, or its area with the most
    figures outside the band) and one column per measure. Hidden counts ("<5", "[c]") are not
    drawn. None when there is nothing to draw."""
    data = actual_vs_model_rows(table)
    if data.empty:
        return None
    names = service_names or {}
    data = data.assign(
        actual_value=pd.to_numeric(data["actual"], errors="coerce"),
        measure_label=data["measure"].map(ACTUAL_MEASURES),
        flag_label=data["flag"].map(_FLAGS).fillna("Not shown (small numbers)"),
        row_label=[
            f"{names.get(s, s)}, {'all areas' if a == ALL_AREAS else n}"
            for s, a, n in zip(data["service"], data["area"], data["area_name"], strict=True)
        ],
    )
    data["panel"] = [
        "|".join([*textwrap.wrap(r, 34), m])
        for r, m in zip(data["row_label"], data["measure_label"], strict=True)
    ]
    data = data[
        ["panel", "row_label", "measure_label", "quarter", "model_p10", "model_p50", "model_p90",
         "actual", "actual_value", "flag_label"]
    ]  # fmt: skip
    hidden = int(data["actual_value"].isna().sum())
    x = alt.X(
        "quarter:O",
        title="Quarter",
        axis=alt.Axis(labelAngle=0, labelExpr="split(datum.label, '-')"),  # 2025 over Q1
    )
    tooltip = [
        alt.Tooltip("row_label:N", title="Service"),
        alt.Tooltip("quarter:O", title="Quarter"),
        alt.Tooltip("actual:N", title="Returned"),
        alt.Tooltip("model_p10:Q", title="Model 10th percentile", format=",.1f"),
        alt.Tooltip("model_p50:Q", title="Model median", format=",.1f"),
        alt.Tooltip("model_p90:Q", title="Model 90th percentile", format=",.1f"),
    ]
    band = (
        alt.Chart()
        .mark_bar(opacity=0.3, color=PALETTE[0])
        .encode(
            x=x,
            y=alt.Y("model_p10:Q", title="People", scale=alt.Scale(zero=False)),
            y2="model_p90:Q",
            tooltip=tooltip,
        )
    )
    median = alt.Chart().mark_tick(color=PALETTE[0], thickness=2).encode(x=x, y="model_p50:Q")
    flags = [*_FLAGS.values()]
    points = (
        alt.Chart()
        .transform_filter("isValid(datum.actual_value)")
        .mark_point(filled=True, size=110, opacity=1)
        .encode(
            x=x,
            y="actual_value:Q",
            color=alt.Color(
                "flag_label:N",
                title="Returned figure",
                scale=alt.Scale(domain=flags, range=[PALETTE[3], PALETTE[4], "#000000"]),
                legend=alt.Legend(orient="top", symbolOpacity=1),
            ),
            shape=alt.Shape(
                "flag_label:N",
                scale=alt.Scale(domain=flags, range=["triangle-up", "triangle-down", "circle"]),
                legend=None,
            ),
            tooltip=tooltip,
        )
    )
    note = (
        "Bar: the model's 80% band (10th to 90th percentile); tick: its median; point: the returns"
    )
    if hidden:
        note += f"; {hidden} figure(s) hidden to protect small numbers not drawn"
    order = {m: i for i, m in enumerate(ACTUAL_MEASURES.values())}
    rows = list(dict.fromkeys(data["row_label"]))
    panels = data.drop_duplicates("panel").sort_values(
        ["row_label", "measure_label"],
        key=lambda c: c.map(rows.index) if c.name == "row_label" else c.map(order),
    )
    return cast(
        "alt.FacetChart",
        alt.layer(band, median, points, data=data)
        .properties(width=WIDTH, height=140)
        .facet(
            facet=alt.Facet("panel:N", title=None, sort=list(panels["panel"]), header=_HEADER),
            columns=len(set(data["measure_label"])),
        )
        .resolve_scale(y="independent")
        .properties(
            title=alt.Title("What providers reported against the model, by quarter", subtitle=note)
        ),
    )
