"""`needsled import met-crime`: a complete, runnable London model from the Met Police's
borough-level crime files."""

from __future__ import annotations

import csv
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
import typer
import yaml

from needsled.cli_common import (
    UserError,
    console,
    fail,
    need_file,
    out,
    parse_month,
    read_error,
    split_list,
    ym,
)

data_app = typer.Typer(
    name="import",
    add_completion=False,
    no_args_is_help=True,
    help="Build a model from official published data (e.g. Met Police borough crime).",
)

#: Met ``MinorText`` (new taxonomy, upper case) -> the short offence code used in models.
#: The codes match the built-in example so its pathway rates, need mix and services apply.
MET_OFFENCE_CODES: dict[str, tuple[str, str]] = {
    "RAPE": ("RAPE", "Rape"),
    "OTHER SEXUAL OFFENCES": ("OSO", "Other sexual offences"),
}
DEFAULT_OFFENCES = "RAPE,OTHER SEXUAL OFFENCES"
ADULT_SHARE_ASSUMPTION = 0.79  # share of Londoners aged 16+ (ONS mid-year estimates, ~79%)
_TABLE_ORDER = ("areas", "offences", "crime", "pathway", "need_mix", "services", "staffing")


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
    for raw in split_list([text]):
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
        raise UserError(
            f"--offences: {', '.join(map(repr, unknown))} not found in the Met files' "
            "MinorText column",
            "use Met minor category names separated by commas, e.g. "
            f"--offences '{DEFAULT_OFFENCES}'; the files have: {', '.join(sorted(available))}",
        )
    if not chosen:
        raise UserError("--offences is empty", f"e.g. --offences '{DEFAULT_OFFENCES}'")
    return chosen


def _adults(codes: list[str], population: Sequence[Path] | None) -> tuple[dict[str, int], str]:
    from needsled.example import ADULT_SHARE, BOROUGHS

    if not population:
        built_in = {c: int(round(p * ADULT_SHARE, -2)) for c, _, p in BOROUGHS}
        missing = [c for c in codes if c not in built_in]
        if missing:
            raise UserError(
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
        need_file(p, "GLA borough population CSV")
    try:
        pop = read_gla_borough_population(list(population))
    except ValueError as exc:
        raise read_error(exc) from None
    pop = pop[pop["area_code"].isin(codes)]
    year = int(pop["year"].max()) if len(pop) else 0
    latest = pop[pop["year"] == year].set_index("area_code")["population"]
    missing = [c for c in codes if c not in latest.index]
    if missing:
        files = ", ".join(str(p) for p in population)
        raise UserError(
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
        label = ym(month)
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

    Raises ``UserError`` (a message and a fix) for any problem with the inputs; nothing is
    written until every input has been read and checked.
    """
    from needsled.example import write_example
    from needsled.sources.met import read_met_borough_crime

    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise UserError(
            f"{folder} is not an empty folder",
            "choose a new folder for --out so that no file of yours is overwritten",
        )
    for f in files:
        need_file(f, "Met 'MPS Borough Level Crime' CSV")
    try:
        met = read_met_borough_crime(list(files))
    except ValueError as exc:
        raise read_error(exc) from None
    chosen = _offence_choice(offences, set(met.data["minor"]) | set(met.excluded["minor"]))
    minors = {minor: code for code, _, minor in chosen}

    covered = met.month_sources[met.month_sources["source_file"] != ""]
    first, last = covered["month"].min(), covered["month"].max()
    notes: list[str] = []
    if first_month is not None:
        wanted = parse_month(first_month, "--from")
        if wanted > last:
            raise UserError(
                f"--from {first_month} is after the last month in the files ({ym(last)})",
                f"choose a month from {ym(first)} to {ym(last)}",
            )
        if wanted < first:
            notes.append(
                f"--from {first_month} is before the first month in the files; the "
                f"history starts at {ym(first)}"
            )
        first = max(first, wanted)
    gaps = [g for g in met.gaps if first <= g <= last]
    if gaps:
        raise UserError(
            f"no file covers {len(gaps)} month(s) between {ym(first)} and {ym(last)}: "
            f"{', '.join(map(ym, gaps[:6]))}{' ...' if len(gaps) > 6 else ''}",
            "add the release that covers those months, or use --from after the gap",
        )
    n_months = (last - first).n + 1
    if n_months < 24:
        raise UserError(
            f"only {n_months} months of history from {ym(first)} to {ym(last)}",
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
    crime.assign(month=crime["month"].map(ym)).to_csv(folder / "crime.csv", index=False)
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
        f"Months: {ym(result.first)} to {ym(result.last)} "
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
    except UserError as err:
        raise fail(err) from None
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
