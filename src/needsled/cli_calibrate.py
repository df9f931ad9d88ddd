"""``needsled calibrate`` and ``needsled compare``: provider returns against the model.

- ``calibrate MODEL --returns STORE --out NEW_MODEL``: estimate the model's parameters from
  the returns and write them, with their intervals and provenance, into a copy of the model.
- ``compare MODEL RUN_DIR --returns STORE --out DIR``: each returned figure against the
  model's 80% band for the same quarter (``actual_vs_model.csv`` and ``.txt``).

``STORE`` is a returns store (a folder holding ``returns.parquet``) or that file. Problems
with the input are printed as a list, never as a traceback (exit code 1).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from needsled.cli_common import UserError, console, fail, out, out_folder
from needsled.errors import InputError

if TYPE_CHECKING:
    from needsled.model import Model
    from needsled.projection import RunResult
    from needsled.returns.calibrate import Estimate

__all__ = ["calibrate", "compare", "rerun_scenario"]

Returns = Annotated[
    Path,
    typer.Option(
        "--returns", help="Returns store (folder with returns.parquet) or a returns.parquet file"
    ),
]


def _problems(exc: InputError, what: str = "nothing was written") -> typer.Exit:
    console.print(
        f"{len(exc.problems)} problem(s) in {exc.what}; {what}:", style="bold red", highlight=False
    )
    for p in exc.problems:
        console.print(f"  - {p}", highlight=False, markup=False)
    return typer.Exit(1)


def _estimate_line(e: Estimate) -> str:
    who = "all services" if e.service == "ALL" else e.service
    return (
        f"  {e.parameter} ({who}): {e.old:.4g} -> {e.value:.4g} "
        f"(80%: {e.lo:.4g} to {e.hi:.4g}; n = {e.n:g} {e.n_of})"
    )


def calibrate(
    model: Annotated[Path, typer.Argument(help="Model folder or workbook (left unchanged)")],
    returns: Returns,
    out_dir: Annotated[
        Path, typer.Option("--out", help="New folder for the calibrated copy of the model")
    ],
) -> None:
    """Estimate the model's parameters from provider returns; write them into a new model."""
    import pandas as pd

    from needsled.io.calibrated import CALIBRATION_FILE, read_returns, write_calibrated
    from needsled.io.load import load_model
    from needsled.returns.calibrate import calibrate as estimate

    try:
        loaded = load_model(model)
        frame = read_returns(returns)
        result = estimate(loaded, frame)
        written = write_calibrated(model, result, out_dir)
    except InputError as exc:
        raise _problems(exc) from None
    except ValueError as exc:
        raise fail(UserError(str(exc))) from None
    except OSError as exc:
        raise fail(UserError(f"cannot write {out_dir}: {exc.strerror or exc}")) from None
    try:
        load_model(written)
    except InputError as exc:  # a bug if it ever happens: say so plainly
        raise _problems(exc, "the calibrated model was written but does not load") from None
    table = pd.read_csv(written / CALIBRATION_FILE, keep_default_na=False)
    done = {tuple(r) for r in table.loc[table["written"] == "yes", ["parameter", "service"]].values}
    chosen = [e for e in result.written() if (e.parameter, e.service) in done]
    out.print(
        f"Calibrated from returns for {result.period}: {len(chosen)} estimate(s) written into "
        f"{written.resolve()}",
        highlight=False,
    )
    for e in chosen:
        out.print(_estimate_line(e), highlight=False)
    for note in result.notes:
        out.print(f"Note: {note}", highlight=False)
    out.print(
        f"Every estimate, with its interval and notes: {(written / CALIBRATION_FILE).resolve()}",
        highlight=False,
    )


def _run_settings(run_dir: Path, model_inputs: dict[str, str]) -> dict[str, Any]:
    """The run's manifest, checked against the model's files (by name and hash)."""
    path = run_dir / "manifest.json"
    if not path.is_file():
        raise UserError(
            f"{path} does not exist: {run_dir} is not a run folder",
            "give the folder `needsled run --out` wrote (for needsled demo, OUT/results)",
        )
    try:
        man = json.loads(path.read_text(encoding="utf-8"))
        seed, replicates = int(man["seed"]), int(man["replicates"])
        scenarios = [str(s) for s in man["scenarios"]]
        inputs = {Path(k).name: str(v) for k, v in dict(man.get("inputs", {})).items()}
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise UserError(
            f"{path} is not a needsled run manifest ({type(exc).__name__}: {exc})",
            "give the folder `needsled run --out` wrote",
        ) from None
    mine = {Path(k).name: v for k, v in model_inputs.items()}
    changed = sorted(k for k in inputs if mine.get(k) != inputs[k])
    if changed:
        raise UserError(
            f"the model's files differ from those the run in {run_dir} used: {', '.join(changed)}",
            "give the model the run was made from, or run the model again",
        )
    return {"seed": seed, "replicates": replicates, "scenarios": scenarios}


def rerun_scenario(
    run_dir: Path, loaded: Model, scenario: str | None, why: str
) -> tuple[RunResult, str]:
    """The run's scenario (``scenario``, or its first) run again from the model with the
    run's seed and replicates, for each replicate's figures (the run folder keeps only
    monthly percentiles); a model that is not the run's, or an unknown scenario, is a
    :class:`UserError`. ``why`` ends the line that says so on the console."""
    from needsled.projection import run

    settings = _run_settings(run_dir, loaded.provenance)
    chosen = scenario or settings["scenarios"][0]
    known = [s.name for s in loaded.scenarios]
    if chosen not in settings["scenarios"] or chosen not in known:
        raise UserError(
            f"the run has no scenario named {chosen}",
            f"use one of: {', '.join(s for s in settings['scenarios'] if s in known)}",
        )
    console.print(
        f"Running scenario {chosen} again ({settings['replicates']} replicates, seed "
        f"{settings['seed']}) {why}...",
        highlight=False,
    )
    return run(loaded, [chosen], settings["replicates"], settings["seed"]), chosen


def compare(
    model: Annotated[Path, typer.Argument(help="The model folder or workbook the run used")],
    run_dir: Annotated[Path, typer.Argument(help="The run folder (needsled run --out)")],
    returns: Returns,
    out_dir: Annotated[
        Path,
        typer.Option(
            "--out",
            help="Folder for actual_vs_model.csv and .txt (created if needed; files of the same "
            "names in it are replaced, and the command says so; nothing else is touched)",
        ),
    ],
    scenario: Annotated[
        str | None,
        typer.Option(
            "--scenario", "-s", help="Scenario to compare with (default: the run's first)"
        ),
    ] = None,
    no_suppress: Annotated[
        bool,
        typer.Option("--no-suppress", help="Show actual counts under 5 (internal use only)"),
    ] = False,
) -> None:
    """Provider returns against the model's 80% band, quarter by quarter."""
    from needsled.cli_returns import replaced_line, write_outputs
    from needsled.io.calibrated import read_returns
    from needsled.io.load import load_model
    from needsled.returns.compare import compare as set_against
    from needsled.returns.compare import marks_note, modelled

    try:
        loaded = load_model(model)
        frame = read_returns(returns)
    except InputError as exc:
        raise _problems(exc) from None
    try:
        out_folder(out_dir)  # before the run, not after it
        res, chosen = rerun_scenario(run_dir, loaded, scenario, "for its replicates")
    except UserError as err:
        raise fail(err) from None
    result = set_against(modelled(res, chosen), frame, suppress=not no_suppress)
    lines = [*result.summary, *(f"Note: {n}" for n in result.notes)]
    lines.append(marks_note(result.suppressed))
    csv_name, txt_name = "actual_vs_model.csv", "actual_vs_model.txt"
    try:
        replaced = write_outputs(
            out_dir,
            {csv_name: result.table.to_csv(index=False), txt_name: "\n".join(lines) + "\n"},
        )
    except UserError as err:
        raise fail(err) from None
    for line in lines:
        out.print(line, highlight=False, markup=False)
    out.print(f"Table: {(out_dir / csv_name).resolve()}", highlight=False)
    if (said := replaced_line(out_dir, replaced)) is not None:
        out.print(said, highlight=False)
