"""ONS police recorded crime by Police Force Area (``rec-crime-pfa.csv``).

Columns: ``12 months ending, PFA, Region, Offence, Rolling year total number of offences``.
Each row is a *rolling 12-month total* ending on the given date (annual to March 2007, then
quarterly to December 2018), so rows for different dates overlap and must never be summed
across dates.

Quirks (``shared/data/README.md`` §2) and how each is handled:

* Dates are day-first ``dd-mm-yyyy``. One period is written ``30-12-2017``; it is the
  quarter ending 31 December 2017 and is normalised to 2017-12-31 via
  :data:`KNOWN_DATE_FIXES` (the published text is kept in ``year_ending_as_published``).
  Any *other* date that is not a month end is an error, not silently moved.
* ``British Transport Police``, ``Action Fraud``, ``CIFAS`` and ``UK Finance`` are not
  territorial forces (no PFA area, no PCC). Their rows are kept and flagged
  ``territorial=False`` with ``pfa_code`` missing, so totals can include or exclude them
  deliberately.
* Force names differ between ONS files: the recorded-crime file says ``Devon and Cornwall``
  and ``City of London``; the ONS LAD→PFA lookup says ``Devon & Cornwall`` and
  ``London, City of``. :func:`pfa_code_for_name` handles both explicitly
  (:data:`PFA_NAME_ALIASES` plus case/space/``&`` folding).
* Fraud: until 2013/14 territorial forces recorded ``Fraud offences``; after that fraud
  was recorded centrally (Action Fraud, CIFAS, UK Finance). The file keeps both; the
  offence is left as published. Some territorial fraud rows are negative in 2013
  (adjustments when recording moved), as are a few ``Death or serious injury caused by
  illegal driving`` rows, so negative counts are accepted here.
* Burglary is ``Domestic``/``Non-domestic`` until YE Sep 2017 and ``Residential``/
  ``Non-residential`` from YE Sep 2017 (both pairs overlap in 2017 with partial values);
  offences are kept as published, and the sum over offences stays consistent.

Codes: English PFAs are ``E23…``; the four Welsh PFAs are ``W15…`` (not E23).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from needsled.sources.errors import (
    Problem,
    SourceFormatError,
    check_counts,
    check_duplicates,
    check_text,
    read_csv_strict,
)

__all__ = [
    "KNOWN_DATE_FIXES",
    "NON_TERRITORIAL_PFAS",
    "PFA_NAME_ALIASES",
    "TERRITORIAL_PFAS",
    "pfa_code_for_name",
    "read_ons_pfa_crime",
]

#: The 43 territorial police force areas of England and Wales, spelt as in the ONS
#: recorded-crime file, with their December 2021 GSS codes. Cross-checked in
#: ``tests/test_sources_ons.py`` against ``lookups/lad21_to_pfa21_lookup.csv``.
TERRITORIAL_PFAS: dict[str, str] = {
    "Metropolitan Police": "E23000001",
    "Cumbria": "E23000002",
    "Lancashire": "E23000003",
    "Merseyside": "E23000004",
    "Greater Manchester": "E23000005",
    "Cheshire": "E23000006",
    "Northumbria": "E23000007",
    "Durham": "E23000008",
    "North Yorkshire": "E23000009",
    "West Yorkshire": "E23000010",
    "South Yorkshire": "E23000011",
    "Humberside": "E23000012",
    "Cleveland": "E23000013",
    "West Midlands": "E23000014",
    "Staffordshire": "E23000015",
    "West Mercia": "E23000016",
    "Warwickshire": "E23000017",
    "Derbyshire": "E23000018",
    "Nottinghamshire": "E23000019",
    "Lincolnshire": "E23000020",
    "Leicestershire": "E23000021",
    "Northamptonshire": "E23000022",
    "Cambridgeshire": "E23000023",
    "Norfolk": "E23000024",
    "Suffolk": "E23000025",
    "Bedfordshire": "E23000026",
    "Hertfordshire": "E23000027",
    "Essex": "E23000028",
    "Thames Valley": "E23000029",
    "Hampshire": "E23000030",
    "Surrey": "E23000031",
    "Kent": "E23000032",
    "Sussex": "E23000033",
    "City of London": "E23000034",
    "Devon and Cornwall": "E23000035",
    "Avon and Somerset": "E23000036",
    "Gloucestershire": "E23000037",
    "Wiltshire": "E23000038",
    "Dorset": "E23000039",
    "North Wales": "W15000001",
    "Gwent": "W15000002",
    "South Wales": "W15000003",
    "Dyfed-Powys": "W15000004",
}

#: Rows in the file that are not territorial forces, and why they are set apart.
NON_TERRITORIAL_PFAS: dict[str, str] = {
    "British Transport Police": "national railway force: no PFA area or PCC",
    "Action Fraud": "national fraud reporting centre (NFIB): fraud not assigned to forces",
    "CIFAS": "industry fraud data (CIFAS) sent to NFIB: not assigned to forces",
    "UK Finance": "industry fraud data (UK Finance) sent to NFIB: not assigned to forces",
}

#: Known alternative spellings → the name used in :data:`TERRITORIAL_PFAS`. Case, spacing
#: and ``&``/``and`` differences are folded separately, so e.g. ``Devon & Cornwall`` needs
#: no entry.
PFA_NAME_ALIASES: dict[str, str] = {
    "London, City of": "City of London",
    "Metropolitan Police Service": "Metropolitan Police",
    "Dyfed Powys": "Dyfed-Powys",
}

#: Published date text → the period end it stands for.
KNOWN_DATE_FIXES: dict[str, str] = {"30-12-2017": "31-12-2017"}

_KIND = "ONS PFA recorded crime"
_COLUMNS = (
    "12 months ending",
    "PFA",
    "Region",
    "Offence",
    "Rolling year total number of offences",
)
_FIX = (
    "use the ONS 'Recorded crime data at Police Force Area level' CSV as published, with "
    f"columns {', '.join(_COLUMNS)}; dates as dd-mm-yyyy month ends; whole-number counts."
)


def _fold(name: str) -> str:
    return " ".join(name.replace("&", " and ").split()).casefold()


_CODE_BY_FOLDED = {_fold(n): c for n, c in TERRITORIAL_PFAS.items()} | {
    _fold(alias): TERRITORIAL_PFAS[name] for alias, name in PFA_NAME_ALIASES.items()
}
_NON_TERRITORIAL_FOLDED = {_fold(n) for n in NON_TERRITORIAL_PFAS}


def pfa_code_for_name(name: str) -> str | None:
    """GSS code of a territorial PFA from any known spelling; ``None`` if not territorial
    or not recognised."""
    return _CODE_BY_FOLDED.get(_fold(name))


def _parse_dates(text: pd.Series, fixes: Mapping[str, str], problems: list[Problem]) -> pd.Series:
    """Day-first dates that must be month ends, after the explicit ``fixes``."""
    column = _COLUMNS[0]
    fixed = text.map(lambda t: fixes.get(t, t))
    unique = pd.Series(pd.unique(fixed))
    parsed = pd.to_datetime(unique, format="%d-%m-%Y", errors="coerce")
    not_date = parsed.isna().to_numpy()
    not_month_end = ~not_date & ~parsed.dt.is_month_end.fillna(False).to_numpy(dtype=bool)
    for value, invalid in zip(
        unique[not_date | not_month_end], not_date[not_date | not_month_end], strict=True
    ):
        i = int(np.flatnonzero((fixed == value).to_numpy())[0])
        what = "not a dd-mm-yyyy date" if invalid else "not the last day of a month"
        problems.append(Problem(what, i + 2, column, str(text.iat[i])))
    return fixed.map(dict(zip(unique, parsed, strict=True)))


def read_ons_pfa_crime(
    path: Path,
    *,
    date_fixes: Mapping[str, str] | None = None,
    on_unmatched: Literal["raise", "keep"] = "raise",
) -> pd.DataFrame:
    """Read ``rec-crime-pfa.csv`` into a tidy table.

    Columns: ``year_ending`` (datetime64, period end), ``year_ending_as_published``,
    ``pfa_name`` (as published), ``pfa_code`` (E23/W15; missing for non-territorial rows),
    ``region``, ``offence``, ``count`` (int64), ``territorial`` (bool).

    ``date_fixes`` adds to :data:`KNOWN_DATE_FIXES`. A PFA name that is neither a known
    territorial force nor a known non-territorial body raises (``on_unmatched="raise"``)
    or is kept with ``territorial=False`` and listed in
    ``result.attrs["unmatched_pfa_names"]`` (``"keep"``). Raises
    :class:`~needsled.sources.errors.SourceFormatError` listing every problem found.
    """
    path = Path(path)
    frame = read_csv_strict(path, _KIND, _FIX)
    cols = [str(c).strip() for c in frame.columns]
    problems = [
        Problem(f"expected header {want!r}", 1, f"#{i + 1}", cols[i] if i < len(cols) else "")
        for i, want in enumerate(_COLUMNS)
        if i >= len(cols) or cols[i] != want
    ]
    if len(cols) > len(_COLUMNS):
        problems.append(Problem("unexpected extra column", 1, f"#{len(_COLUMNS) + 1}", cols[5]))
    if problems:
        raise SourceFormatError(path, _KIND, problems, _FIX)
    if frame.empty:
        raise SourceFormatError(path, _KIND, [Problem("header only, no data rows", 2)], _FIX)
    frame.columns = pd.Index(cols)
    text = check_text(frame, _COLUMNS[:4], problems)
    counts = check_counts(
        frame,
        _COLUMNS[4:],
        problems,
        raw=lambda: read_csv_strict(path, _KIND, _FIX, dtype=str, keep_default_na=False),
        allow_negative=True,
    )
    check_duplicates(text[[_COLUMNS[0], "PFA", "Offence"]], "PFA", problems)
    dates = _parse_dates(text[_COLUMNS[0]], {**KNOWN_DATE_FIXES, **(date_fixes or {})}, problems)
    names = pd.Series(pd.unique(text["PFA"]))
    codes = {n: pfa_code_for_name(n) for n in names}
    unmatched = [n for n in names if codes[n] is None and _fold(n) not in _NON_TERRITORIAL_FOLDED]
    if unmatched and on_unmatched == "raise":
        for name in unmatched:
            row = int(np.flatnonzero((text["PFA"] == name).to_numpy())[0]) + 2
            problems.append(
                Problem(
                    "not a known police force area (add it to PFA_NAME_ALIASES if it is a "
                    "spelling variant, or pass on_unmatched='keep')",
                    row,
                    "PFA",
                    name,
                )
            )
    if problems:
        raise SourceFormatError(path, _KIND, problems, _FIX)
    code = text["PFA"].map(codes)
    out = pd.DataFrame(
        {
            "year_ending": dates,
            "year_ending_as_published": text[_COLUMNS[0]],
            "pfa_name": text["PFA"],
            "pfa_code": code.astype("str").where(code.notna()),
            "region": text["Region"],
            "offence": text["Offence"],
            "count": counts[:, 0],
            "territorial": code.notna().to_numpy(dtype=bool),
        }
    )
    out.attrs["unmatched_pfa_names"] = tuple(unmatched)
    return out
