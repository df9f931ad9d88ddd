"""Small-number suppression: hand cases, and property tests that nothing can be recovered.

The strongest check (:func:`test_no_hidden_count_can_be_worked_out_from_the_published_table`)
plays the attacker: from the published text alone (shown counts, totals, and what the marks
say: "<5" is 1 to 4, "[c]" is at least 1, a zero is shown), it finds by linear programming the
least and the greatest value every hidden count could have. A table of margins is totally
unimodular, so these bounds are whole numbers that some table of counts reaches: a hidden count
whose bounds meet has been disclosed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.optimize import linprog

from needsled.privacy import HIDDEN, SUPPRESSED, suppress_table, suppression_mask


def test_small_counts_hidden_and_a_second_cell_protects_them() -> None:
    t = pd.DataFrame([[3, 10, 20], [8, 9, 12]], index=["a", "b"], columns=["x", "y", "z"])
    out = suppress_table(t)
    assert out.loc["a", "x"] == SUPPRESSED
    # row a would give 3 away from its total: the next smallest (10) is hidden too, and
    # marked as hidden, not as "<5", which would be untrue of it
    assert out.loc["a", "y"] == HIDDEN
    # column x would give 3 away from its total: 8 is hidden as well
    assert out.loc["b", "x"] == HIDDEN
    assert out.loc["Total", "Total"] == str(t.to_numpy().sum())


def test_zeros_are_shown_and_a_line_with_nothing_else_hides_its_total() -> None:
    t = pd.DataFrame([[2, 0], [0, 0]], columns=["x", "y"])
    out = suppress_table(t)
    assert out.iloc[0, 1] == "0"
    assert out.loc[0, "Total"] == SUPPRESSED
    assert out.loc["Total", "x"] == SUPPRESSED


def test_switch_off_shows_everything() -> None:
    t = pd.DataFrame([[1, 2]], columns=["x", "y"])
    assert SUPPRESSED not in suppress_table(t, suppress=False).to_numpy()


@settings(max_examples=300, deadline=None)
@given(
    arrays(np.int64, st.tuples(st.integers(1, 6), st.integers(1, 6)), elements=st.integers(0, 30))
)
def test_no_hidden_cell_can_be_recovered_from_the_totals(x: np.ndarray) -> None:
    hide, hide_row, hide_col = suppression_mask(x)
    assert (hide | ~((x > 0) & (x < 5))).all(), "every count from 1 to 4 is hidden"
    for i in range(x.shape[0]):  # a shown row total with one hidden cell would reveal it
        assert hide_row[i] or hide[i].sum() != 1
    for j in range(x.shape[1]):
        assert hide_col[j] or hide[:, j].sum() != 1
    # a hidden total of 1-4 with one shown... : small totals are always hidden
    assert all(hide_row[i] for i in range(x.shape[0]) if 0 < x[i].sum() < 5)


def _bounds_from_text(text: str) -> tuple[float, float | None]:
    """What a reader of the table knows about a cell from its text."""
    if text == SUPPRESSED:
        return (1, 4)
    if text == HIDDEN:
        return (1, None)
    value = float(text)
    return (value, value)


def disclosed(published: pd.DataFrame) -> list[tuple[int, int]]:
    """Hidden cells (of the table with its total row and column, as published) whose value is
    fixed by what is shown: least and greatest feasible values meet."""
    text = published.to_numpy(dtype=str)
    rows, cols = text.shape
    unknown = [
        (i, j) for i in range(rows) for j in range(cols) if text[i, j] in (SUPPRESSED, HIDDEN)
    ]
    if not unknown:
        return []
    index = {cell: k for k, cell in enumerate(unknown)}
    bounds = [_bounds_from_text(text[i, j]) for i, j in unknown]

    def value(i: int, j: int) -> tuple[int | None, float]:
        if (i, j) in index:
            return index[(i, j)], 0.0
        return None, float(text[i, j])

    a_eq, b_eq = [], []
    # each body row adds up to its total (the last column); each column to its total (last row)
    lines = [[(i, j) for j in range(cols - 1)] + [(i, cols - 1)] for i in range(rows)]
    lines += [[(i, j) for i in range(rows - 1)] + [(rows - 1, j)] for j in range(cols)]
    for line in lines:
        coef = np.zeros(len(unknown))
        rhs = 0.0
        for n, (i, j) in enumerate(line):
            sign = -1.0 if n == len(line) - 1 else 1.0  # parts minus the total = 0
            k, v = value(i, j)
            if k is None:
                rhs -= sign * v
            else:
                coef[k] += sign
        if coef.any():
            a_eq.append(coef)
            b_eq.append(rhs)
    out = []
    for k, cell in enumerate(unknown):
        c = np.zeros(len(unknown))
        c[k] = 1.0
        lo = linprog(c, A_eq=np.array(a_eq), b_eq=b_eq, bounds=bounds, method="highs")
        hi = linprog(-c, A_eq=np.array(a_eq), b_eq=b_eq, bounds=bounds, method="highs")
        assert lo.status == 0, "the published table must be consistent with its own counts"
        if hi.status == 0 and abs(-hi.fun - lo.fun) < 0.5:
            out.append(cell)
    return out


def test_the_attacker_finds_a_count_left_alone_in_its_line() -> None:
    """The audit itself works: a table with only the small count hidden is disclosed."""
    naive = pd.DataFrame([["<5", "10", "13"], ["8", "9", "17"], ["11", "19", "30"]])
    assert disclosed(naive) == [(0, 0)]
    # a 2 x 2 block of small counts is not: 2+3 / 3+2 could as well be 1+4 / 4+1
    pair = [["<5", "<5", "10", "15"], ["<5", "<5", "10", "15"], ["5", "5", "20", "30"]]
    assert disclosed(pd.DataFrame(pair)) == []


@settings(max_examples=150, deadline=None)
@given(
    arrays(np.int64, st.tuples(st.integers(1, 5), st.integers(1, 5)), elements=st.integers(0, 30))
)
def test_no_hidden_count_can_be_worked_out_from_the_published_table(x: np.ndarray) -> None:
    published = suppress_table(pd.DataFrame(x))
    body = published.iloc[:-1, :-1].to_numpy(dtype=str)
    assert ((body == SUPPRESSED) == ((x > 0) & (x < 5))).all(), '"<5" exactly for 1 to 4'
    assert disclosed(published) == []
