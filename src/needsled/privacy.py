"""Small-number suppression for observed counts about service users (model.md section 8).

Observed counts (provider figures, outcomes, breakdowns by group) from 1 to 4 are shown as
"<5" (primary suppression). Then, so that no hidden cell can be worked out from a row or
column total, any row or column left with exactly one hidden cell has its smallest other
non-zero cell hidden too, repeating until no row or column has exactly one hidden cell
(secondary suppression); where a line has no other cell to hide, its total is hidden. Zeros
are shown (a zero reveals nothing about a person). Model projections are never passed here:
they are estimates and are rounded instead.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import NDArray

__all__ = ["SUPPRESSED", "THRESHOLD", "suppress_table", "suppression_mask"]

THRESHOLD = 5
SUPPRESSED = "<5"


def suppression_mask(
    counts: NDArray[np.int64],
) -> tuple[NDArray[np.bool_], NDArray[np.bool_], NDArray[np.bool_]]:
    """Which cells, row totals and column totals to hide, for a 2-D table of counts."""
    x = np.asarray(counts, dtype=np.int64)
    if x.ndim != 2 or (x < 0).any():
        raise ValueError("suppression needs a 2-D table of non-negative counts")
    hide = (x > 0) & (x < THRESHOLD)
    row_tot, col_tot = x.sum(1), x.sum(0)
    hide_row = (row_tot > 0) & (row_tot < THRESHOLD)
    hide_col = (col_tot > 0) & (col_tot < THRESHOLD)
    changed = True
    while changed:
        changed = False
        for axis in (0, 1):
            view, totals_hidden = (hide, hide_row) if axis == 0 else (hide.T, hide_col)
            values = x if axis == 0 else x.T
            for i in range(view.shape[0]):
                if totals_hidden[i] or view[i].sum() != 1:
                    continue
                candidates = np.where(~view[i] & (values[i] > 0), values[i], np.iinfo(np.int64).max)
                j = int(np.argmin(candidates))
                if candidates[j] == np.iinfo(np.int64).max:
                    totals_hidden[i] = True
                else:
                    view[i, j] = True
                changed = True
    return hide, hide_row, hide_col


def suppress_table(
    counts: pd.DataFrame, *, suppress: bool = True, total_label: str = "Total"
) -> pd.DataFrame:
    """The table as text, with a total row and column, small counts hidden.

    ``suppress=False`` (for internal use only) shows every count; outputs then say so.
    """
    x = counts.to_numpy(dtype=np.int64)
    hide, hide_row, hide_col = (
        suppression_mask(x)
        if suppress
        else (np.zeros(x.shape, bool), np.zeros(x.shape[0], bool), np.zeros(x.shape[1], bool))
    )
    text = np.where(hide, SUPPRESSED, x.astype(str)).astype(object)
    out = pd.DataFrame(text, index=counts.index, columns=counts.columns)
    out[total_label] = np.where(hide_row, SUPPRESSED, x.sum(1).astype(str))
    grand = x.sum()
    grand_text = SUPPRESSED if suppress and 0 < grand < THRESHOLD else str(grand)
    out.loc[total_label] = [*np.where(hide_col, SUPPRESSED, x.sum(0).astype(str)), grand_text]
    return out
