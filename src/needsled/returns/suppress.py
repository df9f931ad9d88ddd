"""Small-number suppression across linked tables, checked by integer programming.

Outcome tables publish counts at several levels (each quarter, service and area, and totals
over them), and counts tied by rules anyone can read in the return format (a breakdown adds up
to its total; "improved" is at most "had the need"). A hidden count is *recovered* if what is
published, and those rules, leave it only one possible whole-number value. :func:`protect`
hides every count from 1 to 4 (primary suppression, model.md section 8) and then hides more
until no hidden count can be recovered (secondary suppression). The callers show a hidden
count from 1 to 4 as "<5" and any other hidden count as "[c]" (:func:`needsled.privacy.
hidden_text`), so a reader may take a "[c]" to be 5 or more; where a "<5" would cap what the
counts tied to it can add up to, a small count is *widened*: marked "[c]" too.

Everything is stated over *atoms*, the finest counts (the caller's; never the only thing
published). Published count ``i`` is ``members[i] @ atoms``. What anyone is assumed to know:

- every shown count: ``members[i] @ atoms = shown value``;
- what each hidden count's mark says: "<5" is from 1 to 4 (``1 <= members[i] @ atoms <= 4``),
  "[c]" is 5 or more (``members[i] @ atoms >= 5``), which is true of every "[c]" but the
  widened small counts, known only to be at least 1 (zeros are shown). (A reader who knew
  every "[c]" to be at least 1 and no more knows less: what this reader cannot pin, neither
  can that one.);
- the format's rules: ``equal @ atoms = 0`` and ``at_most @ atoms <= 0``, row by row;
- every atom is a whole number, at least 0.

First quick rules, line by line (a total and the counts that add up to it): no line may have
exactly one hidden count, nor a shown total that leaves every hidden count in it at the least
(or, all being "<5", the greatest) value its mark allows. Then the full check: a hidden count is
safe when some whole-number solution of everything above gives it another value. HiGHS finds
such solutions: linear programmes that push every open count up or down at once (rounded to
whole numbers when that still solves, or else a time-limited integer programme) clear most
counts together; each count left gets the exact test, its least and greatest value in the
linear relaxation (if the relaxation cannot move it by 1, nothing can), and an integer
programme when the relaxation's answer is fractional. An integer programme that finds nothing
within :data:`MIP_SECONDS` counts as "recoverable", so a slow answer can only hide more, never
less. A recoverable count gets a neighbour hidden (the smallest shown non-zero count beside it
in the smallest line where it is the only hidden one; failing that, the smallest shown total
containing it, or any shown count) and the check runs again. Every step is deterministic: the
same data always hide the same counts.
"""

from __future__ import annotations

from collections.abc import Sequence

import highspy
import numpy as np
from numpy.typing import NDArray
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse.csgraph import connected_components

from needsled._highs import quiet_highs
from needsled.privacy import THRESHOLD

__all__ = ["bounds", "protect", "recoverable"]

# Rounds of linear programmes with varied objectives before the exact check of what is left.
SCREEN_ROUNDS = 10
TOL = 1e-6
# Longest an integer programme may take to find another whole-number solution for one count.
MIP_SECONDS = 2.0


def bounds(
    value: NDArray[np.int64], wide: NDArray[np.bool_] | None = None
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """What a reader is assumed to know of each count if it is hidden: a "<5" (a count from 1
    to 4) is from 1 to 4; a "[c]" on a count of 5 or more is 5 or more, as a reader who takes
    every "[c]" to be 5 or more would rightly conclude; a small count marked "[c]" (``wide``)
    is at least 1 (zeros are shown)."""
    v = np.asarray(value)
    small = (v > 0) & (v < THRESHOLD)
    lower = np.where(small, 1.0, float(THRESHOLD))
    if wide is not None:
        small &= ~np.asarray(wide, dtype=bool)
    upper = np.where(small, float(THRESHOLD - 1), np.inf)
    return lower, upper


class _System:
    """The unknown atoms and what constrains them, given which counts are hidden."""

    def __init__(
        self,
        members: sparse.csr_matrix,
        atoms: NDArray[np.int64],
        hidden: NDArray[np.bool_],
        equal: sparse.csr_matrix,
        at_most: sparse.csr_matrix,
        least: NDArray[np.float64],
        most: NDArray[np.float64],
    ) -> None:
        value = members @ atoms
        fixed = _known_atoms(members, value, hidden)
        free = np.flatnonzero(~fixed)
        known = np.where(fixed, atoms, 0)
        self.free, self.true = free, atoms[free].astype(float)
        # An upper bound far above any count keeps every programme bounded. It only removes
        # solutions, so it can only make a count look recoverable, never the reverse.
        self.upper = 2.0 * float(np.abs(atoms).sum()) + 10.0
        self.members = members[:, free].tocsr()
        self.offset = (members @ known).astype(float)  # the known part of each count
        self.value = value
        rows_eq, rhs_eq, rows_ub, rhs_ub = [], [], [], []
        touch = np.diff(self.members.indptr) > 0
        shown = ~hidden & touch
        rows_eq.append(self.members[shown])
        rhs_eq.append(value[shown] - self.offset[shown])
        lower = hidden & touch & (least - self.offset > 0)  # "<5" at least 1, "[c]" at least 5
        rows_ub.append(-self.members[lower])
        rhs_ub.append(-(least[lower] - self.offset[lower]))
        upper = hidden & touch & np.isfinite(most)  # "<5" at most 4
        rows_ub.append(self.members[upper])
        rhs_ub.append(most[upper] - self.offset[upper])
        for mat, rows, rhs in ((equal, rows_eq, rhs_eq), (at_most, rows_ub, rhs_ub)):
            if mat.shape[0]:
                sub = mat[:, free].tocsr()
                use = np.diff(sub.indptr) > 0
                rows.append(sub[use])
                rhs.append(-(mat @ known)[use].astype(float))
        self.a_eq = sparse.vstack(rows_eq).tocsr()
        self.b_eq = np.concatenate(rhs_eq).astype(float)
        self.a_ub = sparse.vstack(rows_ub).tocsr()
        self.b_ub = np.concatenate(rhs_ub).astype(float)
        self.highs = self._linear_programme()
        self.component: NDArray[np.int32] | None = None

    def _linear_programme(self) -> highspy.Highs:
        """The relaxation as one HiGHS model, kept so that each new objective starts from the
        last solution's basis (a few pivots instead of a fresh solve)."""
        a = sparse.vstack([self.a_eq, self.a_ub]).tocsr()
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = len(self.free), a.shape[0]
        lp.col_cost_ = np.zeros(len(self.free))
        lp.col_lower_ = np.zeros(len(self.free))
        lp.col_upper_ = np.full(len(self.free), self.upper)
        lp.row_lower_ = np.concatenate([self.b_eq, np.full(len(self.b_ub), -highspy.kHighsInf)])
        lp.row_upper_ = np.concatenate([self.b_eq, self.b_ub])
        lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
        lp.a_matrix_.start_ = a.indptr.astype(np.int32)
        lp.a_matrix_.index_ = a.indices.astype(np.int32)
        lp.a_matrix_.value_ = a.data.astype(float)
        h = quiet_highs()
        h.setOptionValue("threads", 1)
        h.setOptionValue("presolve", "off")  # keeps the basis between objectives
        h.passModel(lp)
        return h

    def solve(self, cost: NDArray[np.float64]) -> NDArray[np.float64]:
        """A solution of the linear relaxation minimising ``cost``."""
        n = len(self.free)
        if n == 0:
            return np.zeros(0)
        h = self.highs
        h.changeColsCost(n, np.arange(n, dtype=np.int32), np.asarray(cost, dtype=float))
        h.run()
        if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            raise RuntimeError(
                f"suppression check failed: {h.modelStatusToString(h.getModelStatus())}"
            )
        return np.asarray(h.getSolution().col_value, dtype=float)

    def whole(self, x: NDArray[np.float64]) -> NDArray[np.float64] | None:
        """``x`` rounded to whole numbers, if that is still a solution (else ``None``)."""
        r = np.round(x)
        ok = (
            np.abs(self.a_eq @ r - self.b_eq).max(initial=0) <= TOL
            and (self.a_ub @ r - self.b_ub).max(initial=0) <= TOL
            and r.min(initial=0) >= 0
        )
        return r if ok else None

    def integer(self, cost: NDArray[np.float64]) -> NDArray[np.float64] | None:
        """The best whole-number solution for ``cost`` found within :data:`MIP_SECONDS`."""
        cons = [LinearConstraint(self.a_eq, self.b_eq, self.b_eq)] if self.a_eq.shape[0] else []
        if self.a_ub.shape[0]:
            cons.append(LinearConstraint(self.a_ub, -np.inf, self.b_ub))
        res = milp(
            cost,
            constraints=cons,
            integrality=np.ones(len(self.free)),
            bounds=Bounds(0, self.upper),
            options={"time_limit": MIP_SECONDS},
        )
        return None if res.x is None else self.whole(np.asarray(res.x, dtype=float))

    def witness(self, row: NDArray[np.float64], low: float, high: float) -> bool:
        """Whether a whole-number solution has ``low <= row @ x <= high``, found by an integer
        programme over the unknowns tied to ``row`` (the rest are independent of it) within
        :data:`MIP_SECONDS`; no answer in time counts as no."""
        if self.component is None:
            a = sparse.vstack([self.a_eq, self.a_ub]).tocsr()
            a.data[:] = 1
            _, self.component = connected_components(a.T @ a, directed=False)
        cols = np.flatnonzero(np.isin(self.component, np.unique(self.component[row != 0])))
        cons = [LinearConstraint(row[cols][None, :], low, high)]
        for mat, lo, hi in ((self.a_eq, self.b_eq, self.b_eq), (self.a_ub, None, self.b_ub)):
            sub = mat[:, cols].tocsr()
            use = np.diff(sub.indptr) > 0
            if use.any():
                lower = -np.inf if lo is None else lo[use]
                cons.append(LinearConstraint(sub[use], lower, hi[use]))
        res = milp(
            np.zeros(len(cols)),
            constraints=cons,
            integrality=np.ones(len(cols)),
            bounds=Bounds(0, self.upper),
            options={"time_limit": MIP_SECONDS},
        )
        return res.x is not None


def _known_atoms(
    members: sparse.csr_matrix, value: NDArray[np.int64], hidden: NDArray[np.bool_]
) -> NDArray[np.bool_]:
    """Atoms anyone can work out directly: those alone in a shown count, those in a shown zero,
    and (repeatedly) the last unknown atom of a shown count."""
    n = members.shape[1]
    shown = members[~hidden].tocsr()
    shown.data[:] = 1
    fixed = np.zeros(n, bool)
    zero_rows = value[~hidden] == 0
    fixed[np.unique(shown[zero_rows].indices)] = True
    while True:
        unknown = shown @ (~fixed).astype(np.int64)
        single = np.flatnonzero(unknown == 1)
        if not len(single):
            return fixed
        sub = shown[single].multiply((~fixed).astype(np.int64)).tocsr()
        sub.eliminate_zeros()
        fixed[sub.indices] = True


def recoverable(
    members: sparse.csr_matrix,
    atoms: NDArray[np.int64],
    hidden: NDArray[np.bool_],
    equal: sparse.csr_matrix,
    at_most: sparse.csr_matrix,
    wide: NDArray[np.bool_] | None = None,
) -> NDArray[np.int64]:
    """The hidden counts that the shown ones, the marks (see :func:`bounds`) and the rules
    leave only one possible value."""
    least, most = bounds(members @ atoms, wide)
    system = _System(members, atoms, hidden, equal, at_most, least, most)
    value = system.value.astype(float)
    rows = np.flatnonzero(hidden)
    m = system.members[rows]
    depends = np.diff(m.indptr) > 0
    pinned = list(rows[~depends])  # hidden, but computable from shown counts alone
    open_rows, m = rows[depends], m[depends]
    rng = np.random.default_rng(20240401)
    for round_ in range(SCREEN_ROUNDS):
        if not len(open_rows):
            break
        # push every open count up (or down, or some each way) at once; whole-number solutions
        # only count as proof (these objectives nearly always give them)
        weights = np.ones(len(open_rows)) * (-1.0 if round_ % 2 else 1.0)
        if round_ >= 2:
            weights *= rng.choice([-1.0, 1.0], len(open_rows))
        x = system.whole(system.solve(m.T @ weights))
        if x is None:  # a fractional vertex: ask for a good whole-number solution instead
            x = system.integer(m.T @ weights)
        if x is None:
            continue
        moved = np.abs(m @ x + system.offset[open_rows] - value[open_rows]) > 0.5
        open_rows, m = open_rows[~moved], m[~moved]
    for i, row in zip(open_rows, m, strict=True):
        cost = row.toarray().ravel()
        if not _moves(system, cost, value[i] - system.offset[i]):
            pinned.append(i)
    return np.array(sorted(pinned), dtype=np.int64)


def _moves(system: _System, cost: NDArray[np.float64], true: float) -> bool:
    """Whether a whole-number solution gives ``cost @ x`` a value other than ``true``.

    The linear relaxation first: if even it cannot move the count by 1, no whole-number
    solution can. If it can but its solution is fractional, an integer programme looks for a
    whole-number solution at least 1 away; one that finds none in time counts as "cannot move"
    (the count then gets protected: a wrong answer this way only hides more).
    """
    for sign in (1.0, -1.0):
        x = system.solve(-sign * cost)
        if sign * (cost @ x - true) <= 1 - TOL:
            continue
        r = system.whole(x)
        if r is not None and sign * (cost @ r - true) >= 1 - TOL:
            return True
        low, high = (true + 1, np.inf) if sign > 0 else (-np.inf, true - 1)
        if system.witness(cost, low, high):
            return True
    return False


def _lines(i: int, members: sparse.csr_matrix, links: sparse.csr_matrix) -> list[NDArray[np.int64]]:
    """The atom sets that tie count ``i`` to others, smallest first: ``i`` itself (as a total
    of the counts inside it), every published count containing it, and every rule touching it."""
    own = members[i].indices
    mark = np.zeros(members.shape[1], np.int64)
    mark[own] = 1
    contains = np.flatnonzero(members @ mark == len(own))
    sets = [own] + [members[p].indices for p in contains if p != i]
    if links.shape[0]:
        touched = np.flatnonzero(np.diff(links[:, own].tocsr().indptr) > 0)
        sets += [np.union1d(links[r].indices, own) for r in touched]
    return sorted(sets, key=len)


def _neighbour(
    i: int,
    lines: list[NDArray[np.int64]],
    members: sparse.csr_matrix,
    value: NDArray[np.int64],
    hidden: NDArray[np.bool_],
) -> tuple[bool, int | None, NDArray[np.int64]]:
    """The count to hide to protect count ``i``, and the line it was chosen in.

    A line through ``i`` where ``i`` is the only hidden count (``lonely``, first element True)
    is the likely reason ``i`` can be worked out: hide the smallest shown non-zero count beside
    ``i`` in the smallest such line (inside ``i`` when the line is ``i`` itself, a total).
    Failing that, the same in the smallest line with any shown count beside ``i``; failing
    that, the smallest shown total containing ``i``; failing that, none.
    """
    sizes = np.diff(members.indptr)
    shown = ~hidden & (value > 0)
    own = np.zeros(members.shape[1], np.int64)
    own[members[i].indices] = 1
    overlap_i = members @ own
    for lonely in (True, False):
        for k, atoms in enumerate(lines):
            inside = np.zeros(members.shape[1], np.int64)
            inside[atoms] = 1
            within = members @ inside == sizes
            beside = within & ((sizes < sizes[i]) if k == 0 else (overlap_i == 0))
            if lonely and (beside & hidden).any():
                continue
            options = np.flatnonzero(beside & shown)
            if len(options):
                return lonely, int(options[np.argmin(value[options])]), atoms
    totals = np.flatnonzero(shown & (overlap_i == sizes[i]) & (sizes > sizes[i]))
    if len(totals):
        j = int(totals[np.argmin(sizes[totals])])
        return False, j, members[j].indices
    return False, None, members[i].indices


def _local(
    lines: Sequence[tuple[int, Sequence[int]]],
    value: NDArray[np.int64],
    hidden: NDArray[np.bool_],
    twins: list[NDArray[np.int64]],
    least: NDArray[np.float64],
    most: NDArray[np.float64],
) -> None:
    """The quick rules, line by line (a total and the counts that add up to it), in place: a
    line with one hidden count, or whose shown total leaves each hidden count at the least (or
    each at the greatest) value its mark allows, gets its smallest shown non-zero count hidden
    too (its total if no other is left)."""
    on: dict[int, list[int]] = {}
    for k, (t, parts) in enumerate(lines):
        for i in (t, *parts):
            on.setdefault(i, []).append(k)
    todo = list(range(len(lines)))
    queued = set(todo)

    def hide(j: int) -> None:
        for i in twins[j]:
            hidden[i] = True
            for line in on.get(int(i), []):
                if line not in queued:
                    queued.add(line)
                    todo.append(line)

    while todo:
        k = todo.pop()
        queued.discard(k)
        t, parts = lines[k]
        p = np.asarray(parts, dtype=np.int64)
        hid = hidden[p]
        n_hidden = int(hid.sum()) + int(hidden[t])
        if n_hidden == 0:
            continue
        left = value[t] - value[p][~hid].sum()  # what the hidden counts add up to
        exposed = n_hidden == 1 or (
            not hidden[t]
            and hid.any()
            and (left == least[p][hid].sum() or left == most[p][hid].sum())
        )
        if not exposed:
            continue
        options = p[~hid & (value[p] > 0)]
        if len(options):
            j = int(options[np.argmin(value[options])])
        elif not hidden[t] and value[t] > 0:
            j = t
        else:
            continue
        hide(j)


def _twins(members: sparse.csr_matrix) -> list[NDArray[np.int64]]:
    """For each published count, every published count with the same atoms (itself included)."""
    members.sort_indices()
    ends = zip(members.indptr[:-1], members.indptr[1:], strict=True)
    groups: dict[bytes, list[int]] = {}
    keys = [members.indices[a:b].tobytes() for a, b in ends]
    for i, k in enumerate(keys):
        groups.setdefault(k, []).append(i)
    return [np.array(groups[k], dtype=np.int64) for k in keys]


def protect(
    members: sparse.csr_matrix,
    atoms: Sequence[int] | NDArray[np.int64],
    equal: sparse.csr_matrix | None = None,
    at_most: sparse.csr_matrix | None = None,
    lines: Sequence[tuple[int, Sequence[int]]] = (),
    totals: NDArray[np.bool_] | None = None,
) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """Which published counts to hide, and which hidden counts from 1 to 4 to mark "[c]"
    rather than "<5" (*widened*; see the module docstring).

    ``members`` is (published counts x atoms), 0/1; ``equal`` and ``at_most`` are rules over the
    atoms (rows ``r @ atoms == 0`` and ``r @ atoms <= 0``). ``lines`` (a total's index and the
    indices of the counts that add up to it) are optional: quick rules on them first save most
    of the slower checks. ``totals`` says which published counts are totals: they are widened
    before other counts. Counts from 1 to 4 are always hidden; identical counts (the same
    atoms) are hidden and widened together.

    A count that can be recovered gets a shown count beside it hidden (see :func:`_neighbour`).
    Where there is none, a small count is widened: the smallest hidden "<5" total containing it
    (its "<5" capped what the counts inside it add up to), else the count itself, else the
    smallest "<5" count containing it. When a round changes nothing, the smallest shown count
    anywhere is hidden, and then any "<5" widened (totals first).
    """
    x = np.asarray(atoms, dtype=np.int64)
    members = sparse.csr_matrix(members, dtype=np.int64)
    n = members.shape[1]
    equal = sparse.csr_matrix((0, n), dtype=np.int64) if equal is None else sparse.csr_matrix(equal)
    at_most = (
        sparse.csr_matrix((0, n), dtype=np.int64) if at_most is None else sparse.csr_matrix(at_most)
    )
    links = sparse.vstack([equal, at_most]).tocsr()
    value: NDArray[np.int64] = np.asarray(members @ x, dtype=np.int64)
    is_total = np.zeros(len(value), bool) if totals is None else np.asarray(totals, dtype=bool)
    twins = _twins(members)
    hidden: NDArray[np.bool_] = (value > 0) & (value < THRESHOLD)
    small = hidden.copy()
    wide = np.zeros(len(value), bool)
    for i in np.flatnonzero(hidden):
        hidden[twins[i]] = True
    sizes = np.diff(members.indptr)
    _local(lines, value, hidden, twins, *bounds(value, wide))
    while hidden.any():
        pinned = recoverable(members, x, hidden, equal, at_most, wide)
        if not len(pinned):
            break
        before = int(hidden.sum()) + int(wide.sum())
        choices = [
            _neighbour(int(i), _lines(int(i), members, links), members, value, hidden)
            for i in pinned
        ]
        # Lonely lines first; a count is skipped when an earlier choice in this round already
        # hid a count in the line it would use.
        lonely = [c for c in choices if c[0]] + [c for c in choices if not c[0]]
        newly = np.zeros(members.shape[1], bool)
        for _, j, line in lonely:
            if j is not None and not newly[line].any():
                hidden[twins[j]] = True  # identical published counts are hidden together
                newly[members[j].indices] = True
        for i, (_, j, _line) in zip(pinned, choices, strict=True):
            if j is not None:
                continue
            own = np.zeros(n, np.int64)
            own[members[i].indices] = 1
            overlap = members @ own
            open_ = small & ~wide
            inside = overlap == sizes[i]  # counts containing i (i among them)
            for candidates in (
                open_ & inside & is_total & (sizes > sizes[i]),
                open_ & (overlap == sizes[i]) & (sizes == sizes[i]),  # i itself
                open_ & inside,
            ):
                if (k := _smallest(candidates, sizes)) is not None:
                    wide[twins[k]] = True
                    break
        if int(hidden.sum()) + int(wide.sum()) == before:  # the last resorts
            if (k := _smallest(~hidden & (value > 0), value)) is not None:
                hidden[twins[k]] = True
            elif (k := _smallest(small & ~wide & is_total, sizes)) is not None or (
                k := _smallest(small & ~wide, sizes)
            ) is not None:
                wide[twins[k]] = True
            else:
                break  # every count hidden and every small one marked "[c]"
        _local(lines, value, hidden, twins, *bounds(value, wide))
    return hidden, wide


def _smallest(candidates: NDArray[np.bool_], key: NDArray[np.int64]) -> int | None:
    """The candidate with the smallest key (the first on a tie), or None."""
    options = np.flatnonzero(candidates)
    if not len(options):
        return None
    return int(options[np.argmin(key[options])])
