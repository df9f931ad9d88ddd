"""The report's numbers in words: projections rounded to a sensible precision, by hand."""

from __future__ import annotations

import pytest

from needsled.report import _fmt, _money


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
