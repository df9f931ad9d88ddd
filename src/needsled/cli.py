"""The command line: ``needsled demo``, ``run``, ``validate``, ``template``, ``example``, ...

A thin layer: parse arguments, call the API, print where things are. Errors in the user's
input are printed as a list of problems (exit code 1); they are never a traceback.
"""

from __future__ import annotations

import shlex
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from needsled import __version__
from needsled.cli_report import GeoJsonOption, ReturnsOption, read_returns_or_exit
from needsled.errors import InputError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Demand and capacity modelling for victims' services.",
)
console = Console(stderr=True)
out = Console()

Replicates = Annotated[
    int, typer.Option("--replicates", "-r", min=1, max=100_000, help="Monte Carlo replicates")
]
Seed = Annotated[
    int, typer.Option("--seed", help="Random seed: the same seed gives identical results")
]
NoSuppress = Annotated[
    bool,
    typer.Option(
        "--no-suppress",
        help="Show observed counts under 5 (internal use only; the report "
        "then says so on its cover)",
    ),
]


def _command(*parts: object) -> str:
    """The command as a user would type it to repeat the run (for the manifest)."""
    return "needsled " + " ".join(shlex.quote(str(p)) for p in parts if p is not None)


def _fail(exc: InputError) -> typer.Exit:
    console.print(
        f"[bold red]{len(exc.problems)} problem(s) in {exc.what}[/]; nothing was loaded or run:",
        highlight=False,
    )
    for p in exc.problems:
        console.print(f"  - {p}", highlight=False, markup=False)
    return typer.Exit(1)


NoPdf = Annotated[
    bool, typer.Option("--no-pdf", help="Do not write report.pdf (report.html is still written)")
]


def _report_extras(geojson: Path | None, pdf: bool) -> tuple[dict[str, object] | None, bool]:
    """The map's boundaries, and whether a PDF can be made: checked before the run, so that
    a bad file or a missing library is said at once (and the run still writes the rest)."""
    from needsled.io.geojson import load_boundaries
    from needsled.io.pdf_out import PdfUnavailableError, load_weasyprint

    boundaries = None
    if geojson is not None:
        try:
            boundaries = load_boundaries(geojson)
        except InputError as exc:
            raise _fail(exc) from None
    if pdf:
        try:
            load_weasyprint()
        except PdfUnavailableError as exc:
            console.print(str(exc), style="bold red", markup=False, highlight=False)
            pdf = False
    return boundaries, pdf


def _say_where(paths: dict[str, Path]) -> None:
    out.print(f"Report: {paths['report.html'].resolve()}")
    if "report.pdf" in paths:
        out.print(f"PDF: {paths['report.pdf'].resolve()}")


def _run_and_write(
    model_path: Path,
    scenarios: list[str] | None,
    replicates: int,
    seed: int,
    out_dir: Path,
    suppress: bool,
    command: str,
    pdf: bool = True,
    geojson: Path | None = None,
    returns: Path | None = None,
) -> dict[str, Path]:
    from needsled.api import load, run
    from needsled.io.outputs import write_run

    try:
        model = load(model_path)
    except InputError as exc:
        raise _fail(exc) from None
    boundaries, pdf = _report_extras(geojson, pdf)
    actual = read_returns_or_exit(returns) if returns is not None else None
    known = [s.name for s in model.scenarios]
    unknown = [s for s in scenarios or [] if s not in known]
    if unknown:
        console.print(
            f"[red]No scenario named {', '.join(unknown)}[/]; the model has: {', '.join(known)}"
        )
        raise typer.Exit(2)
    chosen = scenarios or known
    start = time.perf_counter()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("forecasting crime", total=len(chosen))

        def tick(name: str, done: int, total: int) -> None:
            label = "writing outputs" if name == "done" else f"scenario {name}"
            bar.update(task, completed=done, total=total, description=label)

        result = run(model, chosen, replicates, seed, progress=tick)
        paths = write_run(
            result.result,
            out_dir,
            command,
            suppress=suppress,
            pdf=pdf,
            boundaries=boundaries,
            returns=actual,
        )
    console.print(
        f"Ran {len(chosen)} scenario(s) x {replicates} replicates in "
        f"{time.perf_counter() - start:.1f} s."
    )
    return paths


@app.command()
def demo(
    out_dir: Annotated[
        Path, typer.Option("--out", help="Folder for the example model and its results")
    ] = Path("needsled-demo"),
    replicates: Replicates = 500,
    seed: Seed = 20240401,
    no_pdf: NoPdf = False,
    geojson: GeoJsonOption = None,
) -> None:
    """Run the built-in London-like example end to end and write its report (HTML and PDF)."""
    from needsled.example import write_example

    model_dir = write_example(out_dir / "model")
    console.print(f"Example model (32 London boroughs, synthetic data) written to {model_dir}")
    report = _run_and_write(
        model_dir,
        None,
        replicates,
        seed,
        out_dir / "results",
        True,
        _command(
            "demo",
            "--out",
            out_dir,
            "--replicates",
            replicates,
            "--seed",
            seed,
            "--no-pdf" if no_pdf else None,
            *(("--geojson", geojson) if geojson else ()),
        ),
        pdf=not no_pdf,
        geojson=geojson,
    )
    _say_where(report)
    out.print(f"Tables: {report['report.html'].parent.resolve()} (results.csv, summary.csv, ...)")


@app.command("run")
def run_cmd(
    model: Annotated[Path, typer.Argument(help="Model folder or workbook", exists=True)],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the results")],
    scenario: Annotated[
        list[str] | None,
        typer.Option("--scenario", "-s", help="Scenario to run (repeat for several; default: all)"),
    ] = None,
    replicates: Replicates = 500,
    seed: Seed = 20240401,
    no_suppress: NoSuppress = False,
    no_pdf: NoPdf = False,
    geojson: GeoJsonOption = None,
    returns: ReturnsOption = None,
) -> None:
    """Project demand, waiting lists and shortfalls for a model's scenarios."""
    picks = [x for name in scenario or [] for x in ("--scenario", name)]
    command = _command(
        "run",
        model,
        "--out",
        out_dir,
        *picks,
        "--replicates",
        replicates,
        "--seed",
        seed,
        "--no-suppress" if no_suppress else None,
        "--no-pdf" if no_pdf else None,
        *(("--geojson", geojson) if geojson else ()),
        *(("--returns", returns) if returns else ()),
    )
    report = _run_and_write(
        model,
        scenario,
        replicates,
        seed,
        out_dir,
        not no_suppress,
        command,
        pdf=not no_pdf,
        geojson=geojson,
        returns=returns,
    )
    _say_where(report)


@app.command()
def validate(path: Annotated[Path, typer.Argument(help="Model folder or workbook")]) -> None:
    """Check a model and list every problem at once (exit code 1 if there are any)."""
    from needsled.io.load import load_model

    if not path.exists():
        console.print(f"[red]{path} does not exist[/]: give a model folder or workbook")
        raise typer.Exit(1)
    try:
        model = load_model(path)
    except InputError as exc:
        raise _fail(exc) from None
    out.print(
        f"OK: {path} has {len(model.area_codes)} areas, {len(model.offence_codes)} "
        f"offences, {len(model.services)} services, {len(model.scenarios)} scenarios; "
        f"crime history to {model.history_end}."
    )


@app.command()
def template(
    path: Annotated[Path, typer.Argument(help="Workbook to create, e.g. model.xlsx")],
    example: Annotated[
        bool,
        typer.Option(
            "--example",
            help="Fill it in with the built-in example (and write its scenarios.yaml beside it)",
        ),
    ] = False,
) -> None:
    """Write an input workbook with an instructions sheet: blank, or filled in as an example."""
    from needsled.io.template import write_template

    try:
        write_template(path, example=example)
    except FileExistsError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    kind = "Example" if example else "Blank"
    out.print(f"{kind} workbook: {path.resolve()}")


@app.command()
def example(folder: Annotated[Path, typer.Argument(help="Folder to write the model into")]) -> None:
    """Write the built-in example model as CSV files to edit and run."""
    from needsled.example import write_example

    if folder.exists() and any(folder.iterdir()):
        console.print(
            f"[red]{folder} is not empty[/]: choose a new folder so that no file "
            "of yours is overwritten"
        )
        raise typer.Exit(1)
    out.print(f"Example model: {write_example(folder).resolve()}")


@app.command()
def schema() -> None:
    """Print the input reference (every table and column) as Markdown, from the schema."""
    from needsled.scenarios import scenarios_markdown
    from needsled.schema import reference_markdown

    typer.echo(reference_markdown() + "\n" + scenarios_markdown())


@app.command()
def version() -> None:
    """Print the version."""
    out.print(__version__)


def _register_data_commands() -> None:
    from needsled.cli_calibrate import calibrate, compare
    from needsled.cli_data import backtest, data_app, funding_shares
    from needsled.cli_directory import directory_app
    from needsled.cli_optimise import optimise
    from needsled.cli_report import report
    from needsled.cli_returns import returns_app
    from needsled.cli_web import serve, users_app

    app.add_typer(data_app)  # needsled import met-crime
    app.command("backtest")(backtest)
    app.command("funding-shares")(funding_shares)
    app.command("report")(report)
    app.command("optimise")(optimise)
    app.add_typer(directory_app)  # needsled directory search | export
    app.command("calibrate")(calibrate)
    app.command("compare")(compare)
    app.add_typer(returns_app)  # needsled returns template | import | outcomes ...
    app.command("serve")(serve)
    app.add_typer(users_app)  # needsled users ...


_register_data_commands()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
