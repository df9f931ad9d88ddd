"""Load a model from disk: read, validate everything, then build the frozen :class:`Model`.

Either the whole model loads or an :class:`~needsled.errors.InputError` lists every problem;
nothing is half-loaded. Files are opened read-only.
"""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd
import yaml
from pydantic import ValidationError

from needsled.errors import InputError, Problem
from needsled.io.read import file_sha256, read_tables, scenario_file
from needsled.io.validate import cross_check, parse_table
from needsled.model import Model, Pathway, Services, Staffing, Uncertain
from needsled.scenarios import ScenarioFile, month_index, month_label
from needsled.schema import OPTIONAL_TABLES, tables

__all__ = ["load_model", "load_scenarios"]


def load_model(path: str | Path, scenarios: str | Path | None = None) -> Model:
    """Read and validate a model folder or workbook (and its scenarios YAML).

    Raises :class:`InputError` naming every problem found, with where it is and how to fix it.
    """
    path = Path(path)
    raws, problems = read_tables(path)
    frames: dict[str, pd.DataFrame] = {}
    for name, raw in raws.items():
        frame, found = parse_table(raw)
        frames[name] = frame
        problems += found
    # Tables that parsed cleanly are checked against each other even when the scenarios file
    # has problems, so that every problem is reported at once.
    if not problems:
        problems += cross_check(frames, raws)
    yaml_path = Path(scenarios) if scenarios else scenario_file(path)
    spec, yaml_problems = load_scenarios(yaml_path)
    problems += yaml_problems
    if not problems and spec is not None:
        problems += _lever_refs(spec, frames, str(yaml_path))
    if problems or spec is None:
        raise InputError(problems, what=str(path))
    files = sorted({Path(r.file) for r in raws.values()} | ({yaml_path} if yaml_path else set()))
    provenance = {str(f): file_sha256(f) for f in files}
    name = spec.title or (path.stem if path.is_file() else path.name)
    return _build(name, frames, spec, provenance)


def load_scenarios(path: Path | None) -> tuple[ScenarioFile | None, list[Problem]]:
    """The scenarios file, or the default (a single baseline) when there is none."""
    if path is None:
        return ScenarioFile(), []
    where = str(path)
    if not path.is_file():
        return None, [
            Problem(
                file=where,
                message="does not exist",
                fix="give the path of an existing scenarios YAML file, or leave it out to use "
                "scenarios.yaml beside the model",
            )
        ]
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8-sig")) or {}
    except UnicodeDecodeError as exc:
        return None, [
            Problem(
                file=where,
                message=f"is not UTF-8 text ({exc.reason} at byte {exc.start})",
                fix="save the file with UTF-8 encoding (most text editors offer it on Save As)",
            )
        ]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        return None, [
            Problem(
                file=where,
                message=f"is not valid YAML{line} ({exc})",
                fix="check the indentation and colons near that line",
            )
        ]
    if not isinstance(data, dict):
        return None, [
            Problem(
                file=where,
                message="does not hold a mapping of settings",
                fix="start the file with 'scenarios:' (see docs/reference.md)",
            )
        ]
    try:
        return ScenarioFile.model_validate(data), []
    except ValidationError as exc:
        errors = exc.errors()
        # pydantic also says a list is too short when its only items were invalid; the items'
        # own errors say what is wrong, so that echo is left out.
        return None, [
            _yaml_problem(where, err, data)
            for err in errors
            if not (
                err["type"] == "too_short"
                and any(o["loc"][: len(err["loc"])] == err["loc"] and o is not err for o in errors)
            )
        ]


def _yaml_problem(where: str, err: Any, data: Any) -> Problem:
    loc = err["loc"]
    node: Any = data
    names: list[str] = []
    for part in loc:
        if isinstance(part, int) and isinstance(node, list) and part < len(node):
            node = node[part]
            label = node.get("name") if isinstance(node, dict) and "name" in node else None
            names.append(f"[{part}]" if label is None else f"[{part}: {label}]")
        elif isinstance(node, dict) and part in node:
            node = node[part]
            names.append(f".{part}")
        else:
            names.append(f".{part}")
    path = "".join(names).lstrip(".")
    value = None if isinstance(node, dict | list) else str(node)
    msg = str(err["msg"]).removeprefix("Value error, ")
    return Problem(
        file=where,
        column=path or None,
        value=value,
        message=msg,
        fix="see the scenarios reference in docs/reference.md for what is allowed",
    )


def _lever_refs(spec: ScenarioFile, frames: dict[str, pd.DataFrame], where: str) -> list[Problem]:
    known = {
        "offences": set(frames["offences"]["offence"]),
        "areas": set(frames["areas"]["area_code"]),
        "services": set(frames["services"]["service"]),
    }
    out = [
        Problem(
            file=where,
            column=f"scenarios[{i}: {sc.name}].levers[{j}].{kind}",
            value=code,
            message=f"is not in the {kind} table",
            fix=f"use one of: {', '.join(sorted(codes))}",
        )
        for i, sc in enumerate(spec.scenarios)
        for j, lever in enumerate(sc.levers)
        for kind, codes in known.items()
        for code in getattr(lever, kind) or ()
        if code not in codes
    ]
    if spec.start and not frames["crime"].empty:
        last = frames["crime"]["month"].max()
        if month_index(spec.start) > month_index(last) + 1:
            out.append(
                Problem(
                    file=where,
                    column="start",
                    value=spec.start,
                    message=f"leaves a gap after the last month of history ({last})",
                    fix=f"set start to {month_label(month_index(last) + 1)} or "
                    "earlier, or add the missing history",
                )
            )
    return out


def _uncertain(frame: pd.DataFrame, col: str) -> Uncertain:
    c = tables()[_table_of(frame)].column(col)
    upper = 1.0 if c.type == "share" else (c.max if c.max is not None else np.inf)
    return Uncertain(
        frame[col].to_numpy(np.float64),
        frame[f"{col}_lo"].to_numpy(np.float64),
        frame[f"{col}_hi"].to_numpy(np.float64),
        c.min or 0.0,
        upper,
    )


def _table_of(frame: pd.DataFrame) -> str:
    return str(frame.attrs["table"])


def _build(
    name: str, frames: dict[str, pd.DataFrame], spec: ScenarioFile, provenance: dict[str, str]
) -> Model:
    for tname, frame in frames.items():
        frame.attrs["table"] = tname
    areas, offences = frames["areas"], frames["offences"]
    services, staffing = frames["services"], frames["staffing"]
    a_idx = {c: i for i, c in enumerate(areas["area_code"])}
    o_idx = {c: i for i, c in enumerate(offences["offence"])}
    s_idx = {c: i for i, c in enumerate(services["service"])}
    history, end = _history(frames["crime"], a_idx, o_idx)
    pathway = _pathway(frames["pathway"], a_idx, o_idx)
    mix = frames["need_mix"]
    shape = (len(o_idx), len(s_idx))
    mix_arrays = [np.zeros(shape), np.full(shape, np.nan), np.full(shape, np.nan)]
    for row in mix.itertuples(index=False):
        for arr, col in zip(mix_arrays, ("share", "share_lo", "share_hi"), strict=True):
            arr[o_idx[row.offence], s_idx[row.service]] = getattr(row, col)
    need_mix = Uncertain(mix_arrays[0], mix_arrays[1], mix_arrays[2], 0.0, 1.0)
    sessions = services["capacity_basis"].eq("sessions") & services["mode"].ne("stretch")
    places = np.where(
        sessions,
        services["sessions_per_fte_week"] / services["sessions_per_client_week"],
        services["caseload_per_fte"],
    )
    svc = Services(
        codes=tuple(services["service"]),
        names=tuple(services["service_name"]),
        types=tuple("" if t is None else t for t in services["service_type"]),
        stretch=services["mode"].eq("stretch").to_numpy(),
        places_per_fte=np.asarray(places, dtype=np.float64),
        duration_weeks=_uncertain(services, "duration_weeks"),
        duration_cv=services["duration_cv"].to_numpy(np.float64),
        drop_out_per_month=_uncertain(services, "drop_out_per_month"),
        target_wait_weeks=services["target_wait_weeks"].to_numpy(np.float64),
        cost_per_fte=_uncertain(services, "cost_per_fte"),
        priority_first=services["priority_rule"].eq("priority-first").to_numpy(),
        reengage_share=_uncertain(services, "reengage_share"),
        reengage_after_weeks=services["reengage_after_weeks"].to_numpy(np.float64),
    )
    return Model(
        name=name,
        area_codes=tuple(areas["area_code"]),
        area_names=tuple(areas["area_name"]),
        adult_population=areas["adult_population"].to_numpy(np.float64),
        offence_codes=tuple(offences["offence"]),
        offence_names=tuple(offences["offence_name"]),
        crime_history=history,
        history_end=end,
        pathway=pathway,
        need_mix=need_mix,
        services=svc,
        staffing=_staffing(staffing, a_idx, s_idx),
        scenarios=spec.scenarios,
        settings=spec.settings,
        provenance=provenance,
        assumptions=_assumptions(frames),
        tables=MappingProxyType({t: frames[t] for t in OPTIONAL_TABLES if t in frames}),
    )


def _history(
    crime: pd.DataFrame, a_idx: dict[str, int], o_idx: dict[str, int]
) -> tuple[np.ndarray, str]:
    months = crime["month"].map(month_index).to_numpy()
    last = int(months.max())
    # The months every series has (validation makes each one run without gaps to the last
    # month): earlier months of longer series are dropped, never padded with invented zeros.
    first = max(
        int(months[(crime["area_code"] == a) & (crime["offence"] == o)].min())
        for a in a_idx
        for o in o_idx
    )
    out = np.zeros((len(a_idx), len(o_idx), last - first + 1))
    keep = months >= first
    ai = crime["area_code"].map(a_idx).to_numpy()[keep]
    oi = crime["offence"].map(o_idx).to_numpy()[keep]
    out[ai, oi, months[keep] - first] = crime["count"].to_numpy(np.float64)[keep]
    return out, month_label(last)


def _pathway(frame: pd.DataFrame, a_idx: dict[str, int], o_idx: dict[str, int]) -> Pathway:
    n_a, n_o = len(a_idx), len(o_idx)
    # the all-areas rows first, then the rows for one area that override them
    records = [
        *frame[frame["area_code"].isna()].to_dict("records"),
        *frame[frame["area_code"].notna()].to_dict("records"),
    ]
    arrays: dict[str, Uncertain] = {}
    for rate in Pathway.RATES:
        col = tables()["pathway"].column(rate)
        vals = [np.zeros((n_a, n_o)), np.full((n_a, n_o), np.nan), np.full((n_a, n_o), np.nan)]
        for row in records:
            rows = [a_idx[row["area_code"]]] if row["area_code"] else list(range(n_a))
            if row["area_code"] and not row[f"_given_{rate}"]:
                continue  # a rate left blank in an area's row keeps the all-areas value
            o = o_idx[row["offence"]]
            for arr, suffix in zip(vals, ("", "_lo", "_hi"), strict=True):
                arr[rows, o] = row[rate + suffix]
        arrays[rate] = Uncertain(vals[0], vals[1], vals[2], col.min or 0.0, 1.0)
    opt_out = np.zeros((n_a, n_o), dtype=bool)
    for row in records:
        rows = [a_idx[row["area_code"]]] if row["area_code"] else list(range(n_a))
        if row["area_code"] and not row["_given_referral_model"]:
            continue
        opt_out[rows, o_idx[row["offence"]]] = row["referral_model"] == "opt-out"
    return Pathway(**arrays, opt_out=opt_out)


def _staffing(frame: pd.DataFrame, a_idx: dict[str, int], s_idx: dict[str, int]) -> Staffing:
    shape = (len(a_idx), len(s_idx))
    served = np.zeros(shape, dtype=bool)
    cols = {
        c: np.zeros(shape)
        for c in ("fte", "waiting_start", "waiting_start_mean_weeks", "open_start")
    }
    ai = frame["area_code"].map(a_idx).to_numpy()
    si = frame["service"].map(s_idx).to_numpy()
    served[ai, si] = True
    for col, arr in cols.items():
        arr[ai, si] = frame[col].to_numpy(np.float64)
    return Staffing(served=served, **cols)


def _assumptions(frames: dict[str, pd.DataFrame]) -> tuple[tuple[str, str, str, str], ...]:
    """Every rate and service figure with its source, for the report's assumptions table."""
    out: list[tuple[str, str, str, str]] = []
    for row in frames["pathway"].to_dict("records"):
        where = row["offence"] + (f" in {row['area_code']}" if row["area_code"] else "")
        for rate in Pathway.RATES:
            lo, hi = row[f"{rate}_lo"], row[f"{rate}_hi"]
            value = f"{row[rate]:g}" + (f" (80%: {lo:g}-{hi:g})" if lo == lo else "")
            out.append(("pathway", f"{rate} ({where})", value, row["source"] or "not given"))
    service_cols = (
        "duration_weeks",
        "caseload_per_fte",
        "sessions_per_fte_week",
        "drop_out_per_month",
        "target_wait_weeks",
        "cost_per_fte",
    )
    out.extend(
        ("services", f"{col} ({row['service']})", f"{row[col]:g}", row["source"] or "not given")
        for row in frames["services"].to_dict("records")
        for col in service_cols
        if row[col] == row[col]
    )
    out.extend(
        (
            "need_mix",
            f"{row['offence']} -> {row['service']}",
            f"{row['share']:g}",
            row["source"] or "not given",
        )
        for row in frames["need_mix"].to_dict("records")
    )
    return tuple(out)
