"""Outcomes and journeys from returns: hand-computed tables, small-number suppression by hand,
the command, and a property test that no hidden count in the exported CSV files can be worked
out by anyone holding all of them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import Bounds, LinearConstraint, milp
from typer.testing import CliRunner

from needsled.cli_returns import returns_app
from needsled.privacy import HIDDEN, LEGEND, SUPPRESSED
from needsled.returns.format import COLUMNS, NEED_CATEGORIES, SEX, WAIT_BANDS
from needsled.returns.outcomes import SUPPRESSION_OFF, SUPPRESSION_ON, outcome_tables
from needsled.returns.store import add_to_store

Q = "2025-Q1"
REASONS = ("completed", "disengaged", "moved to another service")
SATISFACTION = ("satisfied", "neither", "dissatisfied")


def hand_made() -> pd.DataFrame:
    """Two providers of ISVA in areas A1 and A2, one quarter."""
    rows: list[tuple[str, str, str, str, str, str, float]] = []

    def add(p: str, a: str, m: str, c: str, v: float) -> None:
        rows.append((p, "ISVA", a, Q, m, c, float(v)))

    for p, a, need, improved in (("P1", "A1", (10, 6), (7, 3)), ("P2", "A2", (20, 5), (15, 5))):
        for c, n, i in zip(NEED_CATEGORIES, (*need, *[0] * 6), (*improved, *[0] * 6), strict=True):
            add(p, a, "outcome_need", c, n)
            add(p, a, "outcome_improved", c, i)
    for c, v in zip(("police", "self", "other agency"), (5, 3, 2), strict=True):
        add("P1", "A1", "referrals", c, v)
    add("P1", "A1", "rereferred", "", 2)
    for c, v in zip(REASONS, (6, 3, 1), strict=True):
        add("P1", "A1", "closures", c, v)
    add("P1", "A1", "reengaged", "", 2)
    for c, v in zip(WAIT_BANDS, (3, 4, 2, 1, 0), strict=True):
        add("P1", "A1", "starts_wait", c, v)
    for c, v in zip(SATISFACTION, (8, 1, 1), strict=True):
        add("P1", "A1", "satisfaction", c, v)
    add("P1", "A1", "outcome_assessed", "", 12)
    add("P1", "A1", "outcome_better", "", 9)
    for c, assessed, better in zip(SEX, (7, 5, 0), (6, 3, 0), strict=True):
        add("P1", "A1", "outcome_assessed_sex", c, assessed)
        add("P1", "A1", "outcome_better_sex", c, better)
    return pd.DataFrame(rows, columns=list(COLUMNS))


def row(frame: pd.DataFrame, **keys: str) -> pd.Series:
    hit = np.ones(len(frame), bool)
    for k, v in keys.items():
        hit &= (frame[k] == v).to_numpy()
    assert hit.sum() == 1, f"{keys}: {hit.sum()} rows"
    return frame[hit].iloc[0]


def test_hand_made_shares_and_totals() -> None:
    out = outcome_tables(hand_made(), suppress=False)
    need = out["outcomes_by_need"]
    mh, shelter = NEED_CATEGORIES[0], NEED_CATEGORIES[1]
    r = row(need, quarter=Q, service="ISVA", area="A1", need=mh)
    assert (r["cases_with_need"], r["improved"], r["improved_share"]) == ("10", "7", "0.700")
    r = row(need, quarter=Q, service="ISVA", area="ALL", need=mh)  # 7+15 of 10+20
    assert (r["cases_with_need"], r["improved"], r["improved_share"]) == ("30", "22", "0.733")
    r = row(need, quarter="ALL", service="ALL", area="ALL", need=shelter)  # 3+5 of 6+5
    assert (r["cases_with_need"], r["improved"], r["improved_share"]) == ("11", "8", "0.727")
    r = row(need, quarter=Q, service="ISVA", area="A2", need=NEED_CATEGORIES[4])
    assert (r["cases_with_need"], r["improved_share"]) == ("0", "")  # no share of nobody
    assert list(need["need"][:8]) == list(NEED_CATEGORIES)  # the format's order

    j = row(out["journeys"], quarter=Q, service="ISVA", area="A1")
    assert (j["referrals"], j["rereferred"], j["rereferred_share"]) == ("10", "2", "0.200")
    assert (j["closures"], j["handed_over"], j["handed_over_share"]) == ("10", "1", "0.100")
    assert (j["reengaged"], j["reengaged_share"]) == ("2", "0.200")
    assert set(out["journeys"]["area"]) == {"A1", "ALL"}  # A2 returned no journey counts

    t = row(out["time_to_support"], quarter="ALL", service="ALL", area="ALL")
    # cumulative 3, 7, ...: half of 10 have started by the 5-12 weeks band
    assert (t["starts"], t["median_wait_band"]) == ("10", "5-12 weeks")
    s = row(out["satisfaction"], quarter=Q, service="ISVA", area="A1")
    assert (s["answers"], s["satisfied_share"]) == ("10", "0.800")

    g = out["outcomes_by_group"]
    assert set(g["area"]) == {"ALL"}  # groups only for all areas together
    r = row(g, quarter=Q, service="ISVA", group="all", category="all")
    assert (r["cases_assessed"], r["better"], r["better_share"]) == ("12", "9", "0.750")
    r = row(g, quarter=Q, service="ISVA", group="sex", category="male")
    assert (r["cases_assessed"], r["better"], r["better_share"]) == ("5", "3", "0.600")
    for frame in out.values():
        assert (frame["suppression"] == SUPPRESSION_OFF).all()


def test_hand_made_suppression() -> None:
    out = outcome_tables(hand_made())
    for frame in out.values():
        assert (frame["suppression"] == SUPPRESSION_ON).all()
    s = row(out["satisfaction"], quarter=Q, service="ISVA", area="A1")
    # 1 and 1 are small; with 10 answers shown, a shown 8 would leave 2 for two hidden counts
    # of at least 1 each: so 8 is hidden too, as "[c]" (it is not under 5); 10 = [c] + two
    # counts of 1 to 4 leaves the [c] anywhere from 5 to 8
    assert (s["satisfied"], s["neither"], s["dissatisfied"]) == (HIDDEN, SUPPRESSED, SUPPRESSED)
    assert (s["answers"], s["satisfied_share"]) == ("10", "")
    t = row(out["time_to_support"], quarter=Q, service="ISVA", area="A1")
    assert [t[b] for b in WAIT_BANDS] == [SUPPRESSED] * 4 + ["0"]  # zeros are shown
    assert (t["starts"], t["median_wait_band"]) == ("10", "")
    j = row(out["journeys"], quarter=Q, service="ISVA", area="A1")
    assert (j["referrals"], j["rereferred"], j["rereferred_share"]) == ("10", SUPPRESSED, "")
    assert (j["completed"], j["disengaged"], j["handed_over"]) == ("6", SUPPRESSED, SUPPRESSED)
    assert j["handed_over_share"] == ""
    need = out["outcomes_by_need"]
    shelter = NEED_CATEGORIES[1]
    a1 = row(need, quarter=Q, service="ISVA", area="A1", need=shelter)
    a2 = row(need, quarter=Q, service="ISVA", area="A2", need=shelter)
    total = row(need, quarter=Q, service="ISVA", area="ALL", need=shelter)
    # 3 is small; the total over areas (8) would give it away unless A2's 5 is hidden as well
    # (as "[c]": it is 5, not under 5)
    assert (a1["improved"], a2["improved"], total["improved"]) == (SUPPRESSED, HIDDEN, "8")
    assert (a1["improved_share"], a2["improved_share"], total["improved_share"]) == (
        "",
        "",
        "0.727",
    )
    # A "[c]" is 5 or more and those improved are at most those with the need: a shown 5
    # with the need in A2 would pin its improved at 5 (and A1's at 3), so it is hidden too,
    # and then A1's 6 (else 11 - 6 would give A2's 5)
    assert (a2["cases_with_need"], a1["cases_with_need"]) == (HIDDEN, HIDDEN)
    assert total["cases_with_need"] == "11"


def test_counts_under_5_are_not_left_under_a_total_that_pins_them_at_4() -> None:
    """Satisfied 4, neither 4, dissatisfied 0: a reader who knows that "<5" is at most 4 gets
    both from a shown total of 8 (4 + 4), so the total is hidden too: as "[c]", since it is 8.
    (Knowing only that hidden counts are at least 1, the total 8 looked safe.)"""
    rows = [("P1", "ISVA", "A1", Q, "satisfaction", c, float(v)) for c, v in
            zip(SATISFACTION, (4, 4, 0), strict=True)]  # fmt: skip
    s = outcome_tables(pd.DataFrame(rows, columns=list(COLUMNS)))["satisfaction"]
    assert len(s) == 5  # one row each level (the loop below must not be empty)
    for r in s.to_dict("records"):  # every level: the same counts
        assert (r["satisfied"], r["neither"], r["dissatisfied"]) == (SUPPRESSED, SUPPRESSED, "0")
        assert r["answers"] == HIDDEN
    # 3 and 4 under a total of 7 leave 3 + 4 or 4 + 3: the total stays
    rows = [("P1", "ISVA", "A1", Q, "satisfaction", c, float(v)) for c, v in
            zip(SATISFACTION, (3, 4, 0), strict=True)]  # fmt: skip
    s = outcome_tables(pd.DataFrame(rows, columns=list(COLUMNS)))["satisfaction"]
    assert set(s["answers"]) == {"7"}


def test_a_store_that_breaks_a_rule_is_still_suppressed() -> None:
    """A store written without the import's checks (re-referrals from a provider that gave no
    referrals) breaks "re-referred at most referrals": the rule is not assumed there, the
    tables are still made, and small counts are still hidden."""
    rows = [
        ("P1", "ISVA", "A1", Q, "rereferred", "", 3.0),
        ("P1", "ISVA", "A2", Q, "rereferred", "", 6.0),
    ]
    for area, routes in (("A1", (1, 0, 1)), ("A2", (9, 0, 1))):
        for c, v in zip(("police", "self", "other agency"), routes, strict=True):
            rows.append(("P2", "ISVA", area, Q, "referrals", c, float(v)))
    j = outcome_tables(pd.DataFrame(rows, columns=list(COLUMNS)))["journeys"]
    a1 = row(j, quarter=Q, service="ISVA", area="A1")
    a2 = row(j, quarter=Q, service="ISVA", area="A2")
    total = row(j, quarter=Q, service="ISVA", area="ALL")
    assert (a1["referrals"], a1["rereferred"]) == (SUPPRESSED, SUPPRESSED)  # 2 and 3
    # with the totals 12 and 9 shown, A2's 10 and 6 would give A1's away
    assert (a2["referrals"], a2["rereferred"]) == (HIDDEN, HIDDEN)
    assert (total["referrals"], total["rereferred"]) == ("12", "9")


def cli(*args: str) -> tuple[int, str]:
    app = typer.Typer()
    app.add_typer(returns_app)
    result = CliRunner().invoke(app, ["returns", *args])
    return result.exit_code, result.output


def test_outcomes_command(tmp_path: Path) -> None:
    store = tmp_path / "store"
    code, output = cli("outcomes", "--store", str(store), "--out", str(tmp_path / "o"))
    assert code == 1
    assert "No returns" in output
    add_to_store(store, hand_made())
    code, output = cli("outcomes", "--store", str(store), "--out", str(tmp_path / "o"))
    assert code == 0, output
    names = sorted(p.name for p in (tmp_path / "o").iterdir())
    assert names == sorted(
        f"{n}.csv"
        for n in (
            "outcomes_by_need",
            "outcomes_by_group",
            "journeys",
            "time_to_support",
            "satisfaction",
        )
    )
    shown = pd.read_csv(tmp_path / "o" / "satisfaction.csv", dtype=str, keep_default_na=False)
    assert SUPPRESSED in shown.to_numpy()
    assert f"Small numbers: {LEGEND}" in " ".join(output.split())
    assert "Replaced" not in output
    # into the same folder again: its tables are replaced and the command says so; nothing
    # else there is touched
    (tmp_path / "o" / "mine.csv").write_text("keep", encoding="utf-8")
    code, output = cli("outcomes", "--store", str(store), "--out", str(tmp_path / "o"))
    assert code == 0, output
    assert "Replaced the earlier outcomes_by_need.csv, outcomes_by_group.csv" in output
    assert (tmp_path / "o" / "mine.csv").read_text(encoding="utf-8") == "keep"
    assert not [p.name for p in (tmp_path / "o").iterdir() if p.name.startswith(".")]
    # --out naming a file: a plain error
    code, output = cli("outcomes", "--store", str(store), "--out", str(tmp_path / "o" / "mine.csv"))
    assert code == 1
    assert "is a file" in output
    assert "Traceback" not in output
    code, output = cli(
        "outcomes", "--store", str(store), "--out", str(tmp_path / "raw"), "--no-suppress"
    )
    assert code == 0
    assert "Suppression is OFF" in output
    raw = pd.read_csv(tmp_path / "raw" / "satisfaction.csv", dtype=str, keep_default_na=False)
    assert SUPPRESSED not in raw.to_numpy()
    assert (raw["suppression"] == SUPPRESSION_OFF).all()
    assert "internal use only" in SUPPRESSION_OFF


# ----------------------------------------------------------------- nothing can be recovered

# What each exported table holds, written out here independently of the code under test:
# (row keys beyond quarter/service/area, base count columns, columns that are sums of base
# ones, whether it goes down to areas).
SPEC: dict[str, tuple[tuple[str, ...], tuple[str, ...], dict[str, tuple[str, ...]], bool]] = {
    "outcomes_by_need": (("need",), ("cases_with_need", "improved"), {}, True),
    "outcomes_by_group": (("group", "category"), ("cases_assessed", "better"), {}, False),
    "journeys": (
        (),
        ("referrals", "rereferred", "completed", "disengaged", "handed_over", "reengaged"),
        {"closures": ("completed", "disengaged", "handed_over")},
        True,
    ),
    "time_to_support": ((), WAIT_BANDS, {"starts": WAIT_BANDS}, True),
    "satisfaction": ((), SATISFACTION, {"answers": SATISFACTION}, True),
}
# Across tables, within a quarter and service, all areas together: (table, column, the item
# or "" for each item) is at most (table, column, item); closures are the three reasons.
ACROSS = (
    ("outcomes_by_need", "cases_with_need", "outcomes_by_group", "cases_assessed"),
    ("outcomes_by_need", "improved", "outcomes_by_group", "better"),
    ("outcomes_by_group", "cases_assessed", "journeys", "closures"),
)
AT_MOST = {  # (table, count, the count it is at most, in the same row)
    ("outcomes_by_need", "improved", "cases_with_need"),
    ("outcomes_by_group", "better", "cases_assessed"),
    ("journeys", "rereferred", "referrals"),
}
PLACE = ("quarter", "service", "area")


def random_returns(
    seed: int, providers: int, areas: int, quarters: int, mean: float
) -> pd.DataFrame:
    """Returns that follow every rule of the format, with small counts (seeded)."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(providers):
        service = "ISVA" if p % 2 == 0 else "IDVA"
        for a in range(areas):
            for q in range(quarters):
                key = (f"P{p}", service, f"E0900000{a + 1}", f"2024-Q{q + 1}")

                def add(m: str, c: str, v: int, key: tuple[str, ...] = key) -> None:
                    rows.append((*key, m, c, float(v)))

                need = rng.poisson(mean, 3)
                improved = rng.binomial(need, 0.6)
                for c, n, i in zip(NEED_CATEGORIES[:3], need, improved, strict=True):
                    add("outcome_need", c, n)
                    add("outcome_improved", c, i)
                assessed = int(need.max() + rng.poisson(1))
                # at least those improved in any one need, at most those assessed
                better = max(int(rng.binomial(assessed, 0.6)), int(improved.max()))
                add("outcome_assessed", "", assessed)
                add("outcome_better", "", better)
                split = rng.multinomial(assessed, [0.6, 0.3, 0.1])
                for c, x, y in zip(
                    SEX, split, rng.multivariate_hypergeometric(split, better), strict=True
                ):
                    add("outcome_assessed_sex", c, x)
                    add("outcome_better_sex", c, y)
                routes = rng.poisson(mean, 3)
                for c, x in zip(("police", "self", "other agency"), routes, strict=True):
                    add("referrals", c, x)
                add("rereferred", "", rng.binomial(routes.sum(), 0.3))
                closed = rng.poisson(mean, 3)
                closed[0] += max(0, assessed - int(closed.sum()))  # assessed are among closed
                for c, x in zip(REASONS, closed, strict=True):
                    add("closures", c, x)
                add("reengaged", "", rng.poisson(mean / 2))
                for c, x in zip(WAIT_BANDS, rng.poisson(mean, 5), strict=True):
                    add("starts_wait", c, x)
                for c, x in zip(SATISFACTION, rng.poisson(mean, 3), strict=True):
                    add("satisfaction", c, x)
    return pd.DataFrame(rows, columns=list(COLUMNS))


def read_tables(folder: Path) -> dict[str, pd.DataFrame]:
    return {
        name: pd.read_csv(folder / f"{name}.csv", dtype=str, keep_default_na=False) for name in SPEC
    }


Cell = tuple[str, int, str, list[int]]  # table, row, column, the finest counts it adds up
Rule = dict[int, int]


def attacker(
    shown: dict[str, pd.DataFrame],
) -> tuple[dict[tuple[object, ...], int], list[Cell], list[Rule], list[Rule]]:
    """Everything the exported tables and the format's rules tell someone: a system over the
    finest counts (one per detail row and base column), and each published cell as a sum."""
    var: dict[tuple[object, ...], int] = {}
    cells: list[Cell] = []
    rules_eq: list[Rule] = []
    rules_le: list[Rule] = []
    for name, (items, base, sums, by_area) in SPEC.items():
        records = shown[name].to_dict("records")
        keys = [*PLACE, *items]

        def is_detail(r: dict[str, str], by_area: bool = by_area) -> bool:
            area_ok = r["area"] != "ALL" if by_area else r["area"] == "ALL"
            return r["quarter"] != "ALL" and r["service"] != "ALL" and area_ok

        detail = [tuple(r[k] for k in keys) for r in records if is_detail(r)]
        for r in records:
            if is_detail(r):
                for col in base:
                    if r[col] != "":
                        var[(name, *(r[k] for k in keys), col)] = len(var)
        for i, r in enumerate(records):
            under = [
                d
                for d in detail
                if all(
                    r[k] in ("ALL", d[j]) if k in PLACE else r[k] == d[j]
                    for j, k in enumerate(keys)
                )
            ]
            for col in (*base, *sums):
                if r[col] != "":
                    parts = sums.get(col, (col,))
                    ids = [var[(name, *d, p)] for d in under for p in parts if (name, *d, p) in var]
                    cells.append((name, i, col, ids))
        for d in detail:
            for table, small, big in AT_MOST:
                if table == name and (name, *d, small) in var and (name, *d, big) in var:
                    rules_le.append({var[(name, *d, small)]: 1, var[(name, *d, big)]: -1})
            if name == "outcomes_by_group" and d[3] == "all":
                for col in base:
                    sex = [var.get((name, *d[:3], "sex", c, col), -1) for c in SEX]
                    if (name, *d, col) in var and min(sex) >= 0:
                        rules_eq.append({var[(name, *d, col)]: -1} | dict.fromkeys(sex, 1))
    for small_table, small_col, big_table, big_col in ACROSS:
        # quarter and service -> the finest counts of each item (small) or of everyone (big)
        small: dict[tuple[object, ...], list[int]] = {}
        big: dict[tuple[object, ...], list[int]] = {}
        for key, j in var.items():
            name, q, s, *rest = key
            col = rest[-1]
            if name == small_table and col == small_col:
                small.setdefault((q, s, *rest[1:-1]), []).append(j)
            if name == big_table and big_table == "journeys" and col in REASON_COLUMNS:
                big.setdefault((q, s), []).append(j)
            if name == big_table and col == big_col and tuple(rest[1:-1]) == ("all", "all"):
                big.setdefault((q, s), []).append(j)
        for (q, s, *item), ids in small.items():
            if small_table == "outcomes_by_group" and tuple(item) != ("all", "all"):
                continue
            if (q, s) in big:
                rules_le.append(dict.fromkeys(ids, 1) | dict.fromkeys(big[(q, s)], -1))
    return var, cells, rules_eq, rules_le


REASON_COLUMNS = ("completed", "disengaged", "handed_over")


def constraints(
    n: int,
    cells: list[Cell],
    shown: dict[str, pd.DataFrame],
    truth: dict[str, pd.DataFrame],
    rules_eq: list[Rule],
    rules_le: list[Rule],
) -> LinearConstraint:
    """Shown cells equal their value, hidden ones are what their mark says, and the rules hold.
    "<5" is 1 to 4 (zeros are shown). The reader takes a "[c]" to be 5 or more: right for every
    "[c]" on a count of 5 or more (the truth says which), and for a small count marked "[c]"
    the reader knows only that it is at least 1. (A reader who takes every "[c]" to be at least
    1 knows less.)"""
    rows, lo, hi = [], [], []
    for name, i, col, ids in cells:
        text = shown[name].at[i, col]
        rows.append(dict.fromkeys(ids, 1.0))
        if text == SUPPRESSED:
            low, high = 1.0, 4.0
        elif text == HIDDEN:
            low, high = (5.0 if int(truth[name].at[i, col]) >= 5 else 1.0), np.inf
        else:
            low = high = float(text)
        lo.append(low)
        hi.append(high)
    for rule, equal in [(r, True) for r in rules_eq] + [(r, False) for r in rules_le]:
        rows.append({j: float(c) for j, c in rule.items()})
        lo.append(0.0 if equal else -np.inf)
        hi.append(0.0)
    a = np.zeros((len(rows), n))
    for k, r in enumerate(rows):
        for j, c in r.items():
            a[k, j] = c
    return LinearConstraint(a, lo, hi)


def extreme(n: int, cons: LinearConstraint, target: list[int], sign: float) -> float:
    """The largest (sign 1) or smallest (sign -1) whole-number value of a sum of counts."""
    cost = np.zeros(n)
    cost[target] = -sign
    res = milp(cost, constraints=[cons], integrality=np.ones(n), bounds=Bounds(0, 10_000))
    assert res.status == 0, res.message  # the true counts are a solution
    return float(-sign * res.fun)


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    providers=st.integers(1, 2),
    areas=st.integers(1, 3),
    quarters=st.integers(1, 2),
    mean=st.sampled_from([1.0, 2.5, 5.0]),
)
def test_no_hidden_count_can_be_recovered_from_the_exported_tables(
    tmp_path_factory: pytest.TempPathFactory,
    seed: int,
    providers: int,
    areas: int,
    quarters: int,
    mean: float,
) -> None:
    returns = random_returns(seed, providers, areas, quarters, mean)
    folder = tmp_path_factory.mktemp("out")
    for name, frame in outcome_tables(returns).items():
        frame.to_csv(folder / f"{name}.csv", index=False)
    shown = read_tables(folder)
    truth = {k: v.astype(str) for k, v in outcome_tables(returns, suppress=False).items()}
    var, cells, rules_eq, rules_le = attacker(shown)
    n = len(var)
    for name, (items, base, sums, _) in SPEC.items():
        s, t = shown[name], truth[name]
        assert s[[*PLACE, *items]].equals(t[[*PLACE, *items]])
        for col in (*base, *sums):
            small = t[col].map(lambda v: v.isdigit() and 0 < int(v) < 5)
            hid = s[col].isin([SUPPRESSED, HIDDEN])
            assert hid[small].all(), f"{name}.{col}: a count 1-4 shown"
            # the marks are true: "<5" only on counts 1 to 4; "[c]" on any other hidden count
            # (and on a small one where "<5" would give another away), never on a zero
            assert small[s[col] == SUPPRESSED].all(), f"{name}.{col}: <5 on a count of 5+"
            assert (t.loc[s[col] == HIDDEN, col] != "0").all(), f"{name}.{col}: [c] on a zero"
            same = ~s[col].isin([SUPPRESSED, HIDDEN])
            assert (s.loc[same, col] == t.loc[same, col]).all()
        for share in [c for c in s.columns if c.endswith("_share")]:
            num, den = {
                "improved_share": ("improved", "cases_with_need"),
                "better_share": ("better", "cases_assessed"),
                "rereferred_share": ("rereferred", "referrals"),
                "handed_over_share": ("handed_over", "closures"),
                "reengaged_share": ("reengaged", "closures"),
                "satisfied_share": ("satisfied", "answers"),
            }[share]
            hidden_part = s[num].isin([SUPPRESSED, HIDDEN]) | s[den].isin([SUPPRESSED, HIDDEN])
            assert (s.loc[hidden_part, share] == "").all(), f"{share} shown with a part hidden"
        if name == "time_to_support":
            parts_hidden = s[[*WAIT_BANDS, "starts"]].isin([SUPPRESSED, HIDDEN]).any(axis=1)
            assert (s.loc[parts_hidden, "median_wait_band"] == "").all()
    cons = constraints(n, cells, shown, truth, rules_eq, rules_le)
    for name, i, col, ids in cells:
        if shown[name].at[i, col] not in (SUPPRESSED, HIDDEN):
            continue
        true = float(truth[name].at[i, col])
        if extreme(n, cons, ids, 1.0) > true:
            continue
        low = extreme(n, cons, ids, -1.0)
        assert low < true, (
            f"{name} row {i} {col}: the hidden {int(true)} can be worked out from the tables"
        )
