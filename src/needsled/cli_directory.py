"""`needsled directory search` and `needsled directory export`: the directory of services.

A thin layer: load the model (and provider returns, for the expected wait), call
``needsled.directory`` and ``needsled.io.directory_out``, print a table or where the files
are. Problems are printed plainly (exit code 1), never as a traceback.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from needsled.cli_common import UserError, console, fail
from needsled.errors import InputError, Problem

if TYPE_CHECKING:
    import pandas as pd

    from needsled.directory import Directory, Hit

__all__ = ["directory_app", "read_returns"]

directory_app = typer.Typer(
    name="directory",
    no_args_is_help=True,
    help="The directory of services: search it, or export it as open data (HSDS / Open "
    "Referral UK JSON and CSV).",
)
out = Console()

ModelArg = Annotated[Path, typer.Argument(help="Model folder or workbook")]
ReturnsOpt = Annotated[
    Path | None,
    typer.Option(
        "--returns",
        help="Provider returns for the expected wait: the returns store folder, or a Parquet or "
        "CSV file in the tidy return format (provider, service, area, quarter, measure, "
        "category, value), or a folder of such files",
    ),
]
STORE_FILE = "returns.parquet"  # the table of the returns store (needsled.returns.store)
RETURN_FIX = (
    "give provider returns in the tidy format: columns provider, service, area, quarter "
    "(YYYY-Qn), measure, category, value (a count of at least 0)"
)
WAIT_NOTE = (
    "Expected wait = waiting list at the end of the latest quarter / starts per week in that "
    "quarter (Little's law), from the provider's own return: a guide, not a promise."
)


def _fail_problems(exc: InputError) -> typer.Exit:
    console.print(
        f"{len(exc.problems)} problem(s) in {exc.what}; nothing was loaded:",
        style="bold red",
        markup=False,
        highlight=False,
    )
    for p in exc.problems:
        console.print(f"  - {p}", highlight=False, markup=False)
    return typer.Exit(1)


def _read_one(path: Path) -> pd.DataFrame:
    import pandas as pd

    try:
        if path.suffix.lower() == ".parquet":
            return pd.read_parquet(path).astype(object)
        return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"{path} cannot be read as returns ({exc})", RETURN_FIX) from None


def _return_problems(frame: pd.DataFrame, where: str, first_row: int) -> list[Problem]:
    """Every bad cell of the rows the directory uses (quarter and value of its measures).

    ``row`` is the spreadsheet row for a CSV file (the header is row 1), the record number
    for a Parquet file.
    """
    from needsled.directory import QUARTER

    missing = [
        c
        for c in ("provider", "service", "area", "quarter", "measure", "value")
        if c not in frame.columns
    ]
    if missing:
        return [Problem(where, f"has no column {c}", RETURN_FIX, row=1, column=c) for c in missing]
    problems = []
    for i, rec in enumerate(frame.to_dict("records")):
        if rec["measure"] not in ("starts", "waiting_end", "waiting_band"):
            continue
        row = first_row + i
        if not QUARTER.match(str(rec["quarter"])):
            problems.append(
                Problem(
                    where,
                    "is not a quarter",
                    "write it as YYYY-Qn, e.g. 2025-Q1",
                    row=row,
                    column="quarter",
                    value=str(rec["quarter"]),
                )
            )
        text = str(rec["value"]).strip()
        if not re.fullmatch(r"[0-9]+(\.0+)?", text):
            problems.append(
                Problem(
                    where,
                    "is not a count",
                    "enter a whole number of at least 0",
                    row=row,
                    column="value",
                    value=text,
                )
            )
    return problems


def read_returns(path: Path) -> pd.DataFrame:
    """Provider returns: the store's table, a Parquet or CSV file, or every such file in a folder.

    A folder holding ``returns.parquet`` is the returns store that ``needsled returns import``
    keeps (``needsled.returns.store``): only that table is read, not its import log.
    """
    import pandas as pd

    if not path.exists():
        raise UserError(f"{path} does not exist", "give the returns file or folder")
    if path.is_dir() and (path / STORE_FILE).is_file():
        files = [path / STORE_FILE]  # the returns store: its import log is not returns
    elif path.is_dir():
        files = sorted([*path.glob("*.parquet"), *path.glob("*.csv")])
    else:
        files = [path]
    if not files:
        raise UserError(f"{path} holds no .parquet or .csv files of returns", RETURN_FIX)
    frames, problems = [], []
    for f in files:
        if f.suffix.lower() not in (".parquet", ".csv"):
            raise UserError(f"{f} is not a Parquet or CSV file", RETURN_FIX)
        frame = _read_one(f)
        problems += _return_problems(frame, str(f), 2 if f.suffix.lower() == ".csv" else 1)
        frames.append(frame)
    if problems:
        raise InputError(problems, what=str(path))
    data = pd.concat(frames, ignore_index=True)
    wanted = data["measure"].isin(("starts", "waiting_end", "waiting_band"))
    data = data[wanted].copy()
    data["value"] = pd.to_numeric(data["value"].astype(str))
    for col in ("provider", "service", "area", "quarter", "measure"):
        data[col] = data[col].astype(str).astype(object)
    if "category" not in data.columns:
        data["category"] = ""
    return data


def _directory(model_path: Path, returns: Path | None) -> Directory:
    from needsled.directory import build_directory
    from needsled.io.load import load_model

    if not model_path.exists():
        raise UserError(f"{model_path} does not exist", "give a model folder or workbook")
    model = load_model(model_path)
    return build_directory(model, read_returns(returns) if returns else None)


def _areas_text(hit: Hit, directory: Directory) -> str:
    names = dict(zip(directory.area_codes, directory.area_names, strict=True))
    if len(hit.areas) > 3:
        every = len(hit.areas) == len(directory.area_codes)
        return f"all {len(hit.areas)} areas" if every else f"{len(hit.areas)} areas"
    return ", ".join(names.get(a, a) for a in hit.areas)


def _service_text(hit: Hit) -> str:
    e = hit.entry
    lines = [f"{e.service_name} ({e.service})", e.provider_name or "provider not given"]
    for label, value in (
        ("for", e.eligibility),
        ("by and for", e.by_and_for),
        ("languages", ", ".join(e.languages)),
        ("offences", ", ".join(e.offence_names)),
        ("how", {"both": "in person or online"}.get(e.delivery, e.delivery)),
        ("open", e.opening_hours),
        ("access", e.accessibility),
        ("refer", e.how_to_refer),
        ("phone", e.phone),
        ("email", e.email),
        ("web", e.website),
    ):
        if value:
            lines.append(f"{label}: {value}")
    return "\n".join(lines)


def _print_hits(hits: list[Hit], directory: Directory, what: str) -> None:
    table = Table(title=f"{len(hits)} service(s) {what}", show_lines=True, expand=True)
    for name, ratio in (("Service", 4), ("Areas", 1), ("Expected wait", 1)):
        table.add_column(name, overflow="fold", ratio=ratio)
    for hit in hits:
        table.add_row(_service_text(hit), _areas_text(hit, directory), hit.wait)
    out.print(table)
    if directory.newest_return:
        out.print(WAIT_NOTE, highlight=False)
    else:
        out.print(
            "No expected waits: give provider returns with starts and waiting lists (--returns).",
            highlight=False,
        )


def _check_query(directory: Directory, area: str | None, offence: str | None) -> None:
    if area and not directory.match_areas(area):
        close = directory.suggest_area(area)
        raise UserError(
            f"no area in this model matches {area!r}",
            (f"did you mean {close}? " if close else "")
            + "give an area code (e.g. E09000001) or name from the areas table",
        )
    if offence and not directory.match_offences(offence):
        known = ", ".join(
            f"{c} ({n})"
            for c, n in zip(directory.offence_codes, directory.offence_names, strict=True)
        )
        raise UserError(f"no offence in this model matches {offence!r}", f"use one of: {known}")


@directory_app.command("search")
def search(
    model: ModelArg,
    area: Annotated[
        str | None, typer.Option("--area", help="Area code or name (part of a name is enough)")
    ] = None,
    offence: Annotated[str | None, typer.Option("--offence", help="Offence code or name")] = None,
    need: Annotated[
        str | None,
        typer.Option("--need", help="What is needed: a service type or words, e.g. counselling"),
    ] = None,
    returns: ReturnsOpt = None,
) -> None:
    """Find services by area, offence and need, with the expected wait from the returns."""
    try:
        directory = _directory(model, returns)
        _check_query(directory, area, offence)
    except InputError as exc:
        raise _fail_problems(exc) from None
    except UserError as err:
        raise fail(err) from None
    hits = directory.search(area=area, offence=offence, need=need)
    asked = [f"{k} {v!r}" for k, v in (("area", area), ("offence", offence), ("need", need)) if v]
    what = "for " + ", ".join(asked) if asked else "in the directory"
    if not hits:
        out.print(f"No service {what}.", highlight=False)
        return
    _print_hits(hits, directory, what)


@directory_app.command("export")
def export(
    model: ModelArg,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the JSON and CSV files")],
    returns: ReturnsOpt = None,
) -> None:
    """Write the directory as HSDS / Open Referral UK open data: JSON and one CSV per table."""
    from needsled.io.directory_out import exportable, write_hsds

    try:
        directory = _directory(model, returns)
        if not exportable(directory):
            raise UserError(
                f"{model} has no directory rows with a provider, so there is nothing to export",
                "add a directory table (directory.csv or a directory sheet) with one row per "
                "provider and service; see docs/directory.md",
            )
    except InputError as exc:
        raise _fail_problems(exc) from None
    except UserError as err:
        raise fail(err) from None
    paths = write_hsds(directory, out_dir)
    entries = exportable(directory)
    left_out = sorted({e.service for e in directory.entries if not e.provider})
    out.print(
        f"Exported {len(entries)} service(s) from "
        f"{len({e.provider for e in entries})} organisation(s) to {out_dir.resolve()}:",
        highlight=False,
    )
    out.print(
        f"  {paths['services.json'].name}, {paths['organizations.json'].name}, csv/ "
        f"({sum(k.startswith('csv/') for k in paths)} HSDS tables)",
        highlight=False,
    )
    if left_out:
        out.print(
            f"Not exported (no directory row, so no provider): {', '.join(left_out)}",
            highlight=False,
        )
    out.print(
        "This is open data: check that every phone number and email address is an "
        "organisation's public contact, never a member of staff's own, before publishing.",
        highlight=False,
    )
