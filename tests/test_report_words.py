"""The report's numbers in words: projections rounded to a sensible precision, by hand."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from needsled.report import ReportInputs, _fmt, _money, headline


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (3446, "3,400"),  # two significant figures: an estimate, not a count
        (1199, "1,200"),
        (894, "890"),
        (42.6, "43"),
        (26, "26"),
        (4.26, "4.3"),  # one decimal under 10 (0.1 FTE is the staffing step)
        (4.0, "4"),
        (0, "0"),
        (-391.2, "-390"),
    ],
)
def test_projected_figures_in_words(value: float, words: str) -> None:
    assert _fmt(value) == words


@pytest.mark.parametrize(
    ("value", "words"),
    [(15.6e6, "£16m"), (6.94e6, "£6.9m"), (1.04e6, "£1m"), (560_123, "£560k"), (12_300, "£12k")],
)
def test_money_in_words(value: float, words: str) -> None:
    assert _money(value) == words


def _inputs(results: list[tuple[Any, ...]], summary: list[tuple[Any, ...]]) -> ReportInputs:
    cols = ["scenario", "area", "service", "month", "metric", "mean", "p10", "p90"]
    ycols = ["scenario", "area", "year", "service", "metric", "mean", "p10", "p90"]
    return ReportInputs(
        model_name="hand",
        results=pd.DataFrame(results, columns=cols),
        summary=pd.DataFrame(summary, columns=ycols),
        waterfall=pd.DataFrame(),
        queueing=pd.DataFrame(),
        observed=pd.DataFrame(),
        assumptions=pd.DataFrame(),
        manifest={},
        area_names={"E1": "Camden"},
        service_names={"ISVA": "ISVA", "CO": "Counselling"},
    )


def test_the_headline_by_hand() -> None:
    """Two services in the last month of 2027/28 (March 2028), other months, areas and
    scenarios around them that must not be read: the ISVA list is 1,900 (1,400-2,600) and
    it is 14 FTE and £560k short; counselling has no list (its caseload is said instead) and
    0.04 FTE short, which rounds to none; the costlier gap comes first."""
    res = [
        ("base", "ALL", "CO", "2028-03", "waiting", 0.0, 0.0, 0.0),
        ("base", "ALL", "CO", "2028-03", "caseload_per_fte", 31.6, 28.2, 35.4),
        ("base", "ALL", "ISVA", "2028-03", "waiting", 1912.0, 1402.0, 2617.0),
        ("base", "ALL", "ISVA", "2028-03", "caseload_per_fte", 44.0, 40.0, 48.0),
        ("base", "ALL", "ISVA", "2028-02", "waiting", 1800.0, 1300.0, 2500.0),
        ("base", "E1", "ISVA", "2028-04", "waiting", 5.0, 4.0, 6.0),  # one area: not read
        ("other", "ALL", "ISVA", "2028-03", "waiting", 9.0, 8.0, 10.0),
    ]
    summ = [
        ("base", "ALL", "2027/28", "ISVA", "fte_shortfall", 13.96, 9.04, 19.2),
        ("base", "ALL", "2027/28", "ISVA", "cost_shortfall", 561_000.0, 360_000.0, 770_000.0),
        ("base", "ALL", "2027/28", "CO", "fte_shortfall", 0.04, 0.0, 0.3),
        ("base", "ALL", "2027/28", "CO", "cost_shortfall", 1_600.0, 0.0, 12_000.0),
        ("base", "ALL", "2026/27", "ISVA", "fte_shortfall", 99.0, 99.0, 99.0),
        ("base", "E1", "2027/28", "ISVA", "fte_shortfall", 99.0, 99.0, 99.0),
        ("other", "ALL", "2027/28", "CO", "cost_shortfall", 9e9, 9e9, 9e9),
    ]
    assert headline(_inputs(res, summ), "base") == [
        "By March 2028 the ISVA waiting list reaches 1,900 (1,400–2,600); closing the gap "
        "needs 14 more FTE (9–19), £560k a year in 2027/28.",
        "By March 2028 Counselling caseloads reach 32 open cases per FTE (28–35); staffing "
        "meets the target wait in 2027/28.",
    ]
