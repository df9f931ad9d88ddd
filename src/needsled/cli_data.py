"""Commands that turn official data into models and evidence.

* ``needsled import met-crime FILE... --out MODEL``: build a complete, runnable London model
  from the Met Police borough-level crime files (the ``data_app`` Typer group, ``import``);
* ``needsled backtest MODEL --out DIR``: rolling-origin backtests of the crime forecaster on
  every series of a model (:func:`backtest`);
* ``needsled funding-shares --pfa-crime FILE ...``: each police force area's share of a
  national grant, and London's against its MoJ grant share (:func:`funding_shares`).

Like :mod:`needsled.cli` this is a thin layer: it reads files with the readers in
:mod:`needsled.sources`, calls the library and prints what happened. A bad input file is
reported by name with how to fix it (exit code 1); it is never a traceback.
"""

from __future__ import annotations

import csv
import math
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
import typer
import yaml
from rich.console import Console

__all__ = [
    "DEFAULT_OFFENCES",
    "MET_OFFENCE_CODES",
    "MetImport",
    "backtest",
    "build_met_model",
    "data_app",
    "funding_shares",
]

data_app = typer.Typer(
    name="import",
    add_completion=False,
    no_args_is_help=True,
    help="Build a model from official published data (e.g. Met Police borough crime).",
)
console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)

#: Met ``MinorText`` (new taxonomy, upper case) -> the short offence code used in models.
#: The codes match the built-in example so its pathway rates, need mix and services apply.
MET_OFFENCE_CODES: dict[str, tuple[str, str]] = {
    "RAPE": ("RAPE", "Rape"),
    "OTHER SEXUAL OFFENCES": ("OSO", "Other sexual offences"),
}
DEFAULT_OFFENCES = "RAPE,OTHER SEXUAL OFFENCES"
ADULT_SHARE_ASSUMPTION = 0.79  # share of Londoners aged 16+ (ONS mid-year estimates, ~79%)
_TABLE_ORDER = ("areas", "offences", "crime", "pathway", "need_mix", "services", "staffing")


class _UserError(Exception):
    """A problem with the user's input: printed as one clear message, exit code 1."""

    def __init__(self, message: str, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix


def _fail(err: _UserError) -> typer.Exit:
    console.print(f"Error: {err.message}", style="bold red", markup=False, highlight=False)
    if err.fix:
        console.print(f"How to fix: {err.fix}", markup=False, highlight=False)
    return typer.Exit(1)


def _need_file(path: Path, what: str) -> None:
    if not path.exists():
        raise _UserError(f"{path} does not exist", f"give the path of the {what}")
    if not path.is_file():
        raise _UserError(f"{path} is not a file", f"give the path of the {what}, not a folder")


def _read_error(exc: ValueError) -> _UserError:
    """A reader's ValueError (SourceFormatError names the file, problems and the fix)."""
    return _UserError(str(exc))


def _split(values: Iterable[str]) -> list[str]:
    return [part.strip() for v in values for part in v.split(",") if part.strip()]


def _month(text: str, option: str) -> pd.Period:
    try:
        if len(text) != 7 or text[4] != "-":
            raise ValueError(text)
        return pd.Period(text, freq="M")
    except ValueError:
        raise _UserError(
            f"{option} {text!r} is not a month", "write it as YYYY-MM, e.g. 2015-04"
        ) from None


def _ym(p: pd.Period) -> str:
    return p.strftime("%Y-%m")


# --------------------------------------------------------------------------- import met-crime


@dataclass
class MetImport:
    """What :func:`build_met_model` wrote and what the summary prints."""

    folder: Path
    offences: list[tuple[str, str, str]]  # code, name, Met minor
    areas: pd.DataFrame  # area_code, area_name, adult_population
    crime: pd.DataFrame  # area_code, offence, month (Period[M]), count: as written
    placed: pd.DataFrame  # the same, as the Met placed them in boroughs (before sharing)
    first: pd.Period
    last: pd.Period
    month_runs: list[tuple[str, str, str, str]]  # first, last, file, taxonomy
    excluded: pd.DataFrame  # area_name, offence, reason, month, count (within the window)
    population_note: str
    dropped_services: list[str]
    dropped_scenarios: list[str]
    notes: list[str] = field(default_factory=list)

    @property
    def unknown_shared(self) -> bool:
        return not self.crime["count"].equals(self.placed["count"])


def _offence_choice(text: str, available: set[str]) -> list[tuple[str, str, str]]:
    by_code = {code: minor for minor, (code, _) in MET_OFFENCE_CODES.items()}
    chosen: list[tuple[str, str, str]] = []
    unknown: list[str] = []
    for raw in _split([text]):
        minor = by_code.get(raw.upper(), raw.upper())
        if minor not in available:
            unknown.append(raw)
            continue
        if minor in MET_OFFENCE_CODES:
            code, name = MET_OFFENCE_CODES[minor]
        else:
            code = "".join(ch if ch.isalnum() else "_" for ch in minor).strip("_")
            name = minor.capitalize()
        if code not in [c for c, _, _ in chosen]:
            chosen.append((code, name, minor))
    if unknown:
        raise _UserError(
            f"--offences: {', '.join(map(repr, unknown))} not found in the Met files' "
            "MinorText column",
            "use Met minor category names separated by commas, e.g. "
            f"--offences '{DEFAULT_OFFENCES}'; the files have: {', '.join(sorted(available))}",
        )
    if not chosen:
        raise _UserError("--offences is empty", f"e.g. --offences '{DEFAULT_OFFENCES}'")
    return chosen


def _adults(codes: list[str], population: Sequence[Path] | None) -> tuple[dict[str, int], str]:
    from needsled.example import ADULT_SHARE, BOROUGHS

    if not population:
        built_in = {c: int(round(p * ADULT_SHARE, -2)) for c, _, p in BOROUGHS}
        missing = [c for c in codes if c not in built_in]
        if missing:
            raise _UserError(
                f"no built-in population for {', '.join(missing)}",
                "pass the GLA borough population file(s) with --population",
            )
        return {c: built_in[c] for c in codes}, (
            f"adult population = the built-in GLA 2022 borough populations x {ADULT_SHARE} "
            "(assumption: share aged 16+), rounded to 100; pass --population for the latest "
            "GLA figures"
        )
    from needsled.sources.population import read_gla_borough_population

    for p in population:
        _need_file(p, "GLA borough population CSV")
    try:
        pop = read_gla_borough_population(list(population))
    except ValueError as exc:
        raise _read_error(exc) from None
    pop = pop[pop["area_code"].isin(codes)]
    year = int(pop["year"].max()) if len(pop) else 0
    latest = pop[pop["year"] == year].set_index("area_code")["population"]
    missing = [c for c in codes if c not in latest.index]
    if missing:
        files = ", ".join(str(p) for p in population)
        raise _UserError(
            f"{files}: no {year or ''} population for {len(missing)} borough(s): "
            f"{', '.join(missing)}",
            "use the GLA borough population CSV as published, which covers all 32 boroughs",
        )
    adults = {c: round(float(latest[c]) * ADULT_SHARE_ASSUMPTION) for c in codes}
    return adults, (
        f"adult population = GLA {year} borough population x {ADULT_SHARE_ASSUMPTION} "
        "(assumption: share of Londoners aged 16+, ONS mid-year estimates about 79%)"
    )


def _runs(sources: pd.DataFrame) -> list[tuple[str, str, str, str]]:
    runs: list[tuple[str, str, str, str]] = []
    for month, name, tax in sources.itertuples(index=False, name=None):
        label = _ym(month)
        if runs and runs[-1][2] == name:
            runs[-1] = (runs[-1][0], label, name, tax)
        else:
            runs.append((label, label, name, tax))
    return runs


def _read_table(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


def _write_table(path: Path, header: list[str], rows: Iterable[dict[str, Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, header, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def _filter_scenarios(
    spec: dict[str, Any], offences: set[str], services: set[str]
) -> tuple[dict[str, Any], list[str]]:
    """The example's scenarios with lever references to absent offences/services removed;
    a scenario all of whose levers went is dropped (it would repeat the baseline)."""
    kept, dropped = [], []
    for sc in spec.get("scenarios", []):
        levers = []
        for lever in sc.get("levers") or []:
            ok = True
            for key, known in (("offences", offences), ("services", services)):
                if lever.get(key):
                    lever[key] = [x for x in lever[key] if x in known]
                    ok = ok and bool(lever[key])
            if ok:
                levers.append(lever)
        if sc.get("levers") and not levers:
            dropped.append(str(sc["name"]))
            continue
        if "levers" in sc:
            sc["levers"] = levers
        kept.append(sc)
    spec["scenarios"] = kept
    return spec, dropped


def _spread_unknown(crime: pd.DataFrame, excluded: pd.DataFrame) -> pd.DataFrame:
    """Share the 'Unknown' counts of each offence and month among the boroughs.

    Each borough gets the month's unknown count times its share of that month's placed
    offences (its share over the whole history in a month with none placed), rounded to whole
    crimes by largest remainder so that the month's total is exact. The airports row is not
    shared: it is a place, not a recording gap.
    """
    unknown = excluded[excluded["area_name"].str.lower() == "unknown"]
    extra = unknown.groupby(["offence", "month"], as_index=False)["count"].sum()
    counts = crime["count"].to_numpy(np.int64).copy()
    offence_col = crime["offence"].to_numpy()
    month_col = crime["month"].to_numpy()
    area_col = crime["area_code"].to_numpy()
    totals = crime.groupby(["offence", "area_code"], as_index=False)["count"].sum()
    overall = {(r.offence, r.area_code): float(r.count) for r in totals.itertuples()}
    for row in extra.itertuples():
        n = int(row.count)
        if n <= 0:
            continue
        rows = np.flatnonzero((offence_col == row.offence) & (month_col == row.month))
        placed = counts[rows].astype(float)
        if placed.sum() <= 0:
            placed = np.array([overall.get((row.offence, a), 0.0) for a in area_col[rows]])
        if placed.sum() <= 0:
            placed = np.ones(len(rows))
        share = n * placed / placed.sum()
        whole = np.floor(share)
        order = np.argsort(-(share - whole), kind="stable")
        whole[order[: int(n - whole.sum())]] += 1
        counts[rows] += whole.astype(np.int64)
    return crime.assign(count=counts)


def build_met_model(
    files: Sequence[Path],
    folder: Path,
    *,
    offences: str = DEFAULT_OFFENCES,
    population: Sequence[Path] | None = None,
    first_month: str | None = None,
    spread_unknown: bool = True,
) -> MetImport:
    """Read the Met files and write a complete model folder (see ``import met-crime``).

    Raises ``_UserError`` (a message and a fix) for any problem with the inputs; nothing is
    written until every input has been read and checked.
    """
    from needsled.example import write_example
    from needsled.sources.met import read_met_borough_crime

    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise _UserError(
            f"{folder} is not an empty folder",
            "choose a new folder for --out so that no file of yours is overwritten",
        )
    for f in files:
        _need_file(f, "Met 'MPS Borough Level Crime' CSV")
    try:
        met = read_met_borough_crime(list(files))
    except ValueError as exc:
        raise _read_error(exc) from None
    chosen = _offence_choice(offences, set(met.data["minor"]) | set(met.excluded["minor"]))
    minors = {minor: code for code, _, minor in chosen}

    covered = met.month_sources[met.month_sources["source_file"] != ""]
    first, last = covered["month"].min(), covered["month"].max()
    notes: list[str] = []
    if first_month is not None:
        wanted = _month(first_month, "--from")
        if wanted > last:
            raise _UserError(
                f"--from {first_month} is after the last month in the files ({_ym(last)})",
                f"choose a month from {_ym(first)} to {_ym(last)}",
            )
        if wanted < first:
            notes.append(
                f"--from {first_month} is before the first month in the files; the "
                f"history starts at {_ym(first)}"
            )
        first = max(first, wanted)
    gaps = [g for g in met.gaps if first <= g <= last]
    if gaps:
        raise _UserError(
            f"no file covers {len(gaps)} month(s) between {_ym(first)} and {_ym(last)}: "
            f"{', '.join(map(_ym, gaps[:6]))}{' ...' if len(gaps) > 6 else ''}",
            "add the release that covers those months, or use --from after the gap",
        )
    n_months = (last - first).n + 1
    if n_months < 24:
        raise _UserError(
            f"only {n_months} months of history from {_ym(first)} to {_ym(last)}",
            "forecasting needs at least 24 months: use an earlier --from or add "
            "the historical file",
        )
    in_window = met.month_sources["month"].between(first, last)
    sources = met.month_sources.loc[in_window, ["month", "source_file", "taxonomy"]]
    if (sources["taxonomy"] == "old").any() and (sources["taxonomy"] == "new").any():
        notes.append(
            "months come from both old- and new-format releases: the old format "
            "assigns 'Unknown' offences to boroughs, so borough series step down "
            "where the new format starts; prefer the new-format files"
        )

    data = met.data[met.data["minor"].isin(minors) & met.data["month"].between(first, last)]
    crime = pd.DataFrame(
        {
            "area_code": data["area_code"].to_numpy(),
            "area_name": data["area_name"].to_numpy(),
            "offence": data["minor"].map(minors).to_numpy(),
            "month": data["month"].to_numpy(),
            "count": data["count"].to_numpy(),
        }
    )
    names = crime[["area_code", "area_name"]].drop_duplicates().sort_values("area_code")
    codes = names["area_code"].tolist()
    if len(codes) < 32:
        notes.append(f"only {len(codes)} of the 32 boroughs are in the files")
    full = pd.MultiIndex.from_product(
        [codes, [c for c, _, _ in chosen], pd.period_range(first, last, freq="M")],
        names=["area_code", "offence", "month"],
    )
    crime = (
        crime.groupby(["area_code", "offence", "month"])["count"]
        .sum()
        .reindex(full, fill_value=0)
        .reset_index()
    )
    ex = met.excluded
    ex = ex[ex["minor"].isin(minors) & ex["month"].between(first, last)]
    excluded = (
        ex.assign(offence=ex["minor"].map(minors))
        .groupby(["area_name", "offence", "reason", "month"])["count"]
        .sum()
        .reset_index()
    )
    placed = crime
    if spread_unknown:
        crime = _spread_unknown(crime, excluded)
        notes.append(
            "offences the Met could not place in a borough ('Unknown') are shared among the "
            "boroughs in proportion to each borough's placed offences that month, so borough "
            "series keep the London total and do not inherit the fall in 'Unknown' over time "
            "(use --leave-out-unknown for the published borough figures)"
        )
    adults, pop_note = _adults(codes, population)
    areas = pd.DataFrame(
        {
            "area_code": codes,
            "area_name": names["area_name"].tolist(),
            "adult_population": [adults[c] for c in codes],
        }
    )

    with tempfile.TemporaryDirectory(prefix="needsled-example-") as tmp:
        example = write_example(Path(tmp))
        tables = {
            name: _read_table(example / f"{name}.csv")
            for name in ("pathway", "need_mix", "services", "staffing")
        }
        spec = yaml.safe_load((example / "scenarios.yaml").read_text(encoding="utf-8"))
    off_codes = {c for c, _, _ in chosen}
    pw_head, pathway = tables["pathway"]
    pathway = [r for r in pathway if r["offence"] in off_codes]
    for code, name, _ in chosen:
        if code not in {r["offence"] for r in pathway}:
            pathway.append(
                {
                    "offence": code,
                    "source": "no example rates for this offence: "
                    "schema defaults; replace with local evidence",
                }
            )
            notes.append(
                f"{code} ({name}) has no rates or need mix in the example, so it adds "
                "no service demand until you add need_mix rows for it"
            )
    mix_head, need_mix = tables["need_mix"]
    need_mix = [r for r in need_mix if r["offence"] in off_codes]
    svc_head, services = tables["services"]
    used = {r["service"] for r in need_mix}
    dropped_services = [r["service"] for r in services if r["service"] not in used]
    services = [r for r in services if r["service"] in used]
    staff_head, staffing = tables["staffing"]
    staffing = [r for r in staffing if r["service"] in used and r["area_code"] in adults]
    spec, dropped_scenarios = _filter_scenarios(spec, off_codes, used)

    folder.mkdir(parents=True, exist_ok=True)
    areas.to_csv(folder / "areas.csv", index=False)
    pd.DataFrame([(c, n) for c, n, _ in chosen], columns=["offence", "offence_name"]).to_csv(
        folder / "offences.csv", index=False
    )
    crime.assign(month=crime["month"].map(_ym)).to_csv(folder / "crime.csv", index=False)
    _write_table(folder / "pathway.csv", pw_head, pathway)
    _write_table(folder / "need_mix.csv", mix_head, need_mix)
    _write_table(folder / "services.csv", svc_head, services)
    _write_table(folder / "staffing.csv", staff_head, staffing)
    (folder / "scenarios.yaml").write_text(
        "# Scenarios from the built-in example, limited to the imported offences and the\n"
        "# services they need (written by `needsled import met-crime`)\n"
        + yaml.safe_dump(spec, sort_keys=False),
        encoding="utf-8",
    )
    result = MetImport(
        folder=folder,
        offences=chosen,
        areas=areas,
        crime=crime,
        placed=placed,
        first=first,
        last=last,
        month_runs=_runs(sources),
        excluded=excluded,
        population_note=pop_note,
        dropped_services=dropped_services,
        dropped_scenarios=dropped_scenarios,
        notes=[*notes, *met.warnings],
    )
    (folder / "IMPORT.md").write_text(_import_markdown(result, files), encoding="utf-8")
    return result


def _yearly(result: MetImport) -> pd.DataFrame:
    """Per calendar year: months covered, then each offence's borough total and the count
    left out as not assignable to a borough (column ``"<code> none"``)."""
    crime, ex = result.placed, result.excluded
    years = crime["month"].dt.year
    table = pd.DataFrame({"months": crime.groupby(years)["month"].nunique()})
    for code, _, _ in result.offences:
        mine, theirs = crime[crime["offence"] == code], ex[ex["offence"] == code]
        table[code] = mine.groupby(mine["month"].dt.year)["count"].sum()
        table[f"{code} none"] = theirs.groupby(theirs["month"].dt.year)["count"].sum()
    table.index.name = "year"
    return table.fillna(0).astype("int64")


def _import_lines(result: MetImport, files: Sequence[Path]) -> list[str]:
    codes = [c for c, _, _ in result.offences]
    lines = [
        f"Months: {_ym(result.first)} to {_ym(result.last)} "
        f"({(result.last - result.first).n + 1} months)",
        f"Boroughs: {len(result.areas)} (E09 codes; City of London is a separate force and is "
        "not in the Met files)",
        "Offences: " + ", ".join(f"{c} = Met '{m}'" for c, _, m in result.offences),
        "",
        "Recorded crimes a year: placed in a borough by the Met, and with no borough (Unknown "
        "and airports); a year with fewer than 12 months is partial:",
    ]
    yearly = _yearly(result)
    lines.append("  year  months  " + "  ".join(f"{c:>8}  {'no borough':>10}" for c in codes))
    for year, row in yearly.iterrows():
        cells = "  ".join(f"{row[c]:>8,}  {row[c + ' none']:>10,}" for c in codes)
        lines.append(f"  {year}  {row['months']:>6}  {cells}")
    lines += [
        "",
        "Not placed in a borough by the Met"
        + (
            " (Unknown: shared among the boroughs in the model; airports: left out):"
            if result.unknown_shared
            else " (left out of the model):"
        ),
    ]
    recent = result.last - 11
    for code in codes:
        ex = result.excluded[result.excluded["offence"] == code]
        mine = result.placed[result.placed["offence"] == code]
        n, n_recent = int(ex["count"].sum()), int(ex.loc[ex["month"] >= recent, "count"].sum())
        share = n / (n + int(mine["count"].sum())) if n else 0.0
        kept_recent = int(mine.loc[mine["month"] >= recent, "count"].sum())
        share_recent = n_recent / (n_recent + kept_recent) if n_recent else 0.0
        by_area = ex.groupby("area_name")["count"].sum()
        parts = ", ".join(f"{a} {int(v):,}" for a, v in by_area.items()) or "none"
        lines.append(
            f"  {code}: {n:,} offences ({share:.1%} of the MPS total; "
            f"{share_recent:.1%} in the last 12 months): {parts}"
        )
    lines.append(
        "  The share with no borough changes over time (see the table), which would move "
        "the borough series even when the MPS total does not; "
        + (
            "sharing Unknown among the boroughs keeps each month's London total instead."
            if result.unknown_shared
            else "with --leave-out-unknown the model's London demand is that much below the "
            "published MPS totals."
        )
    )
    lines += ["", "Files read:"]
    lines += [f"  {f}" for f in files]
    lines += ["", "Which months came from which file:"]
    lines += [f"  {a} to {b}: {name} ({tax} format)" for a, b, name, tax in result.month_runs]
    lines += [
        "",
        "Assumptions:",
        f"  - {result.population_note}",
        "  - pathway rates, need mix, services, staffing and scenarios are the built-in "
        "example's (illustrative, synthetic staffing), limited to these offences and "
        "boroughs: replace staffing.csv with the services you commission",
    ]
    if result.dropped_services:
        lines.append(
            f"  - services with no demand from these offences were left out: "
            f"{', '.join(result.dropped_services)} (and their staffing)"
        )
    if result.dropped_scenarios:
        lines.append(
            f"  - example scenarios that only concern absent offences or services "
            f"were left out: {', '.join(result.dropped_scenarios)}"
        )
    if result.notes:
        lines += ["", "Notes:"] + [f"  - {n}" for n in result.notes]
    return lines


def _import_markdown(result: MetImport, files: Sequence[Path]) -> str:
    body = "\n".join(_import_lines(result, files))
    return (
        "# How this model was built\n\nWritten by `needsled import met-crime` from the Met "
        "Police borough-level crime files.\n\n```text\n" + body + "\n```\n"
    )


@data_app.command("met-crime")
def import_met_crime(
    files: Annotated[
        list[Path],
        typer.Argument(
            help="Met 'MPS Borough Level Crime' CSV files from the London Datastore (any mix of "
            "historical and recent releases; overlapping months are stitched)"
        ),
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="New (empty) folder for the model")],
    population: Annotated[
        list[Path] | None,
        typer.Option(
            "--population",
            help="GLA borough population CSV (repeat for several); the latest "
            "year x 0.79 gives adults. Default: the built-in 2022 figures",
        ),
    ] = None,
    offences: Annotated[
        str, typer.Option("--offences", help="Met minor categories to import, comma-separated")
    ] = DEFAULT_OFFENCES,
    first_month: Annotated[
        str | None,
        typer.Option("--from", help="First month of history to keep, YYYY-MM (default: all)"),
    ] = None,
    leave_out_unknown: Annotated[
        bool,
        typer.Option(
            "--leave-out-unknown",
            help="Keep the published borough figures and leave out offences with no borough "
            "(default: share them among the boroughs, see docs/howto-london.md)",
        ),
    ] = False,
) -> None:
    """Build a complete, runnable London model from the Met borough-level crime files."""
    from needsled.errors import InputError
    from needsled.io.load import load_model

    try:
        result = build_met_model(
            files,
            out_dir,
            offences=offences,
            population=population,
            first_month=first_month,
            spread_unknown=not leave_out_unknown,
        )
    except _UserError as err:
        raise _fail(err) from None
    for line in _import_lines(result, files):
        out.print(line, markup=False, highlight=False)
    try:
        model = load_model(out_dir)
    except InputError as exc:  # a bug here, not the user's: say so plainly
        console.print(
            f"The written model does not load; please report this:\n{exc}",
            markup=False,
            highlight=False,
        )
        raise typer.Exit(1) from None
    out.print(
        f"\nModel: {out_dir.resolve()} ({len(model.area_codes)} areas, "
        f"{len(model.offence_codes)} offences, {len(model.services)} services, "
        f"{len(model.scenarios)} scenarios; crime history to {model.history_end}). "
        f"Run it with: needsled run {out_dir} --out results",
        markup=False,
        highlight=False,
    )


# --------------------------------------------------------------------------- backtest

_BACKTEST_COLUMNS = ["series", "offence", "method", "origin", "horizon", "mase", "coverage80"]


def _origins(n_months: int, horizon: int, count: int | None) -> list[int] | None:
    from needsled.forecast import MIN_MONTHS

    if count is None:
        return None
    last = n_months - horizon
    origins = list(range(last, MIN_MONTHS - 1, -3))[:count][::-1]
    if len(origins) < count:
        raise _UserError(
            f"--origins {count}: the history ({n_months} months) allows at most "
            f"{len(origins)} origins 3 months apart with --horizon {horizon}",
            f"use --origins {max(len(origins), 1)} or fewer, or a shorter --horizon",
        )
    return origins


def run_backtest(
    model_path: Path,
    horizon: int = 12,
    methods: Sequence[str] | None = None,
    origins: int | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Backtest every borough × offence series and each offence's all-areas total ("ALL").

    Boroughs are forecast together per offence (as ``needsled run`` does); totals one per
    offence. Returns the ``backtest.csv`` table.
    """
    from needsled.errors import InputError
    from needsled.forecast import DEFAULT_METHOD, METHODS, MIN_MONTHS, ForecastInputError
    from needsled.forecast import backtest as forecast_backtest
    from needsled.io.load import load_model
    from needsled.scenarios import month_index, month_label

    chosen = _split(methods) if methods else ["seasonal_naive", "mean", DEFAULT_METHOD]
    bad = [m for m in chosen if m not in METHODS]
    if bad:
        raise _UserError(
            f"--methods: unknown method(s) {', '.join(bad)}",
            f"choose from {', '.join(METHODS)} (comma-separated)",
        )
    if not model_path.exists():
        raise _UserError(f"{model_path} does not exist", "give a model folder or workbook")
    try:
        model = load_model(model_path)
    except InputError as exc:
        raise _UserError(
            exc.report(), "fix the listed problems (see `needsled validate`)"
        ) from None
    hist = np.asarray(model.crime_history, dtype=np.float64)
    n_a, n_o, n = hist.shape
    if n - horizon < MIN_MONTHS:
        raise _UserError(
            f"{model_path}: {n} months of crime history is too short to backtest "
            f"{horizon} months ahead",
            f"backtesting needs at least {MIN_MONTHS} + horizon "
            "months: add history or use a shorter --horizon",
        )
    start = month_index(model.history_end) - n + 1
    labels = [month_label(start + i) for i in range(n)]
    at = _origins(n, horizon, origins)
    offences = list(model.offence_codes)
    try:
        boroughs = forecast_backtest(
            hist.reshape(n_a * n_o, n),
            horizon,
            at,
            chosen,
            groups=np.tile(np.arange(n_o), n_a),
            month_labels=labels,
            seed=seed,
        )
        totals = forecast_backtest(
            hist.sum(axis=0),
            horizon,
            at,
            chosen,
            groups=np.arange(n_o),
            month_labels=labels,
            seed=seed,
        )
    except ForecastInputError as exc:
        raise _UserError(f"{model_path}: {exc}") from None
    idx = boroughs["series"].to_numpy(dtype=np.int64)
    boroughs["offence"] = [offences[i % n_o] for i in idx]
    boroughs["series"] = [model.area_codes[i // n_o] for i in idx]
    totals["offence"] = [offences[i] for i in totals["series"].to_numpy(dtype=np.int64)]
    totals["series"] = "ALL"
    table = pd.concat([totals, boroughs], ignore_index=True)[_BACKTEST_COLUMNS]
    table.attrs["default_method"] = DEFAULT_METHOD
    return table


def backtest_summary(table: pd.DataFrame, default: str) -> list[str]:
    """Markdown lines: mean MASE and 80% coverage by level, offence and method, and the
    share of boroughs where the default forecaster beats seasonal naive."""
    level = np.where(table["series"] == "ALL", "all boroughs (ALL)", "boroughs")
    frame = table.assign(level=level)
    agg = (
        frame.groupby(["level", "offence", "method"], sort=False)
        .agg(
            mase=("mase", "mean"),
            coverage80=("coverage80", "mean"),
            series=("series", "nunique"),
            origins=("origin", "nunique"),
        )
        .reset_index()
    )
    origins = sorted(set(table["origin"]))
    lines = [
        "# Forecast backtest",
        "",
        f"Rolling origins: {len(origins)} ({origins[0]} to {origins[-1]}), "
        f"{int(table['horizon'].iloc[0])} months ahead. MASE below 1 beats the in-sample "
        "seasonal-naive error; 80% intervals should cover about 0.80 of held-out months.",
        "",
        "| level | offence | method | series | mean MASE | 80% coverage |",
        "|---|---|---|---:|---:|---:|",
    ]
    for r in agg.sort_values(
        ["level", "offence"], ascending=[False, True], kind="stable"
    ).itertuples():
        mark = " (default)" if r.method == default else ""
        lines.append(
            f"| {r.level} | {r.offence} | {r.method}{mark} | {r.series} | "
            f"{r.mase:.3f} | {r.coverage80:.2f} |"
        )
    lines.append("")
    methods = set(table["method"])
    per = (
        frame[frame["level"] == "boroughs"]
        .groupby(["offence", "series", "method"])["mase"]
        .mean()
        .unstack("method")
    )
    if {default, "seasonal_naive"} <= methods and len(per):
        for off, part in per.groupby(level="offence"):
            beats = float((part[default] < part["seasonal_naive"]).mean())
            lines.append(
                f"- {off}: the default ({default}) has a lower mean MASE than "
                f"seasonal naive in {beats:.0%} of {len(part)} boroughs."
            )
    else:
        lines.append(
            f"- Default vs seasonal naive: not compared (run both {default} and seasonal_naive)."
        )
    nan = int(table["mase"].isna().sum())
    if nan:
        lines.append(f"- {nan} row(s) have no MASE (the training series never changed).")
    lines += ["", "Method definitions and how to read this: docs/forecasting.md."]
    return lines


def backtest(
    model: Annotated[Path, typer.Argument(help="Model folder or workbook")],
    out_dir: Annotated[
        Path, typer.Option("--out", help="Folder for backtest.csv and backtest-summary.md")
    ],
    horizon: Annotated[
        int, typer.Option("--horizon", min=1, max=60, help="Months ahead to forecast")
    ] = 12,
    methods: Annotated[
        list[str] | None,
        typer.Option(
            "--methods",
            help="Methods, comma-separated or repeated (default: seasonal_naive, "
            "mean and the default pooled_ets; 'ets' is slow)",
        ),
    ] = None,
    origins: Annotated[
        int | None,
        typer.Option(
            "--origins",
            min=1,
            help="Number of forecast origins, 3 months apart, ending at the "
            "last possible one (default: every 3 months over 5 years)",
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed")] = 0,
) -> None:
    """Rolling-origin backtests of the crime forecasts on every series of a model."""
    try:
        table = run_backtest(model, horizon, methods, origins, seed)
        if out_dir.exists() and not out_dir.is_dir():
            raise _UserError(f"{out_dir} is a file", "give a folder for --out")
    except _UserError as err:
        raise _fail(err) from None
    out_dir.mkdir(parents=True, exist_ok=True)
    table.to_csv(out_dir / "backtest.csv", index=False)
    lines = backtest_summary(table, str(table.attrs["default_method"]))
    (out_dir / "backtest-summary.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for line in lines:
        out.print(line, markup=False, highlight=False)
    out.print(
        f"\nTables: {(out_dir / 'backtest.csv').resolve()}, "
        f"{(out_dir / 'backtest-summary.md').resolve()}",
        markup=False,
        highlight=False,
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
    _need_file(path, kind)
    try:
        frame = read_csv_strict(path, kind, fix, dtype=str, keep_default_na=False)
    except ValueError as exc:
        raise _read_error(exc) from None
    cols = {str(c).strip().lower(): str(c) for c in frame.columns}
    key_col = next((cols[a] for a in (key, *aliases) if a in cols), None)
    problems = []
    if key_col is None:
        problems.append(Problem("required column is missing", 1, key))
    if value not in cols:
        problems.append(Problem("required column is missing", 1, value))
    if problems or key_col is None:
        raise _read_error(SourceFormatError(path, kind, problems, fix))
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
        raise _read_error(SourceFormatError(path, kind, problems, fix))
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
            raise _UserError(
                f"--year-ending {year_ending!r} is not a date",
                "write it as YYYY-MM-DD, e.g. 2018-03-31",
            ) from None
        if out_file.is_dir():
            raise _UserError(f"{out_file} is a folder", "give a file name ending .csv for --out")
        _need_file(pfa_crime, "ONS recorded crime by PFA CSV (rec-crime-pfa.csv)")
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
            raise _read_error(exc) from None
        try:
            shares = funding.funding_shares(crime, when, population=pop, weights=wts)
        except PeriodNotAvailableError as exc:
            raise _UserError(f"{pfa_crime}: {exc}", "choose one of the available dates") from None
        except ValueError as exc:
            text = str(exc)
            culprit = (
                population
                if text.startswith("population")
                else weights
                if text.startswith("weights")
                else pfa_crime
            )
            raise _UserError(f"{culprit}: {text}") from None
    except _UserError as err:
        raise _fail(err) from None
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
