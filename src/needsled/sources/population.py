"""London borough codes, GLA borough populations and the LAD → PFA lookup.

Quirks handled here (see ``shared/data/README.md``):

* The GLA population CSVs start with a UTF-8 byte-order mark, so they are read with
  ``encoding="utf-8-sig"``; otherwise the first header would be ``"\\ufeffCode"``.
* The population comes in two files with different year columns (``2011_Population`` …
  ``2022_Population`` and ``2023_Population``, ``2024_Population``). Both are accepted and
  combined; a year given twice with different values is an error, not a silent choice.
* These populations are an old GLA *projection* round, not ONS mid-year estimates (Tower
  Hamlets is ~7% above Census 2021). They are placeholders for rates per 1,000 only.
* The ONS LAD → PFA lookup spells City of London ``"London, City of"`` (quoted, with a
  comma) and Devon and Cornwall ``"Devon & Cornwall"``; the reader keeps the names exactly
  as published. Name harmonisation lives in :mod:`needsled.sources.ons_pfa`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import partial
from pathlib import Path

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
    "LONDON_BOROUGHS",
    "london_borough_table",
    "read_borough_codes",
    "read_gla_borough_population",
    "read_lad_pfa_lookup",
]

#: The 33 London local authorities (32 boroughs + City of London): GSS code, name as used
#: by the MPS, GLA and ONS, and the Inner/Outer London split. Typed in so users need no
#: lookup file; ``tests/test_sources_met.py`` cross-checks it against
#: ``lookups/london_borough_codes.csv``.
LONDON_BOROUGHS: tuple[tuple[str, str, str], ...] = (
    ("E09000001", "City of London", "Inner"),
    ("E09000002", "Barking and Dagenham", "Outer"),
    ("E09000003", "Barnet", "Outer"),
    ("E09000004", "Bexley", "Outer"),
    ("E09000005", "Brent", "Outer"),
    ("E09000006", "Bromley", "Outer"),
    ("E09000007", "Camden", "Inner"),
    ("E09000008", "Croydon", "Outer"),
    ("E09000009", "Ealing", "Outer"),
    ("E09000010", "Enfield", "Outer"),
    ("E09000011", "Greenwich", "Outer"),
    ("E09000012", "Hackney", "Inner"),
    ("E09000013", "Hammersmith and Fulham", "Inner"),
    ("E09000014", "Haringey", "Inner"),
    ("E09000015", "Harrow", "Outer"),
    ("E09000016", "Havering", "Outer"),
    ("E09000017", "Hillingdon", "Outer"),
    ("E09000018", "Hounslow", "Outer"),
    ("E09000019", "Islington", "Inner"),
    ("E09000020", "Kensington and Chelsea", "Inner"),
    ("E09000021", "Kingston upon Thames", "Outer"),
    ("E09000022", "Lambeth", "Inner"),
    ("E09000023", "Lewisham", "Inner"),
    ("E09000024", "Merton", "Outer"),
    ("E09000025", "Newham", "Inner"),
    ("E09000026", "Redbridge", "Outer"),
    ("E09000027", "Richmond upon Thames", "Outer"),
    ("E09000028", "Southwark", "Inner"),
    ("E09000029", "Sutton", "Outer"),
    ("E09000030", "Tower Hamlets", "Inner"),
    ("E09000031", "Waltham Forest", "Outer"),
    ("E09000032", "Wandsworth", "Inner"),
    ("E09000033", "Westminster", "Inner"),
)

_YEAR_COLUMN = re.compile(r"^(\d{4})_Population$")
_GLA_ID_COLUMNS = ("Code", "Area name")
_GLA_KIND = "GLA borough population"
_GLA_FIX = (
    "use the GLA borough population CSV as published (columns 'Code', 'Area name', "
    "optional 'Inner/ Outer London', then one 'YYYY_Population' column per year with "
    "whole-number populations)."
)


def london_borough_table() -> pd.DataFrame:
    """The built-in borough table as a DataFrame (``area_code, area_name, inner_outer``)."""
    return pd.DataFrame(LONDON_BOROUGHS, columns=["area_code", "area_name", "inner_outer"])


def _read_text(path: Path, kind: str, fix: str) -> pd.DataFrame:
    """Read every cell as text (no NA guessing) so problems can quote the raw value."""
    return read_csv_strict(path, kind, fix, dtype=str, keep_default_na=False, na_filter=False)


def _pattern_problems(
    text: pd.Series, pattern: str, message: str, column: str, problems: list[Problem]
) -> None:
    bad = ~text.str.fullmatch(pattern).to_numpy(dtype=bool)
    problems.extend(
        Problem(message, int(i) + 2, column, str(text.iat[int(i)])) for i in np.flatnonzero(bad)
    )


def read_gla_borough_population(paths: Sequence[Path]) -> pd.DataFrame:
    """Read one or more GLA borough population CSVs into a tidy table.

    Returns columns ``area_code`` (E09), ``area_name``, ``year`` (int), ``population``
    (int), one row per borough and year, sorted. Raises :class:`SourceFormatError` naming
    the file, row, column and value for any malformed cell, and ``ValueError`` when two
    files give different populations for the same borough and year.
    """
    parts: list[pd.DataFrame] = []
    for path in map(Path, paths):
        frame = read_csv_strict(path, _GLA_KIND, _GLA_FIX)
        problems = [
            Problem("required column is missing", 1, c) for c in _GLA_ID_COLUMNS if c not in frame
        ]
        year_cols = [str(c) for c in frame.columns if _YEAR_COLUMN.match(str(c))]
        if not year_cols:
            problems.append(Problem("no 'YYYY_Population' columns found", 1))
        if problems:
            raise SourceFormatError(path, _GLA_KIND, problems, _GLA_FIX)
        ids = check_text(frame, _GLA_ID_COLUMNS, problems)
        _pattern_problems(ids["Code"], r"E09\d{6}", "not an E09 borough code", "Code", problems)
        counts = check_counts(
            frame, year_cols, problems, raw=partial(_read_text, path, _GLA_KIND, _GLA_FIX)
        )
        check_duplicates(ids[["Code"]], "Code", problems)
        if problems:
            raise SourceFormatError(path, _GLA_KIND, problems, _GLA_FIX)
        years = [int(c[:4]) for c in year_cols]
        parts.append(
            pd.DataFrame(
                {
                    "area_code": np.repeat(ids["Code"].to_numpy(dtype=object), len(years)),
                    "area_name": np.repeat(ids["Area name"].to_numpy(dtype=object), len(years)),
                    "year": np.tile(years, len(ids)),
                    "population": counts.ravel(),
                }
            )
        )
    if not parts:
        raise ValueError("read_gla_borough_population: no files given")
    tidy = pd.concat(parts, ignore_index=True).astype({"area_code": "str", "area_name": "str"})
    spread = tidy.groupby(["area_code", "year"])["population"].nunique()
    clashes = spread[spread > 1]
    if len(clashes):
        listed = ", ".join(f"{c} {y}" for c, y in clashes.index[:10])
        raise ValueError(
            f"the population files disagree for {len(clashes)} borough-year(s): {listed}. "
            "Pass only one release per year."
        )
    tidy = tidy.drop_duplicates(["area_code", "year"])
    return tidy.sort_values(["area_code", "year"], ignore_index=True)


_LOOKUP_KIND = "LAD to PFA lookup"
_LOOKUP_FIX = (
    "use the ONS 'LAD to CSP to PFA' lookup with columns lad21cd, pfa21cd, pfa21nm "
    "(or the LAD22/LAD23 equivalents)."
)
_LOOKUP_COLUMNS = re.compile(r"^(lad|pfa)(\d{2})(cd|nm)$")


def read_lad_pfa_lookup(path: Path) -> pd.DataFrame:
    """Read the ONS LAD → PFA lookup into ``lad_code, pfa_code, pfa_name``.

    Accepts the vintage-suffixed column names (``lad21cd``, ``pfa21cd``, ``pfa21nm``, or
    22/23 …). Names are kept exactly as published (e.g. ``"London, City of"``).
    """
    path = Path(path)
    frame = _read_text(path, _LOOKUP_KIND, _LOOKUP_FIX)
    found: dict[str, str] = {}
    for col in frame.columns:
        m = _LOOKUP_COLUMNS.match(str(col).strip().lower())
        if m:
            found[m.group(1) + m.group(3)] = str(col)
    problems = [
        Problem("required column is missing", 1, f"{want[:3]}YY{want[3:]}")
        for want in ("ladcd", "pfacd", "pfanm")
        if want not in found
    ]
    if problems:
        raise SourceFormatError(path, _LOOKUP_KIND, problems, _LOOKUP_FIX)
    text = check_text(frame, [found["ladcd"], found["pfacd"], found["pfanm"]], problems)
    text.columns = pd.Index(["lad_code", "pfa_code", "pfa_name"])
    _pattern_problems(text["lad_code"], r"[EW]0\d{7}", "not a LAD code", found["ladcd"], problems)
    _pattern_problems(text["pfa_code"], r"[EW]\d{8}", "not a PFA code", found["pfacd"], problems)
    check_duplicates(text[["lad_code"]], found["ladcd"], problems)
    if problems:
        raise SourceFormatError(path, _LOOKUP_KIND, problems, _LOOKUP_FIX)
    return text


def read_borough_codes(path: Path) -> pd.DataFrame:
    """Read ``lookups/london_borough_codes.csv`` into ``area_code, area_name, inner_outer``.

    Only needed to cross-check :data:`LONDON_BOROUGHS`; the built-in table is the default.
    """
    path = Path(path)
    kind, fix = "London borough code list", "use a CSV with gss_code, borough_name, inner_outer."
    frame = _read_text(path, kind, fix)
    wanted = ["gss_code", "borough_name", "inner_outer"]
    problems = [Problem("required column is missing", 1, c) for c in wanted if c not in frame]
    if problems:
        raise SourceFormatError(path, kind, problems, fix)
    text = check_text(frame, wanted, problems)
    if problems:
        raise SourceFormatError(path, kind, problems, fix)
    text.columns = pd.Index(["area_code", "area_name", "inner_outer"])
    return text
