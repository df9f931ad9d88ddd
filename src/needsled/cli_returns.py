"""`needsled returns ...`: quarterly provider returns (template, import, outcomes)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from needsled.cli_common import UserError, console, fail, out, out_folder
from needsled.errors import InputError
from needsled.io.atomic import write_text_atomic
from needsled.privacy import LEGEND

if TYPE_CHECKING:
    from needsled.model import Model

returns_app = typer.Typer(
    name="returns",
    no_args_is_help=True,
    add_completion=False,
    help="Quarterly provider returns: make a provider's Excel return, import filled-in returns "
    "into a store, and tabulate outcomes and journeys (counts only; small numbers suppressed).",
)

ModelPath = Annotated[
    Path, typer.Argument(help="The model (a folder of CSV files, or a workbook) with a directory")
]
Store = Annotated[
    Path, typer.Option("--store", help="Folder of imported returns (created when first used)")
]


def _problems(exc: InputError, outcome: str) -> typer.Exit:
    console.print(
        f"[bold red]{len(exc.problems)} problem(s) in {exc.what}[/]; {outcome}:", highlight=False
    )
    for p in exc.problems:
        console.print(f"  - {p}", highlight=False, markup=False)
    return typer.Exit(1)


def _model(path: Path) -> Model:
    from needsled.io.load import load_model

    try:
        return load_model(path)
    except InputError as exc:
        raise _problems(exc, "fix the model first") from None


@returns_app.command("template")
def template(
    model: ModelPath,
    provider: Annotated[
        str, typer.Option("--provider", help="The provider's code in the directory table")
    ],
    quarter: Annotated[
        str, typer.Option("--quarter", help="Calendar quarter YYYY-Qn, e.g. 2025-Q2 (Apr-Jun)")
    ],
    out_file: Annotated[Path, typer.Option("--out", help="The Excel file to write (.xlsx)")],
) -> None:
    """Write a provider's Excel return for one quarter, filled in with its services and areas."""
    from needsled.returns.template import write_return_template

    loaded = _model(model)
    try:
        path = write_return_template(loaded, provider, quarter, out_file)
    except InputError as exc:
        raise _problems(exc, "no return was written") from None
    except FileExistsError as exc:
        console.print(f"[red]{exc}[/]", highlight=False)
        raise typer.Exit(1) from None
    out.print(f"Return for {provider}, {quarter} written to {path}", highlight=False)


@returns_app.command("import")
def import_returns(
    model: ModelPath,
    files: Annotated[list[Path], typer.Argument(help="Filled-in return workbooks")],
    store: Store = Path("needsled-returns"),
) -> None:
    """Check returns (every problem at once) and add them to the store; nothing is stored
    unless every file is clean. A return imported again replaces the earlier one."""
    from needsled.returns.read import read_returns
    from needsled.returns.store import add_to_store

    loaded = _model(model)
    try:
        imported = read_returns(files, loaded)
    except InputError as exc:
        raise _problems(exc, "nothing was stored") from None
    update = add_to_store(store, imported.frame, imported.files)
    n = len(update.added) + len(update.replaced)
    out.print(
        f"Imported {n} return(s) from {len(files)} file(s) into {store} "
        f"({update.total} return(s) in the store now).",
        highlight=False,
    )
    for p, s, a, q in update.replaced:
        out.print(
            f"  replaced the earlier import of {p}, {s}, {a}, {q}", highlight=False, markup=False
        )


def write_outputs(out_dir: Path, files: dict[str, str]) -> list[str]:
    """Write ``files`` (name -> text) into ``out_dir`` (created if needed), each through a
    temporary file renamed over it, as every command that writes into an output folder does:
    files of the same names are replaced, nothing else in the folder is touched. Returns the
    names that replaced a file already there, for the command to say so. A ``UserError`` when
    ``out_dir`` is a file or cannot be written."""
    out_folder(out_dir)
    replaced = []
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            path = out_dir / name
            if path.exists():
                replaced.append(name)
            write_text_atomic(path, text)
    except OSError as exc:
        raise UserError(f"cannot write to {out_dir}: {exc.strerror or exc}") from None
    return replaced


def replaced_line(out_dir: Path, replaced: list[str]) -> str | None:
    """What the command says when it replaced files of the same names."""
    if not replaced:
        return None
    return f"Replaced the earlier {', '.join(replaced)} in {out_dir}."


@returns_app.command("outcomes")
def outcomes(
    out_dir: Annotated[
        Path,
        typer.Option(
            "--out",
            help="Folder for the CSV tables (created if needed; tables of the same names in it "
            "are replaced, and the command says so; nothing else is touched)",
        ),
    ],
    store: Store = Path("needsled-returns"),
    no_suppress: Annotated[
        bool,
        typer.Option(
            "--no-suppress",
            help="Show counts under 5 (internal use only; every table then says so)",
        ),
    ] = False,
) -> None:
    """Tables of outcomes and journeys from the stored returns, by quarter, service and area,
    with totals; small counts suppressed."""
    from needsled.returns.outcomes import outcome_tables
    from needsled.returns.store import read_store

    try:
        out_folder(out_dir)  # before the work, not after it
    except UserError as err:
        raise fail(err) from None
    returns = read_store(store)
    if returns.empty:
        console.print(
            f"[red]No returns in {store}[/]: import some first with "
            "'needsled returns import MODEL FILE.xlsx --store " + str(store) + "'",
            highlight=False,
        )
        raise typer.Exit(1)
    tables = outcome_tables(returns, suppress=not no_suppress)
    try:
        replaced = write_outputs(
            out_dir, {f"{n}.csv": frame.to_csv(index=False) for n, frame in tables.items()}
        )
    except UserError as err:
        raise fail(err) from None
    out.print(f"Wrote {', '.join(f'{n}.csv' for n in tables)} to {out_dir}", highlight=False)
    if (line := replaced_line(out_dir, replaced)) is not None:
        out.print(line, highlight=False)
    if not no_suppress:
        out.print(f"Small numbers: {LEGEND}.", highlight=False, markup=False)
    else:
        console.print(
            "[bold red]Suppression is OFF[/]: these tables show counts under 5 and are for "
            "internal use only; each says so in its 'suppression' column.",
            highlight=False,
        )
