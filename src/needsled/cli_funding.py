"""`needsled funding-shares`: each police force area's share of a national grant."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from needsled.cli_common import (
    UserError,
    fail,
    need_file,
    out,
    read_error,
)

# --------------------------------------------------------------------------- funding-shares


def _two_columns(
    path: Path, kind: str, key: str, value: str, aliases: Sequence[str]
) -> dict[str, float]:
    """A two-column CSV (``key``, ``value``) as a mapping; every problem names the file."""
    from needsled.sources.errors import Problem, SourceFormatError, read_csv_strict

    fix = (
        f"use a CSV with a header row '{key},{value}' and one row per "
        f"{'police force area (name or E23/W15 code)' if key == 'pfa' else 'offence group'}"
    )
    need_file(path, kind)
    try:
        frame = read_csv_strict(path, kind, fix, dtype=str, keep_default_na=False)
    except ValueError as exc:
        raise read_error(exc) from None
    cols = {str(c).strip().lower(): str(c) for c in frame.columns}
    key_col = next((cols[a] for a in (key, *aliases) if a in cols), None)
    problems = []
    if key_col is None:
        problems.append(Problem("required column is missing", 1, key))
    if value not in cols:
        problems.append(Problem("required column is missing", 1, value))
    if problems or key_col is None:
        raise read_error(SourceFormatError(path, kind, problems, fix))
    found: dict[str, float] = {}
    for i, (k, v) in enumerate(zip(frame[key_col], frame[cols[value]], strict=True), start=2):
        try:
            number = float(str(v).replace(",", ""))
        except ValueError:
            number = math.nan
        if not str(k).strip():
            problems.append(Problem("blank value", i, key_col, str(k)))
        elif not math.isfinite(number):
            problems.append(Problem("not a number", i, cols[value], str(v)))
        elif str(k).strip() in found:
            problems.append(Problem("given twice", i, key_col, str(k)))
        else:
            found[str(k).strip()] = number
    if problems:
        raise read_error(SourceFormatError(path, kind, problems, fix))
    return found


def _pct(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:.2%}"


def funding_shares(
    pfa_crime: Annotated[
        Path,
        typer.Option(
            "--pfa-crime",
            help="ONS 'Recorded crime data at Police Force Area level' CSV (rec-crime-pfa.csv)",
        ),
    ],
    year_ending: Annotated[
        str, typer.Option("--year-ending", help="Year ending, YYYY-MM-DD (e.g. 2018-03-31)")
    ],
    out_file: Annotated[Path, typer.Option("--out", help="CSV to write the shares table to")],
    population: Annotated[
        Path | None,
        typer.Option(
            "--population",
            help="CSV 'pfa,population' for all 43 territorial forces (names or "
            "codes); adds population shares",
        ),
    ] = None,
    weights: Annotated[
        Path | None,
        typer.Option(
            "--weights",
            help="CSV 'offence,weight' overriding the default seriousness weights "
            "(an assumption) for need-weighted shares",
        ),
    ] = None,
) -> None:
    """Each police force area's share of a national grant, and London's (Met + City)."""
    from needsled import funding
    from needsled.sources.errors import PeriodNotAvailableError
    from needsled.sources.ons_pfa import read_ons_pfa_crime

    try:
        try:
            when = date.fromisoformat(year_ending)
        except ValueError:
            raise UserError(
                f"--year-ending {year_ending!r} is not a date",
                "write it as YYYY-MM-DD, e.g. 2018-03-31",
            ) from None
        if out_file.is_dir():
            raise UserError(f"{out_file} is a folder", "give a file name ending .csv for --out")
        need_file(pfa_crime, "ONS recorded crime by PFA CSV (rec-crime-pfa.csv)")
        pop = (
            _two_columns(
                population, "PFA population", "pfa", "population", ("pfa_code", "pfa_name")
            )
            if population
            else None
        )
        wts = _two_columns(weights, "offence weights", "offence", "weight", ()) if weights else None
        try:
            crime = read_ons_pfa_crime(pfa_crime)
        except ValueError as exc:
            raise read_error(exc) from None
        try:
            shares = funding.funding_shares(crime, when, population=pop, weights=wts)
        except PeriodNotAvailableError as exc:
            raise UserError(f"{pfa_crime}: {exc}", "choose one of the available dates") from None
        except ValueError as exc:
            text = str(exc)
            culprit = (
                population
                if text.startswith("population")
                else weights
                if text.startswith("weights")
                else pfa_crime
            )
            raise UserError(f"{culprit}: {text}") from None
    except UserError as err:
        raise fail(err) from None
    out_file.parent.mkdir(parents=True, exist_ok=True)
    shares.to_csv(out_file, index=False)
    london = funding.london_summary(shares)
    grant = float(london["moj_victims_grant_reference"])
    ye = shares.attrs["year_ending"].isoformat()
    lines = [
        f"Shares of England and Wales, year ending {ye} (43 territorial forces; 'all crime' "
        f"excludes {', '.join(shares.attrs['excluded_offences'])} and British Transport "
        "Police, Action Fraud, CIFAS, UK Finance):",
        f"London (Metropolitan Police + City of London): all crime "
        f"{_pct(float(london['share_all_crime']))}, sexual offences "
        f"{_pct(float(london['share_sexual_offences']))}, need-weighted "
        f"{_pct(float(london['share_need_weighted']))}"
        + (f", population {_pct(float(london['share_population']))}" if pop else "")
        + f"; MoJ victims' grant share {_pct(grant)} (allocated on population).",
    ]
    for col, label in (
        ("share_all_crime", "all crime"),
        ("share_sexual_offences", "sexual offences"),
    ):
        gap = float(london[col]) - grant
        lines.append(
            f"  On {label}, London's share is {abs(gap) * 100:.2f} percentage points "
            f"{'above' if gap > 0 else 'below'} its grant share."
        )
    if wts is None:
        lines.append(
            "  Need-weighted shares use the default seriousness weights, an "
            "assumption (needsled.funding.DEFAULT_SEVERITY_WEIGHTS); pass --weights "
            "to use your own."
        )
    lines.append(f"Table: {out_file.resolve()}")
    for line in lines:
        out.print(line, markup=False, highlight=False)
