"""Small-number suppression: hand cases, and property tests that nothing can be recovered.

The strongest check (:func:`test_no_hidden_count_can_be_worked_out_from_the_published_table`)
plays the attacker on the published text alone (``_privacy_audit.disclosed``, written apart
from the implementation).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from _privacy_audit import disclosed
from needsled.privacy import HIDDEN, SUPPRESSED, suppress_table, suppression_mask, table_grid


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
    # nor by a reader who knows which "[c]" are 5 or more
    assert disclosed(published, table_grid(x)) == []


def test_the_check_prints_nothing_of_its_own() -> None:
    """HiGHS prints a banner to file descriptor 1 when its first model is made: a command's
    output (observed.csv's suppression runs in every `needsled run`) must not carry it."""
    import subprocess
    import sys

    code = (
        "import pandas as pd\n"
        "from needsled.privacy import suppress_table\n"
        "print(suppress_table(pd.DataFrame([[3, 10], [8, 9]])).to_csv())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert "HiGHS" not in done.stdout + done.stderr
    assert done.stdout.startswith(",0,1,Total")  # and the table itself is printed as asked
