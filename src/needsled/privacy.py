"""Small-number suppression for observed counts about service users (model.md section 8).

Observed counts (provider figures, outcomes, breakdowns by group) from 1 to 4 are shown as
"<5" (primary suppression). Then, so that no hidden cell can be worked out from a row or
column total, any row or column left with exactly one hidden cell has its smallest other
non-zero cell hidden too, repeating until no row or column has exactly one hidden cell
(secondary suppression); where a line has no other cell to hide, its total is hidden. A cell
hidden to protect another is shown as "[c]" (the Government Statistical Service's mark for
confidential), never as "<5", which would be untrue of it. Zeros are shown (a zero reveals
nothing about a person). Model projections are never passed here: they are estimates and are
rounded instead.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import NDArray

__all__ = [
    "HIDDEN",
    "LEGEND",
    "SUPPRESSED",
    "THRESHOLD",
    "disclosed",
    "hidden_text",
    "suppress_table",
    "suppression_grid",
    "suppression_mask",
    "table_grid",
]

THRESHOLD = 5
#: a count from 1 to 4
SUPPRESSED = "<5"
#: a count hidden so that a count under 5 cannot be worked out from the totals
HIDDEN = "[c]"
#: what the two marks mean, for a table's note
LEGEND = (
    f'"{SUPPRESSED}": a count from 1 to {THRESHOLD - 1}; "{HIDDEN}": a count hidden so that '
    "a small count cannot be worked out from the totals"
)


def hidden_text(
    values: NDArray[np.int64], hide: NDArray[np.bool_], wide: NDArray[np.bool_] | None = None
) -> NDArray[np.object_]:
    """The counts as text: hidden ones as "<5" when they are 1 to 4, else (or where ``wide``
    says so) as "[c]"."""
    v = np.asarray(values, dtype=np.int64)
    small = (v > 0) & (v < THRESHOLD)
    if wide is not None:
        small &= ~np.asarray(wide, dtype=bool)
    text = np.where(hide, np.where(small, SUPPRESSED, HIDDEN), v.astype(str))
    return np.asarray(text, dtype=object)


def suppression_mask(
    counts: NDArray[np.int64],
) -> tuple[NDArray[np.bool_], NDArray[np.bool_], NDArray[np.bool_]]:
    """Which cells, row totals and column totals to hide, for a 2-D table of counts (see
    :func:`suppression_grid`, which also says which to mark "[c]" and the grand total)."""
    hidden, _wide = suppression_grid(counts)
    return hidden[:-1, :-1], hidden[:-1, -1], hidden[-1, :-1]


def suppression_grid(counts: NDArray[np.int64]) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """Which counts of the table with its totals to hide, and which hidden small counts to
    mark "[c]" rather than "<5"; both over :func:`table_grid` (body, row totals as the last
    column, column totals as the last row, the grand total last).

    Counts from 1 to 4 are hidden, and totals from 1 to 4. Then the quick rule, line by line:
    no row or column may be left with exactly one hidden count. Then the check that makes it
    safe, :func:`disclosed`: what a reader knows from the published table must leave every
    hidden count more than one possible value. A count it pins down gets the smallest shown
    count beside it hidden (a count of the body, else a total); where there is none, a hidden
    total from 1 to 4 (beside it first) is marked "[c]" instead of "<5", so that the reader no
    longer knows it is under 5; then the grand total, then any other count is hidden.
    Repeated until nothing is pinned. (Once every count is hidden and every total is "[c]",
    nothing can be pinned: a count of 1 to 4 can move by one with its totals.)
    """
    x = np.asarray(counts, dtype=np.int64)
    if x.ndim != 2 or (x < 0).any():
        raise ValueError("suppression needs a 2-D table of non-negative counts")
    grid = table_grid(x)
    hidden = (grid > 0) & (grid < THRESHOLD)
    wide = np.zeros(grid.shape, bool)
    while True:
        _line_rule(grid, hidden)
        pinned = disclosed(grid, hidden, wide)
        if not pinned or not _widen_or_hide(grid, hidden, wide, pinned[0]):
            return hidden, wide


def table_grid(x: NDArray[np.int64]) -> NDArray[np.int64]:
    """The table with its row totals (last column), column totals (last row), grand total."""
    grid = np.zeros((x.shape[0] + 1, x.shape[1] + 1), dtype=np.int64)
    grid[:-1, :-1] = x
    grid[:-1, -1] = x.sum(1)
    grid[-1, :-1] = x.sum(0)
    grid[-1, -1] = x.sum()
    return grid


def _line_rule(grid: NDArray[np.int64], hidden: NDArray[np.bool_]) -> None:
    """No body row or column with exactly one hidden count while its total is shown: hide its
    smallest other non-zero count, or, if there is none, its total (in place, until stable)."""
    rows, cols = grid.shape[0] - 1, grid.shape[1] - 1
    changed = True
    while changed:
        changed = False
        for view, values, n in ((hidden, grid, rows), (hidden.T, grid.T, cols)):
            for i in range(n):
                line, total_hidden = view[i, :-1], view[i, -1]
                if total_hidden or line.sum() != 1:
                    continue
                shown = ~line & (values[i, :-1] > 0)
                if shown.any():
                    j = int(np.flatnonzero(shown)[np.argmin(values[i, :-1][shown])])
                    view[i, j] = True
                else:
                    view[i, -1] = True
                changed = True


def _widen_or_hide(
    grid: NDArray[np.int64],
    hidden: NDArray[np.bool_],
    wide: NDArray[np.bool_],
    cell: tuple[int, int],
) -> bool:
    """One more step of protection for a pinned ``cell`` (see :func:`suppression_grid`);
    False when nothing more can be done."""
    i, j = cell
    beside = np.zeros(grid.shape, bool)
    beside[i, :] = True
    beside[:, j] = True
    body = np.zeros(grid.shape, bool)
    body[:-1, :-1] = True
    grand = np.zeros(grid.shape, bool)
    grand[-1, -1] = True
    shown = ~hidden & (grid > 0)
    small = hidden & ~wide & (grid > 0) & (grid < THRESHOLD)
    steps = (
        (shown & beside & body, hidden),
        (shown & beside & ~grand, hidden),
        (small & beside & ~body, wide),
        (small & ~body, wide),
        (shown & beside, hidden),
        (shown & ~grand, hidden),
        (shown, hidden),
        (small & beside, wide),
        (small, wide),
    )
    for candidates, mark in steps:
        if candidates.any():
            flat = np.flatnonzero(candidates)
            mark.ravel()[int(flat[np.argmin(grid.ravel()[flat])])] = True
            return True
    return False


def disclosed(
    grid: NDArray[np.int64], hidden: NDArray[np.bool_], wide: NDArray[np.bool_] | None = None
) -> list[tuple[int, int]]:
    """Hidden counts of a table with its totals (``grid``, as :func:`table_grid` gives it)
    that the published table pins down to one value.

    A reader knows every shown count, that each row and column adds up to its total, that a
    hidden count from 1 to 4 marked "<5" is between 1 and 4, that a "[c]" is 5 or more when it
    is (it nearly always is, so a careful check grants the reader that), and that a small count
    marked "[c]" (in ``wide``) is at least 1, since zeros are shown. The least and
    greatest value of each hidden count under those facts come from linear programmes
    (HiGHS, one model whose objective changes, so each solve starts from the last basis); a
    table's margins form a totally unimodular system, so these bounds are whole
    numbers that some table reaches, and a count is pinned when they meet. Every solution
    found also clears each count it gives a value other than the true one, and a few
    solutions for mixed objectives first clear most counts at once.
    """
    hidden = np.asarray(hidden, dtype=bool)
    cells = [(int(i), int(j)) for i, j in zip(*np.nonzero(hidden), strict=True)]
    if not cells:
        return []
    wide = np.zeros(grid.shape, bool) if wide is None else np.asarray(wide, dtype=bool)
    n = len(cells)
    index = {c: k for k, c in enumerate(cells)}
    true = np.array([grid[c] for c in cells], dtype=np.float64)
    # a bound far above any count keeps every programme bounded; it only removes solutions,
    # so it can only make a count look pinned, never the reverse
    far = 2.0 * float(grid[-1, -1]) + 10.0
    small = np.array([0 < grid[c] < THRESHOLD and not wide[c] for c in cells])
    upper = np.where(small, float(THRESHOLD - 1), far)
    # "[c]" is nearly always a count of 5 or more: the reader is assumed to know it when it is
    lower = np.where(true >= THRESHOLD, float(THRESHOLD), 1.0)
    starts, indices, values, rhs = [0], [], [], []
    rows, cols = grid.shape
    lines = [[(i, j) for j in range(cols)] for i in range(rows)]
    lines += [[(i, j) for i in range(rows)] for j in range(cols)]
    for line in lines:  # the parts minus the total (the line's last cell) are 0
        known = 0.0
        terms: dict[int, float] = {}
        for m, cell in enumerate(line):
            sign = -1.0 if m == len(line) - 1 else 1.0
            if cell in index:
                terms[index[cell]] = terms.get(index[cell], 0.0) + sign
            else:
                known += sign * float(grid[cell])
        if terms:
            indices += list(terms)
            values += list(terms.values())
            starts.append(len(indices))
            rhs.append(-known)
    moved = np.zeros(n, bool)
    if len(rhs) == 0:  # no line ties a hidden count to anything shown
        return []
    import highspy

    from needsled._highs import quiet_highs

    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = n, len(rhs)
    lp.col_cost_ = np.zeros(n)
    lp.col_lower_ = lower
    lp.col_upper_ = upper
    lp.row_lower_ = lp.row_upper_ = np.array(rhs, dtype=np.float64)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
    lp.a_matrix_.start_ = np.array(starts, dtype=np.int32)
    lp.a_matrix_.index_ = np.array(indices, dtype=np.int32)
    lp.a_matrix_.value_ = np.array(values, dtype=np.float64)
    h = quiet_highs()
    h.setOptionValue("threads", 1)
    h.setOptionValue("presolve", "off")  # keeps the basis from one objective to the next
    h.passModel(lp)
    every = np.arange(n, dtype=np.int32)

    def solve(cost: NDArray[np.float64]) -> None:
        h.changeColsCost(n, every, cost)
        h.run()
        if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            raise RuntimeError(
                "suppression check failed: " + h.modelStatusToString(h.getModelStatus())
            )
        moved[:] |= np.abs(np.asarray(h.getSolution().col_value) - true) > 0.5

    # mixed objectives first (deterministic): every count up, down, and in two patterns
    alternate = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    for cost in (np.ones(n), -np.ones(n), alternate, -alternate):
        solve(cost)
    for k in range(n):
        for sign in (1.0, -1.0):
            if moved[k]:
                break
            cost = np.zeros(n)
            cost[k] = sign
            solve(cost)
    return [cells[k] for k in np.flatnonzero(~moved)]


def suppress_table(
    counts: pd.DataFrame, *, suppress: bool = True, total_label: str = "Total"
) -> pd.DataFrame:
    """The table as text, with a total row and column, small counts hidden.

    ``suppress=False`` (for internal use only) shows every count; outputs then say so.
    """
    x = counts.to_numpy(dtype=np.int64)
    grid = table_grid(x)
    if suppress:
        hidden, wide = suppression_grid(x)
    else:
        hidden = wide = np.zeros(grid.shape, bool)
    text = hidden_text(grid, hidden, wide)
    out = pd.DataFrame(text[:-1, :-1], index=counts.index, columns=counts.columns)
    out[total_label] = text[:-1, -1]
    out.loc[total_label] = list(text[-1, :])
    return out
