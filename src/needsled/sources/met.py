"""Metropolitan Police borough-level recorded crime (London Datastore "MPS Borough Level Crime").

Layout and quirks (see ``shared/data/README.md`` §1) and how each is handled:

* **Wide layout**: ``MajorText, MinorText, <borough column>, YYYYMM, YYYYMM, …``; one row
  per borough × minor category. Reshaped here to one row per borough × category × month.
* **Two taxonomies**. Old files (``LookUp_BoroughName``) use Title Case and very detailed
  "Miscellaneous" and "Possession of Weapons" minors; new (CONNECT, 2024) files
  (``BoroughName``) use UPPER CASE and coarser minors. Old categories are renamed to the
  new ones (:data:`OLD_TO_NEW_CATEGORY`); old minors under the two detailed majors are
  *summed* into the single new minor. Where releases overlap, London totals agree across
  formats within 1.5% for all crime in every month, and within 0.7% per major category
  summed over each overlap, except fraud and forgery (3%), drugs (1.2%) and the two summed
  categories, miscellaneous and weapons (1.5%, 2.7%). That agreement is what justifies
  the mapping. Old categories with no mapping keep their original Title Case label, are
  not zero-filled, and are listed in ``MetCrime.warnings``.
* **Non-borough rows**: ``London Heathrow and London City Airports`` (all files) and
  ``Unknown`` (new format only) are not boroughs. They are returned in
  ``MetCrime.excluded`` with a reason, never dropped, and *are* counted by
  :meth:`MetCrime.london_total`: the published London totals include them. ``Unknown`` is
  large (12-19% of London rape each year 2017-2022) and only the new format has it; the
  old format assigns those offences to boroughs. So the **old and new formats are not
  comparable at borough level** (old-format borough rape counts are mostly higher, by up
  to ~40%) even though their London totals agree.
* **Overlapping releases**. Every month is taken whole from one release, so no month mixes
  formats (which would double count ``Unknown``). ``precedence="new_format_first"``
  (default): new-format releases outrank old ones, then the release with the latest last
  month wins; old releases only fill months no new-format release covers.
  ``precedence="latest_release"``: the latest last month wins, ties go to the new format.
  With the four published files this takes 2022-02..2023-02 from the old format, which
  puts a level step into every borough series, hence the default.
* **Rows missing from a release** mean "none recorded": the MPS omits all-zero rows (e.g.
  some boroughs have no ``Domestic Burglary`` row in the old recent file). The stitched
  table is therefore completed with zeros for every area in the month's release × every
  known category, so each borough × category series is continuous.

* **Renamed categories are not merged.** In the new recent file ``BURGLARY IN A DWELLING``
  stops in 2024-02 and ``BURGLARY - RESIDENTIAL`` starts (a definition change, not only a
  name), and ``NFIB FRAUD`` appears; each stays its own series, so add them up on purpose.

``month`` is a pandas ``Period[M]`` column throughout (sorts and does arithmetic correctly,
unlike ``'YYYY-MM'`` strings).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa

from needsled.sources.errors import (
    Problem,
    SourceFormatError,
    check_counts,
    check_duplicates,
    check_text,
    read_csv_strict,
)
from needsled.sources.population import LONDON_BOROUGHS

__all__ = [
    "NON_BOROUGH_AREAS",
    "OLD_TO_NEW_CATEGORY",
    "MetCrime",
    "MetFileInfo",
    "read_met_borough_crime",
]

Precedence = Literal["new_format_first", "latest_release"]
Taxonomy = Literal["old", "new"]

_KIND = "Met Police borough-level crime"
_FIX = (
    "use an unmodified 'MPS Borough Level Crime' CSV from the London Datastore: header "
    "'MajorText,MinorText,BoroughName' (or 'LookUp_BoroughName') followed by consecutive "
    "YYYYMM month columns, and one whole number of offences (>= 0) in every month cell."
)
_BOROUGH_COLUMNS: dict[str, Taxonomy] = {"BoroughName": "new", "LookUp_BoroughName": "old"}
_MONTH = re.compile(r"^(\d{4})(0[1-9]|1[0-2])$")

#: Areas in the MPS files that are not boroughs, with the reason they are set aside.
NON_BOROUGH_AREAS: dict[str, str] = {
    "Unknown": "location unknown: offences the MPS could not assign to a borough "
    "(new-format files only; the old format assigned them to boroughs)",
    "London Heathrow and London City Airports": "airports: policed by the MPS but not a borough",
}

# Old taxonomy -> new. "[Old Major]" or "[Old Major => NEW MAJOR]" (default: upper-cased),
# then "Old Minor" (new = upper-cased) or "Old Minor => NEW MINOR"; "*" = every old minor of
# that major, summed into one new minor. Old minors are cut at 50 characters, as published.
_OLD_TO_NEW_TEXT = """
[Arson and Criminal Damage]
Arson
Criminal Damage
[Burglary]
Burglary Business and Community
Domestic Burglary => BURGLARY IN A DWELLING
[Drug Offences]
Drug Trafficking => TRAFFICKING OF DRUGS
Possession of Drugs
[Historical Fraud and Forgery => FRAUD AND FORGERY]
Historical Fraud and Forgery => FRAUD AND FORGERY
[Miscellaneous Crimes Against Society]
* => MISC CRIMES AGAINST SOCIETY
[Possession of Weapons]
* => POSSESSION OF WEAPONS
[Public Order Offences]
Other Offences Against the State, or Public Order => OTHER OFFENCES PUBLIC ORDER
Public Fear Alarm or Distress
Racially or Religiously Aggravated Public Fear, Al => RACE OR RELIGIOUS AGG PUBLIC FEAR
Violent Disorder
[Robbery]
Robbery of Business Property
Robbery of Personal Property
[Sexual Offences]
Rape
Other Sexual Offences
[Theft]
Bicycle Theft
Other Theft
Shoplifting
Theft from Person => THEFT FROM THE PERSON
[Vehicle Offences]
Aggravated Vehicle Taking
Interfering with a Motor Vehicle
Theft from a Motor Vehicle => THEFT FROM A VEHICLE
Theft or Taking of a Motor Vehicle => THEFT OR UNAUTH TAKING OF A MOTOR VEH
[Violence Against the Person]
Homicide
Violence with Injury
Violence without Injury
"""


def _parse_mapping(text: str) -> dict[tuple[str, str], tuple[str, str]]:
    out: dict[tuple[str, str], tuple[str, str]] = {}
    old_major = new_major = ""
    for line in text.strip().splitlines():
        old, _, new = (part.strip() for part in line.strip("[]").partition("=>"))
        if line.startswith("["):
            old_major, new_major = old, new or old.upper()
        else:
            out[(old_major, old)] = (new_major, new or old.upper())
    return out


#: Old-taxonomy (major, minor) → new-taxonomy (major, minor), matched case-insensitively.
#: A minor of ``"*"`` maps every old minor of that major (their counts are summed).
OLD_TO_NEW_CATEGORY: dict[tuple[str, str], tuple[str, str]] = _parse_mapping(_OLD_TO_NEW_TEXT)
_OLD_PAIR = {(a.casefold(), b.casefold()): v for (a, b), v in OLD_TO_NEW_CATEGORY.items()}
_OLD_MAJOR = {a.casefold(): v for (a, b), v in OLD_TO_NEW_CATEGORY.items() if b == "*"}


def _norm(name: str) -> str:
    """Name key tolerant of case, spacing and '&' vs 'and'."""
    return " ".join(name.replace("&", " and ").split()).casefold()


_UNMATCHED = "unmatched area name: not one of the 33 London authorities; check the spelling"
_BOROUGH_BY_NAME = {_norm(name): (code, name) for code, name, _ in LONDON_BOROUGHS}
_NON_BOROUGH = {_norm(k): v for k, v in NON_BOROUGH_AREAS.items()}


@dataclass(frozen=True)
class MetFileInfo:
    """One input release: its format and the months it covers."""

    path: Path
    taxonomy: Taxonomy
    first_month: pd.Period
    last_month: pd.Period
    n_rows: int


@dataclass(frozen=True)
class _Parsed:
    info: MetFileInfo
    keys: pd.DataFrame  # area, major, minor (after category mapping, aggregated)
    counts: np.ndarray  # int64, len(keys) x len(months)
    months: np.ndarray  # int64 period ordinals, consecutive
    unmapped: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class MetCrime:
    """Result of :func:`read_met_borough_crime`.

    ``data``: ``area_code, area_name, major, minor, month, count, source_file`` for the
    boroughs. ``excluded``: the non-borough and unmatched rows, same columns minus
    ``area_code`` plus ``reason``. ``month_sources``: ``month, source_file, taxonomy``, the
    release each month was taken from. ``revisions``: every cell a losing release also
    covered: ``month, area_name, major, minor, old_value, new_value, change, old_file,
    new_file`` (``new_value`` is <NA> when the winning release has no such area, e.g.
    ``Unknown`` is absent from old releases). ``files`` are in precedence order, best first.
    """

    data: pd.DataFrame
    excluded: pd.DataFrame
    month_sources: pd.DataFrame
    revisions: pd.DataFrame
    files: tuple[MetFileInfo, ...]
    gaps: tuple[pd.Period, ...] = ()
    unmatched_names: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    def london_total(
        self, *, major: str | None = None, minor: str | None = None, boroughs_only: bool = False
    ) -> pd.Series:
        """Monthly MPS-area total (``Period[M]`` index), optionally for one major/minor.

        Includes ``Unknown`` and the airports unless ``boroughs_only``; the published London
        figures (e.g. ~8,800 rapes in 2024) include them. Months no release covers
        (``gaps``) are left out rather than shown as zero.
        """
        frames = [self.data] if boroughs_only else [self.data, self.excluded]
        both = _select(
            pd.concat([f[["major", "minor", "month", "count"]] for f in frames]), major, minor
        )
        covered = self.month_sources[self.month_sources["source_file"] != ""]
        months = pd.PeriodIndex(covered["month"], freq="M")
        total = both.groupby("month")["count"].sum().reindex(months, fill_value=0)
        return total.rename("count")

    def london_revisions(
        self, *, major: str | None = None, minor: str | None = None
    ) -> pd.DataFrame:
        """Each overlapping month's London-wide total (all areas, incl. non-borough) in a
        losing release vs the winning release: ``month, old_file, new_file, old_total,
        new_total, change, rel_change``. Borough-level ``revisions`` mix in the format
        change (``Unknown``); London totals are the like-for-like comparison.
        """
        rev = _select(self.revisions, major, minor)
        out = rev.groupby(["month", "old_file", "new_file"], as_index=False).agg(
            old_total=("old_value", "sum")
        )
        new = self.london_total(major=major, minor=minor)
        out["new_total"] = new.reindex(pd.PeriodIndex(out["month"])).to_numpy()
        out["change"] = out["new_total"] - out["old_total"]
        out["rel_change"] = out["change"] / out["old_total"].where(out["old_total"] != 0)
        return out


def _select(frame: pd.DataFrame, major: str | None, minor: str | None) -> pd.DataFrame:
    for col, want in (("major", major), ("minor", minor)):
        if want is not None:
            frame = frame[frame[col].str.casefold() == want.casefold()]
    return frame


def _header_problems(cols: list[str]) -> tuple[list[Problem], list[int]]:
    problems: list[Problem] = []
    for i, want in enumerate(("MajorText", "MinorText")):
        if len(cols) <= i or cols[i] != want:
            got = cols[i] if len(cols) > i else ""
            problems.append(Problem(f"expected header {want!r}", 1, f"#{i + 1}", got))
    if len(cols) < 3 or cols[2] not in _BOROUGH_COLUMNS:
        got = cols[2] if len(cols) > 2 else ""
        problems.append(
            Problem("expected header 'BoroughName' or 'LookUp_BoroughName'", 1, "#3", got)
        )
    months: list[int] = []
    for i, col in enumerate(cols[3:], start=4):
        m = _MONTH.match(col)
        if m is None:
            dup = re.match(r"^(\d{6})\.\d+$", col)
            what = f"duplicate month column {dup.group(1)}" if dup else "not a YYYYMM month"
            problems.append(Problem(what, 1, f"#{i}", col))
            continue
        ordinal = (int(m.group(1)) - 1970) * 12 + int(m.group(2)) - 1
        if months and ordinal != months[-1] + 1:
            expected = pd.Period(ordinal=months[-1] + 1, freq="M").strftime("%Y%m")
            problems.append(
                Problem(f"months must be consecutive; expected {expected}", 1, f"#{i}", col)
            )
        months.append(ordinal)
    if len(cols) >= 3 and not cols[3:]:
        problems.append(Problem("no YYYYMM month columns after the borough column", 1))
    return problems, months


def _parse(path: Path) -> _Parsed:
    frame = read_csv_strict(path, _KIND, _FIX)
    cols = [str(c) for c in frame.columns]
    problems, months = _header_problems(cols)
    if problems:
        raise SourceFormatError(path, _KIND, problems, _FIX)
    if frame.empty:
        raise SourceFormatError(path, _KIND, [Problem("header only, no data rows", 2)], _FIX)
    taxonomy = _BOROUGH_COLUMNS[cols[2]]
    key_frame = check_text(frame, cols[:3], problems)
    key_frame.columns = pd.Index(["major", "minor", "area"])
    counts = check_counts(
        frame,
        cols[3:],
        problems,
        raw=lambda: read_csv_strict(path, _KIND, _FIX, dtype=str, keep_default_na=False),
    )
    check_duplicates(key_frame, cols[2], problems)
    if problems:
        raise SourceFormatError(path, _KIND, problems, _FIX)

    unmapped: set[tuple[str, str]] = set()
    if taxonomy == "new":
        key_frame["major"] = key_frame["major"].str.upper()
        key_frame["minor"] = key_frame["minor"].str.upper()
    else:
        pairs = []
        for major, minor in zip(key_frame["major"], key_frame["minor"], strict=True):
            new = _OLD_MAJOR.get(major.casefold()) or _OLD_PAIR.get(
                (major.casefold(), minor.casefold())
            )
            if new is None:
                unmapped.add((major, minor))
            pairs.append(new or (major, minor))
        key_frame["major"] = [p[0] for p in pairs]
        key_frame["minor"] = [p[1] for p in pairs]
    # Keys were validated non-blank above, so groupby cannot drop rows.
    summed = (
        pd.DataFrame(counts)
        .groupby([key_frame["area"], key_frame["major"], key_frame["minor"]], sort=True)
        .sum()
    )
    info = MetFileInfo(
        path=path,
        taxonomy=taxonomy,
        first_month=pd.Period(ordinal=months[0], freq="M"),
        last_month=pd.Period(ordinal=months[-1], freq="M"),
        n_rows=len(frame),
    )
    return _Parsed(
        info=info,
        keys=summed.index.to_frame(index=False),
        counts=summed.to_numpy(dtype=np.int64),
        months=np.asarray(months, dtype=np.int64),
        unmapped=tuple(sorted(unmapped)),
    )


def _text(codes: np.ndarray, labels: Sequence[str]) -> pd.Series:
    """String column ``labels[codes]`` built in Arrow (~20x faster than via objects)."""
    taken = pa.array(list(labels), pa.large_string()).take(pa.array(codes))
    return pd.Series(taken, dtype="str")


def _months(ordinals: np.ndarray) -> pd.PeriodIndex:
    array = pd.arrays.PeriodArray(np.asarray(ordinals, dtype=np.int64), dtype=pd.PeriodDtype("M"))
    return pd.PeriodIndex(array)


def read_met_borough_crime(
    paths: Sequence[Path], *, precedence: Precedence = "new_format_first"
) -> MetCrime:
    """Read MPS borough-level crime CSVs and stitch them into continuous monthly series.

    Each file is validated in full first; a malformed file raises
    :class:`~needsled.sources.errors.SourceFormatError` (a ``ValueError``) listing every
    problem with its row, column and value. Files are never modified. See the module
    docstring for the taxonomy mapping, non-borough rows and the ``precedence`` rule.
    """
    if not paths:
        raise ValueError("read_met_borough_crime: no files given")
    if precedence not in ("new_format_first", "latest_release"):
        raise ValueError(
            f"precedence must be 'new_format_first' or 'latest_release': {precedence!r}"
        )
    parsed = [_parse(Path(p)) for p in paths]

    def rank(p: _Parsed) -> tuple[int, int]:
        new, last = int(p.info.taxonomy == "new"), int(p.months[-1])
        return (new, last) if precedence == "new_format_first" else (last, new)

    parsed.sort(key=rank, reverse=True)
    for one, two in itertools.pairwise(parsed):
        if rank(one) == rank(two):
            raise ValueError(
                f"{one.info.path.name} and {two.info.path.name} are both "
                f"{one.info.taxonomy}-format releases ending {one.info.last_month}; cannot "
                "tell which is newer. Pass only one of them."
            )
    names = [p.info.path.name for p in parsed]
    first = min(int(p.months[0]) for p in parsed)
    n_months = max(int(p.months[-1]) for p in parsed) - first + 1
    winner = np.full(n_months, -1)
    for idx, p in enumerate(parsed):
        span = p.months - first
        winner[span[winner[span] == -1]] = idx

    # Global integer ids: areas ordered boroughs-by-GSS-code first, categories sorted.
    match = {a: _BOROUGH_BY_NAME.get(_norm(a)) for p in parsed for a in p.keys["area"]}
    areas = sorted(match, key=lambda a: (0, m[0]) if (m := match[a]) else (1, a))
    area_id = {a: i for i, a in enumerate(areas)}
    cats = sorted({c for p in parsed for c in zip(p.keys["major"], p.keys["minor"], strict=True)})
    cat_id = {c: i for i, c in enumerate(cats)}
    unmapped = {c for p in parsed for c in p.unmapped}
    fill_cats = np.array([cat_id[c] for c in cats if c not in unmapped], dtype=np.int64)

    value = np.zeros((len(areas), len(cats), n_months), dtype=np.int64)
    present = np.zeros(value.shape, dtype=bool)
    losers = []
    for idx, p in enumerate(parsed):
        a = np.array([area_id[x] for x in p.keys["area"]])
        c = np.array([cat_id[x] for x in zip(p.keys["major"], p.keys["minor"], strict=True)])
        span = p.months - first
        won = winner[span] == idx
        if won.any():
            value[a[:, None], c[:, None], span[won][None, :]] = p.counts[:, won]
            file_cats = np.union1d(fill_cats, c)
            present[np.ix_(np.unique(a), file_cats, span[won])] = True
        if (~won).any():
            losers.append((idx, a, c, span[~won], p.counts[:, ~won]))

    majors, minors = [x[0] for x in cats], [x[1] for x in cats]
    found = [match[a] for a in areas]
    codes = [m[0] if m else "" for m in found]
    canonical = [m[1] if m else a for a, m in zip(areas, found, strict=True)]
    reasons = [
        "" if m else _NON_BOROUGH.get(_norm(a), _UNMATCHED)
        for a, m in zip(areas, found, strict=True)
    ]
    unmatched = sorted(a for a, r in zip(areas, reasons, strict=True) if r == _UNMATCHED)
    ai, ci, mi = np.nonzero(present)  # lexicographic: already sorted by area, category, month
    is_borough = np.array([m is not None for m in found], dtype=bool)[ai]

    def cells(sel: np.ndarray, first_col: tuple[str, list[str]]) -> pd.DataFrame:
        a, c, m = ai[sel], ci[sel], mi[sel]
        return pd.DataFrame(
            {
                first_col[0]: _text(a, first_col[1]),
                "area_name": _text(a, canonical),
                "major": _text(c, majors),
                "minor": _text(c, minors),
                "month": _months(m + first),
                "count": value[a, c, m],
                "source_file": _text(winner[m], names),
            }
        )

    data = cells(is_borough, ("area_code", codes))
    excluded = cells(~is_borough, ("reason", reasons))
    excluded = excluded[[*excluded.columns[1:], "reason"]]

    rev_parts = []
    for idx, a, c, lost, old in losers:
        k, n = old.shape
        aa, cc, mm = np.repeat(a, n), np.repeat(c, n), np.tile(lost, k)
        new = pd.array(value[aa, cc, mm], dtype="Int64")
        new[~present[aa, cc, mm]] = pd.NA
        rev_parts.append(
            pd.DataFrame(
                {
                    "month": _months(mm + first),
                    "area_name": _text(aa, canonical),
                    "major": _text(cc, majors),
                    "minor": _text(cc, minors),
                    "old_value": old.ravel(),
                    "new_value": new,
                    "change": new - old.ravel(),
                    "old_file": names[idx],
                    "new_file": _text(winner[mm], names),
                }
            )
        )
    rev_cols = ["month", "area_name", "major", "minor", "old_value", "new_value", "change"]
    revisions = (
        pd.concat(rev_parts, ignore_index=True)
        if rev_parts
        else pd.DataFrame(columns=[*rev_cols, "old_file", "new_file"])
    )
    all_months = np.arange(first, first + n_months)
    gaps = tuple(pd.Period(ordinal=int(m), freq="M") for m in all_months[winner == -1])
    notes = [f"no release covers {g}" for g in gaps]
    notes += [f"unmatched area name {n!r} (kept in 'excluded')" for n in unmatched]
    covered = winner >= 0
    has_rows: np.ndarray = np.any(present, axis=1)[:, covered]  # area x covered month
    for b in np.flatnonzero([m is not None for m in found]):
        lacking = all_months[covered][~has_rows[b]]
        if not len(lacking):
            continue
        notes.append(
            f"{canonical[b]} has no rows in {len(lacking)} month(s) from {_months(lacking)[0]}"
        )
    notes += [
        f"old category {a!r} / {b!r} has no new-taxonomy equivalent; kept as is"
        for a, b in sorted(unmapped)
    ]
    return MetCrime(
        data=data,
        excluded=excluded,
        month_sources=pd.DataFrame(
            {
                "month": _months(all_months),
                "source_file": [names[w] if w >= 0 else "" for w in winner],
                "taxonomy": [parsed[w].info.taxonomy if w >= 0 else "" for w in winner],
            }
        ),
        revisions=revisions,
        files=tuple(p.info for p in parsed),
        gaps=gaps,
        unmatched_names=tuple(unmatched),
        warnings=tuple(notes),
    )
