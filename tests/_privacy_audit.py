"""The attacker, for tests: what can be worked out from a published table of counts.

From the published text alone (shown counts, the totals, and what the marks say: "<5" is 1 to
4, "[c]" is at least 1 since zeros are shown), :func:`disclosed` finds by linear programming
the least and the greatest value every hidden count could have. A table of margins is totally
unimodular, so these bounds are whole numbers that some table of counts reaches: a hidden count
whose bounds meet has been disclosed. Written apart from ``needsled.privacy`` (a different
formulation and solver call) so that it checks it rather than repeats it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import linprog

from needsled.privacy import HIDDEN, SUPPRESSED

__all__ = ["disclosed"]


def _bounds_from_text(text: str, true: float | None) -> tuple[float, float | None]:
    """What a reader of the table knows about a cell from its text (and, for a "[c]", from
    the true count when it is given: a careful reader may guess that a "[c]" is 5 or more)."""
    if text == SUPPRESSED:
        return (1, 4)
    if text == HIDDEN:
        return (5, None) if true is not None and true >= 5 else (1, None)
    value = float(text)
    return (value, value)


def disclosed(published: pd.DataFrame, truth: np.ndarray | None = None) -> list[tuple[int, int]]:
    """Hidden cells (of the table with its total row and column, as published) whose value is
    fixed by what is shown: least and greatest feasible values meet. With ``truth`` (the
    counts, with their totals, in the same layout) the reader also knows which "[c]" are 5 or
    more, the strongest reader the marks allow."""
    text = published.to_numpy(dtype=str)
    rows, cols = text.shape
    unknown = [
        (i, j) for i in range(rows) for j in range(cols) if text[i, j] in (SUPPRESSED, HIDDEN)
    ]
    if not unknown:
        return []
    index = {cell: k for k, cell in enumerate(unknown)}
    bounds = [
        _bounds_from_text(text[i, j], None if truth is None else float(truth[i, j]))
        for i, j in unknown
    ]

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
