"""Outcomes and journeys from provider returns: pure functions on the tidy returns table.

Five tables, each by quarter, service and area, with ``ALL`` in any of the three for all of
them together (so ``ALL, ALL, ALL`` is everything in the store); every count sums the returns
of every provider behind it:

- ``outcomes_by_need``: closed cases with a need in each of the eight categories at
  assessment, and how many of them were better able to cope and recover in it at closure;
  ``improved_share = improved / cases_with_need``.
- ``outcomes_by_group``: closed cases with outcomes recorded, and how many were better able to
  cope and recover in at least one need, for everyone (``all``) and by sex, age band, ethnic
  group, disability and sexual orientation where the returns give them.
- ``journeys``: referrals and re-referrals within a year (``rereferred_share`` of
  referrals), closures by reason with hand-overs to another service (``handed_over_share`` of
  closures), and closed cases that came back into support (``reengaged_share``: per closure in
  the same period, a rate, not the share of a cohort).
- ``time_to_support``: people who started support, by weeks waited since referral, and the
  median band (the first band by which half of them had started).
- ``satisfaction``: survey answers and ``satisfied_share`` of them.

Groups are shown for all areas together only: by area they would be almost all hidden. Totals
that cross (each area over the whole period, all services in one area) are left out: each
would be one more way to work out a hidden count, and so more counts to hide.

Counts are observations about service users, so every one is suppressed when small
(:mod:`needsled.returns.suppress`): 1 to 4 are shown as ``<5``, and more are hidden, shown as
``[c]`` (hidden to protect others), until no hidden count has only one possible value
for someone holding all five tables who knows that every total is the sum of what it totals
(across places and across columns, such as closures and their reasons), that each group's
categories add up to everyone (or at most everyone, where some return left that breakdown out),
that a share's numerator is at most its denominator (except ``reengaged_share``, a rate), that
within a quarter and service the cases with a need (and those improved in it) are at most the
cases with outcomes recorded (and those better in at least one need), which are at most the
closures, that a ``<5`` is from 1 to 4 and a ``[c]`` 5 or more (zeros are shown; a small
count is marked ``[c]`` only where a ``<5`` would cap what the counts tied to it add up to, and
is then known only to be at least 1). A rule is assumed only where the counts keep it (the
import checks each return).
A share is shown only when its numerator and denominator both are; a median band
only when no count it rests on is hidden. A blank cell means no return gave that count.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse

from needsled.privacy import HIDDEN, SUPPRESSED, hidden_text
from needsled.returns.format import GROUPS, NEED_CATEGORIES, WAIT_BANDS
from needsled.returns.suppress import protect

__all__ = ["ALL", "SUPPRESSION_OFF", "SUPPRESSION_ON", "TABLES", "outcome_tables"]

ALL = "ALL"
PLACE = ("quarter", "service", "area")
SUPPRESSION_ON = (
    f"on: {SUPPRESSED} is a count from 1 to 4; {HIDDEN} a count hidden so that no small count "
    "can be worked out (usually 5 or more)"
)
SUPPRESSION_OFF = "OFF: internal use only; small counts are shown and this table must not be shared"
SATISFACTION = ("satisfied", "neither", "dissatisfied")
# Shares whose numerator is not part of the denominator (people who came back into support are
# not among this period's closures): every other numerator is at most its denominator.
RATES = frozenset({"reengaged_share"})
# Rules across tables that the import checks return by return: (table, column, item) is at
# most (table, column, item), summed over areas within each quarter and service ("" = every
# item). Cases with a need are among those with outcomes recorded, those improved in a need
# among those better in at least one, and cases with outcomes recorded among those closed.
ACROSS = (
    (
        ("outcomes_by_need", "cases_with_need", ""),
        ("outcomes_by_group", "cases_assessed", "all|all"),
    ),
    (("outcomes_by_need", "improved", ""), ("outcomes_by_group", "better", "all|all")),
    (("outcomes_by_group", "cases_assessed", "all|all"), ("journeys", "closures", "")),
)


@dataclass(frozen=True)
class Count:
    """One count column: ``measure`` summed over ``category`` (``None``: every category)."""

    column: str
    measure: str
    category: str | None


@dataclass(frozen=True)
class Table:
    name: str
    item_columns: tuple[str, ...]  # extra row keys (e.g. need), split from the item text
    counts: Mapping[str, tuple[Count, ...]]  # item text -> its count columns ("" = no items)
    shares: tuple[tuple[str, str, str], ...]  # (share column, numerator, denominator)
    # count columns that add up to another count column in the same row: (total, parts)
    column_sums: tuple[tuple[str, tuple[str, ...]], ...] = ()
    item_total: str = ""  # the item that the others add up to, group by group (if they do)
    by_area: bool = True  # False: every area together only (groups are too small by area)


def _tables() -> tuple[Table, ...]:
    groups: dict[str, tuple[Count, ...]] = {
        "all|all": (
            Count("cases_assessed", "outcome_assessed", ""),
            Count("better", "outcome_better", ""),
        )
    }
    for g, cats in GROUPS.items():
        for c in cats:
            groups[f"{g}|{c}"] = (
                Count("cases_assessed", f"outcome_assessed_{g}", c),
                Count("better", f"outcome_better_{g}", c),
            )
    reasons = (
        ("completed", "completed"),
        ("disengaged", "disengaged"),
        ("handed_over", "moved to another service"),
    )
    return (
        Table(
            "outcomes_by_need",
            ("need",),
            {n: (Count("cases_with_need", "outcome_need", n),
                 Count("improved", "outcome_improved", n)) for n in NEED_CATEGORIES},
            (("improved_share", "improved", "cases_with_need"),),
        ),
        Table("outcomes_by_group", ("group", "category"), groups,
              (("better_share", "better", "cases_assessed"),), item_total="all|all",
              by_area=False),
        Table(
            "journeys",
            (),
            {"": (Count("referrals", "referrals", None),
                  Count("rereferred", "rereferred", ""),
                  Count("closures", "closures", None),
                  *(Count(col, "closures", cat) for col, cat in reasons),
                  Count("reengaged", "reengaged", ""))},
            (("rereferred_share", "rereferred", "referrals"),
             ("handed_over_share", "handed_over", "closures"),
             ("reengaged_share", "reengaged", "closures")),
            (("closures", tuple(col for col, _ in reasons)),),
        ),
        Table(
            "time_to_support",
            (),
            {"": (Count("starts", "starts_wait", None),
                  *(Count(b, "starts_wait", b) for b in WAIT_BANDS))},
            (),
            (("starts", WAIT_BANDS),),
        ),
        Table(
            "satisfaction",
            (),
            {"": (Count("answers", "satisfaction", None),
                  *(Count(c, "satisfaction", c) for c in SATISFACTION))},
            (("satisfied_share", "satisfied", "answers"),),
            (("answers", SATISFACTION),),
        ),
    )  # fmt: skip


TABLES = _tables()
MEASURES_USED = sorted({c.measure for t in TABLES for cs in t.counts.values() for c in cs})


def _atoms(returns: pd.DataFrame) -> pd.DataFrame:
    """The counts the tables use, one row per returned count (an *atom*)."""
    atoms = returns[returns["measure"].isin(MEASURES_USED)].copy()
    atoms["value"] = atoms["value"].round().astype(np.int64)
    return atoms.reset_index(drop=True)


def _sum_columns(t: Table) -> dict[str, tuple[str, ...]]:
    return dict(t.column_sums)


def _cells(atoms: pd.DataFrame) -> pd.DataFrame:
    """The finest counts each table publishes (*cells*): its rows for each quarter, service
    and area (all areas together for a table not by area), in each column that is not itself
    the sum of other columns. Each cell adds up the returns of every provider behind it."""
    parts = []
    for t in TABLES:
        sums = _sum_columns(t)
        for item, counts in t.counts.items():
            for c in counts:
                if c.column in sums:
                    continue
                hit = atoms["measure"] == c.measure
                if c.category is not None:
                    hit &= atoms["category"] == c.category
                rows = atoms.loc[hit, [*PLACE, "value"]]
                if not t.by_area:
                    rows = rows.assign(area=ALL)
                if len(rows):
                    parts.append(rows.assign(table=t.name, item=item, column=c.column))
    keys = ["table", *PLACE, "item", "column"]
    if not parts:
        return pd.DataFrame(columns=[*keys, "value"])
    cells = pd.concat(parts, ignore_index=True).groupby(keys, sort=True, as_index=False)["value"]
    out = pd.DataFrame(cells.sum())
    out["value"] = out["value"].to_numpy(dtype=np.int64)
    return out


# Which of (quarter, service, area) each level of a table totals over: each area; all areas
# for a service; all services; and the same for the whole period. (Totals that cross, such as
# each area over the whole period, are left out: every crossing total is one more way to work
# out a hidden count, and so more counts to hide.)
LEVELS = (
    (False, False, False),
    (False, False, True),
    (False, True, True),
    (True, False, True),
    (True, True, True),
)


def _published(cells: pd.DataFrame) -> tuple[pd.DataFrame, sparse.csr_matrix]:
    """Every published count (each row of each table: see :data:`LEVELS`, in every column) and
    the cells it adds up."""
    keys = ["table", *PLACE, "item", "column"]
    base = cells[keys].assign(cell=np.arange(len(cells)))
    totals = []
    for t in TABLES:
        for total, parts in t.column_sums:
            mine = base[(base["table"] == t.name) & base["column"].isin(parts)]
            totals.append(mine.assign(column=total))
    assign = pd.concat([base, *totals], ignore_index=True)
    copies = []
    for pattern in LEVELS:
        c = assign.copy()
        for place, is_total in zip(PLACE, pattern, strict=True):
            if is_total:
                c[place] = ALL
        copies.append(c)
    long = pd.concat(copies, ignore_index=True)
    long["pub"] = long.groupby(keys, sort=True).ngroup()
    pubs = long.drop_duplicates("pub").sort_values("pub")[[*keys, "pub"]].reset_index(drop=True)
    pairs = long[["pub", "cell"]].drop_duplicates()
    members = sparse.csr_matrix(
        (np.ones(len(pairs), np.int64), (pairs["pub"], pairs["cell"])),
        shape=(len(pubs), len(cells)),
    )
    return pubs, members


def _lines(pubs: pd.DataFrame, value: np.ndarray) -> list[tuple[int, list[int]]]:
    """Totals and the published counts that add up to them: along quarter, service and area
    (ALL and its places), across a row's columns (closures and their reasons), and across items
    (everyone and each group's categories, where those add up)."""
    keys = ["table", *PLACE, "item", "column"]
    index = {k: i for i, k in enumerate(pubs[keys].itertuples(index=False, name=None))}
    found: dict[tuple[int, ...], list[int]] = {}
    for i, key in enumerate(pubs[keys].itertuples(index=False, name=None)):
        for d in range(1, 1 + len(PLACE)):  # along a place: the key with ALL there is the total
            if key[d] != ALL:
                parent = index.get((*key[:d], ALL, *key[d + 1 :]))
                if parent is not None:
                    found.setdefault((parent, d), []).append(i)
    lines = [(t, parts) for (t, _), parts in found.items()]
    by_table = {t.name: t for t in TABLES}
    for i, key in enumerate(pubs[keys].itertuples(index=False, name=None)):
        t = by_table[key[0]]
        for total_column, parts in t.column_sums:
            if key[-1] == total_column:
                got = [index.get((*key[:-1], p)) for p in parts]
                lines.append((i, [j for j in got if j is not None]))
        if t.item_total and key[4] == t.item_total:
            for g in GROUPS:
                got = [index.get((*key[:4], f"{g}|{c}", key[5])) for c in GROUPS[g]]
                parts_ = [j for j in got if j is not None]
                if parts_ and value[parts_].sum() == value[i]:
                    lines.append((i, parts_))
    return [(t, parts) for t, parts in lines if value[parts].sum() == value[t]]


def _rules(cells: pd.DataFrame) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
    """What the return format says about the cells, as rows ``r @ cells == 0`` and
    ``r @ cells <= 0``: a share's numerator is at most its denominator (those improved, of
    those with the need); each group's categories add up to everyone (``<=`` where some return
    left that breakdown out); and, within a quarter and service, the rules across tables in
    :data:`ACROSS`."""
    keys = ["table", *PLACE, "item", "column"]
    where: dict[tuple[str, ...], list[int]] = {}
    for i, key in enumerate(cells[keys].itertuples(index=False, name=None)):
        where[key] = [i]
    value = cells["value"].to_numpy()
    for t in TABLES:
        for total, summed in t.column_sums:
            for key in [k for k in where if k[0] == t.name and k[-1] == summed[0]]:
                where[(*key[:-1], total)] = [
                    j for p in summed for j in where.get((*key[:-1], p), [])
                ]
    by_table = {t.name: t for t in TABLES}
    eq: list[dict[int, int]] = []
    le: list[dict[int, int]] = []

    def at_most(small: Sequence[int], big: Sequence[int]) -> None:
        # A rule is only assumed where the counts keep it: a store that did not come through
        # the import's checks may break one, and a broken rule is nobody's knowledge.
        if small and big and value[list(small)].sum() <= value[list(big)].sum():
            row = dict.fromkeys(small, 1)
            for j in big:
                row[j] = row.get(j, 0) - 1
            le.append(row)

    for key, cells_of in list(where.items()):
        t = by_table[key[0]]
        for share, num, den in t.shares:
            if share in RATES:  # a rate, not a part of the whole: no "at most"
                continue
            if key[-1] == num and (*key[:-1], den) in where:
                at_most(cells_of, where[(*key[:-1], den)])
        if t.item_total and key[4] == t.item_total:
            for g, cats in GROUPS.items():
                ids = [j for c in cats for j in where.get((*key[:4], f"{g}|{c}", key[5]), [])]
                if not ids:
                    continue
                if value[ids].sum() == value[cells_of[0]]:
                    eq.append(dict.fromkeys(ids, 1) | {cells_of[0]: -1})
                else:
                    at_most(ids, cells_of[:1])
    # across tables, within each quarter and service (all its areas together)
    pooled: dict[tuple[str, ...], list[int]] = {}
    for (table, quarter, service, _area, item, column), cells_of in where.items():
        pooled.setdefault((table, quarter, service, item, column), []).extend(cells_of)
    for (table, column, item), (big_table, big_column, big_item) in ACROSS:
        for (t_, quarter, service, it, col), small in pooled.items():
            if t_ == table and col == column and item in ("", it):
                at_most(small, pooled.get((big_table, quarter, service, big_item, big_column), []))
    n = len(cells)
    return _matrix(eq, n), _matrix(le, n)


def _matrix(rows: Sequence[dict[int, int]], n: int) -> sparse.csr_matrix:
    r = [i for i, row in enumerate(rows) for _ in row]
    c = [j for row in rows for j in row]
    v = [x for row in rows for x in row.values()]
    return sparse.csr_matrix((v, (r, c)), shape=(len(rows), n), dtype=np.int64)


def _order(frame: pd.DataFrame, items: Sequence[str]) -> pd.DataFrame:
    """Rows by place, with ALL after the places it totals, then items in the format's order."""
    sort = pd.DataFrame(
        {f"{k}{j}": frame[k] == ALL if j == 0 else frame[k] for k in PLACE for j in (0, 1)}
    )
    sort["item"] = frame["_item"].map({item: i for i, item in enumerate(items)})
    order = sort.sort_values(list(sort.columns), kind="stable").index
    return frame.loc[order].drop(columns="_item").reset_index(drop=True)


def _format(
    t: Table,
    pubs: pd.DataFrame,
    value: np.ndarray,
    hidden: np.ndarray,
    wide: np.ndarray,
    note: str,
) -> pd.DataFrame:
    mine = pubs["table"].to_numpy() == t.name
    # "<5" for 1 to 4, "[c]" for the others and for small totals widened
    text = hidden_text(value[mine], hidden[mine], wide[mine])
    sub = pubs[mine].assign(value=value[mine], hidden=hidden[mine], text=text)
    columns = [c.column for c in next(iter(t.counts.values()))]
    rows = []
    for (q, s, a, item), g in sub.groupby([*PLACE, "item"], sort=False):
        rec: dict[str, object] = dict(zip(PLACE, (q, s, a), strict=True)) | {"_item": item}
        if t.item_columns:
            rec |= dict(zip(t.item_columns, str(item).split("|"), strict=True))
        shown = {
            col: (int(v), bool(h))
            for col, v, h in zip(g["column"], g["value"], g["hidden"], strict=True)
        }
        marks = dict(zip(g["column"], g["text"], strict=True))
        for col in columns:
            rec[col] = str(marks.get(col, ""))
        for share, num, den in t.shares:
            n, nh = shown.get(num, (None, True))
            d, dh = shown.get(den, (None, True))
            ok = n is not None and d is not None and not nh and not dh and d > 0
            rec[share] = f"{n / d:.3f}" if ok else ""  # type: ignore[operator]
        if t.name == "time_to_support":
            rec["median_wait_band"] = _median_band(shown)
        rec["suppression"] = note
        rows.append(rec)
    out_cols = [*PLACE, *t.item_columns, *columns, *(s for s, _, _ in t.shares)]
    if t.name == "time_to_support":
        out_cols.append("median_wait_band")
    frame = pd.DataFrame(rows, columns=["_item", *out_cols, "suppression"], dtype=object)
    return _order(frame, list(t.counts)) if len(frame) else frame.drop(columns="_item")


def _median_band(shown: dict[str, tuple[int, bool]]) -> str:
    """The first wait band by which half of those who started had started; blank when any
    count it rests on is hidden (it would narrow down what the hidden counts are)."""
    cells = [shown.get(b) for b in WAIT_BANDS]
    total = shown.get("starts")
    if total is None or total[1] or any(c is None or c[1] for c in cells) or total[0] == 0:
        return ""
    running = 0
    for band, c in zip(WAIT_BANDS, cells, strict=True):
        running += c[0]  # type: ignore[index]
        if 2 * running >= total[0]:
            return band
    return ""


def outcome_tables(returns: pd.DataFrame, *, suppress: bool = True) -> dict[str, pd.DataFrame]:
    """The five outcome and journey tables (see the module docstring), as text ready to write.

    ``suppress=False`` (internal use only) shows every count; each table's ``suppression``
    column then says so on every row.
    """
    cells = _cells(_atoms(returns))
    pubs, members = _published(cells)
    x = cells["value"].to_numpy(dtype=np.int64)
    value = members @ x if len(pubs) else np.zeros(0, np.int64)
    if suppress and len(pubs):
        equal, at_most = _rules(cells)
        hidden, wide = protect(members, x, equal, at_most, _lines(pubs, value), _totals(pubs))
    else:
        hidden = wide = np.zeros(len(pubs), bool)
    note = SUPPRESSION_ON if suppress else SUPPRESSION_OFF
    return {t.name: _format(t, pubs, value, hidden, wide, note) for t in TABLES}


def _totals(pubs: pd.DataFrame) -> np.ndarray:
    """The published counts that are totals: in a row with ``ALL`` (quarter, service or area)
    or in a column that adds others up (closures, starts, answers). Where a small count must be
    marked "[c]" rather than "<5", a total is chosen first."""
    total_columns = {total for t in TABLES for total, _ in t.column_sums}
    out = pubs["column"].isin(total_columns).to_numpy(dtype=bool, copy=True)
    for place in PLACE:
        out |= (pubs[place] == ALL).to_numpy()
    return out
