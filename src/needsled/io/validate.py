"""Check raw tables against the schema and against each other; collect every problem.

The checks run in two passes. The first checks each cell on its own (type, range, allowed
values, intervals) and each table's columns; the second checks the tables against each other
(codes that must exist, duplicate keys, a complete crime history). Every problem is collected
and reported together; the caller loads nothing unless the list is empty.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from needsled.directory import check_directory
from needsled.errors import Problem, column_letter
from needsled.io.read import RawTable
from needsled.schema import TABLES, Column, Table, tables

__all__ = ["cross_check", "parse_table"]

# [0-9], not \d: \d also matches other scripts' digits, such as Arabic-Indic ones
GSS = re.compile(r"^[EWSNK][0-9]{8}$")
MONTH = re.compile(r"^([0-9]{4})-([0-9]{2})$")
CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")
# Column names that mean a table holds records about people, which needsled never accepts.
PERSONAL = {
    "name",
    "first_name",
    "surname",
    "last_name",
    "dob",
    "date_of_birth",
    "birth_date",
    "age",
    "postcode",
    "address",
    "email",
    "phone",
    "telephone",
    "nhs_number",
    "person_id",
    "victim_id",
    "client_id",
    "client_name",
    "victim_name",
    "crime_reference",
    "crime_ref",
    "case_id",
    "case_number",
}
MIN_HISTORY_MONTHS = 24
THOUSANDS = re.compile(r"^-?[0-9]{1,3}(,[0-9]{3})+(\.[0-9]+)?$")


def _personal(header: str) -> bool:
    """Whether a column name means records about people ('Date of birth' as date_of_birth)."""
    return re.sub(r"[\s\-]+", "_", header.strip().lower()) in PERSONAL


@dataclass(frozen=True)
class _Where:
    raw: RawTable
    col_index: dict[str, int]

    def problem(
        self,
        message: str,
        fix: str,
        row: int | None = None,
        column: str | None = None,
        value: str | None = None,
    ) -> Problem:
        cell = None
        if self.raw.sheet is not None and column in self.col_index and row is not None:
            cell = f"{column_letter(self.col_index[column])}{row}"
        return Problem(
            file=self.raw.file,
            sheet=self.raw.sheet,
            row=row,
            column=column,
            value=value,
            message=message,
            fix=fix,
            cell=cell,
        )


def _month_ok(text: str) -> bool:
    m = MONTH.match(text)
    return m is not None and 1 <= int(m.group(2)) <= 12 and 1900 < int(m.group(1)) < 2200


def _normalise_month(text: str) -> str:
    """Accept 2024-03, 2024-03-01 (a date typed into Excel) and 202403 (the Met's layout)."""
    if re.match(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$", text):
        return text[:7]
    if re.match(r"^[0-9]{6}$", text):
        return f"{text[:4]}-{text[4:]}"
    return text


def _check_cell(col: Column, text: str) -> tuple[object, str | None]:
    """Parse one cell; return (value, None) or (None, what is wrong)."""
    if col.type == "gss":
        return (text.upper(), None) if GSS.match(text.upper()) else (None, "is not a GSS code")
    if col.type == "code":
        return (text, None) if CODE.match(text) else (None, "is not a valid code")
    if col.type == "month":
        text = _normalise_month(text)
        return (text, None) if _month_ok(text) else (None, "is not a month")
    if col.type == "enum":
        lowered = text.lower()
        return (lowered, None) if lowered in col.allowed else (None, "is not an allowed value")
    if col.type == "text":
        return text, None
    plain = text.replace("£", "").strip()
    if "," in plain and not THOUSANDS.match(plain):
        return None, "is not a number (a comma is only allowed between thousands: 1,500)"
    try:
        value = float(plain.replace(",", ""))
    except ValueError:
        return None, "is not a number"
    if not np.isfinite(value):
        return None, "is not a finite number"
    if col.type == "int" and not value.is_integer():
        return None, "is not a whole number"
    low = 0.0 if col.type == "share" else col.min
    high = 1.0 if col.type == "share" else col.max
    if (low is not None and value < low) or (high is not None and value > high):
        return None, "is out of range"
    return value, None


def parse_table(raw: RawTable) -> tuple[pd.DataFrame, list[Problem]]:
    """Typed table with defaults filled in (``_lo``/``_hi`` columns NaN where not given)."""
    table: Table = tables()[raw.name]
    where = _Where(raw, {h: i for i, h in enumerate(raw.header)})
    problems = _header_problems(table, raw, where)
    data: dict[str, pd.Series] = {}
    for col in table.columns:
        names = [col.name, f"{col.name}_lo", f"{col.name}_hi"] if col.interval else [col.name]
        for name in names:
            values = _parse_column(raw, where, col, name, problems)
            # Text columns stay object dtype so that a blank cell stays None: pandas' inferred
            # string dtype would turn it into NaN, which is truthy and not None.
            data[name] = pd.Series(values, dtype=np.float64 if col.numeric else object)
    frame = pd.DataFrame(data, index=pd.RangeIndex(len(raw.rows)))
    frame["_row"] = [raw.first_row + i for i in range(len(raw.rows))]
    for col in table.columns:  # which cells the user filled in (the rest took defaults)
        idx = where.col_index.get(col.name)
        frame[f"_given_{col.name}"] = [
            idx is not None and idx < len(row) and row[idx] != "" for row in raw.rows
        ]
    problems += _interval_problems(table, frame, where)
    return frame, problems


def _header_problems(table: Table, raw: RawTable, where: _Where) -> list[Problem]:
    problems: list[Problem] = []
    known = set(table.all_names())
    problems.extend(
        where.problem(
            "is a column that describes individual people; needsled takes counts only, never "
            "records about a person",
            row=1,
            column=h,
            value=h,
            fix="remove this column and give counts per area, offence and month instead",
        )
        for h in raw.header
        if _personal(h) and h not in table.names  # a declared column (an organisation's
        # public phone or email in the directory) is not about a person
    )
    seen: set[str] = set()
    for h in raw.header:
        if h and h in seen:
            problems.append(
                where.problem(
                    "is a repeated column name",
                    row=1,
                    column=h,
                    value=h,
                    fix="keep one column with this name",
                )
            )
        seen.add(h)
        if (
            h
            and h not in known
            and not (_personal(h) and h not in table.names)
            and not h.lower().startswith(("note", "comment"))
        ):
            close = difflib.get_close_matches(h, known, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            problems.append(
                where.problem(
                    "is not a column needsled knows",
                    row=1,
                    column=h,
                    value=h,
                    fix=f"{hint}rename or remove it (columns starting 'note' are kept as notes); "
                    f"known columns: {', '.join(table.all_names())}",
                )
            )
    problems.extend(
        where.problem(
            f"is missing the required column '{col.name}'",
            row=1,
            column=col.name,
            fix=f"add a column '{col.name}': {col.description}",
        )
        for col in table.columns
        if col.required and col.name not in raw.header
    )
    if not raw.rows and raw.name in TABLES and raw.name != "pathway":
        problems.append(where.problem("has no rows", fix=f"fill in the {raw.name} table"))
    return problems


def _parse_column(
    raw: RawTable, where: _Where, col: Column, name: str, problems: list[Problem]
) -> list[object]:
    idx = where.col_index.get(name)
    is_main = name == col.name
    default = col.default_value() if is_main else None
    missing: object = np.nan if col.numeric else None
    if idx is None:
        return [default if default is not None else missing] * len(raw.rows)
    out: list[object] = []
    for i, row in enumerate(raw.rows):
        text = row[idx] if idx < len(row) else ""
        rownum = raw.first_row + i
        if text == "":
            if is_main and col.required:
                problems.append(
                    where.problem(
                        "is empty but required",
                        row=rownum,
                        column=name,
                        value="",
                        fix=f"enter {col.rule()}: {col.description}",
                    )
                )
            out.append(default if default is not None else missing)
            continue
        value, error = _check_cell(col, text)
        if error:
            problems.append(
                where.problem(
                    error,
                    row=rownum,
                    column=name,
                    value=text,
                    fix=f"enter {col.rule()}" + (f" ({col.unit})" if col.unit else ""),
                )
            )
            out.append(missing)
        else:
            out.append(value)
    return out


def _interval_problems(table: Table, frame: pd.DataFrame, where: _Where) -> list[Problem]:
    problems: list[Problem] = []
    for col in table.columns:
        if not col.interval:
            continue
        lo = frame[f"{col.name}_lo"].to_numpy(np.float64)
        hi = frame[f"{col.name}_hi"].to_numpy(np.float64)
        mid = frame[col.name].to_numpy(np.float64)
        rows = frame["_row"].to_numpy()
        one_sided = np.isnan(lo) != np.isnan(hi)
        bad_lo = (lo > hi) | (lo > mid)
        bad_order = bad_lo | (hi < mid)
        for i in np.flatnonzero(one_sided):
            empty = f"{col.name}_lo" if np.isnan(lo[i]) else f"{col.name}_hi"
            idx = where.col_index.get(empty)
            if idx is not None and where.raw.rows[i][idx] != "":
                continue  # the end was given but is unusable: that cell is reported already
            problems.append(
                where.problem(
                    "has only one end of an 80% interval",
                    row=int(rows[i]),
                    column=empty,
                    value="",
                    fix=f"give both {col.name}_lo and {col.name}_hi, or neither",
                )
            )
        # Point at the end that is wrong: the low end unless only the high end is.
        problems.extend(
            where.problem(
                f"has an 80% interval [{lo[i]:g}, {hi[i]:g}] that does not contain "
                f"its value {mid[i]:g}",
                row=int(rows[i]),
                column=f"{col.name}_{'lo' if bad_lo[i] else 'hi'}",
                value=f"{(lo if bad_lo[i] else hi)[i]:g}",
                fix=f"make {col.name}_lo <= {col.name} <= {col.name}_hi",
            )
            for i in np.flatnonzero(bad_order)
        )
    return problems


# ---------------------------------------------------------------- cross-table checks


# The columns that identify a row of each table (no two rows may share them) ...
KEYS: dict[str, list[str]] = {
    "areas": ["area_code"],
    "offences": ["offence"],
    "services": ["service"],
    "crime": ["area_code", "offence", "month"],
    "pathway": ["offence", "area_code"],
    "need_mix": ["offence", "service"],
    "staffing": ["service", "area_code"],
    "directory": ["service", "provider"],
    "options": ["option"],
    "lots": ["service"],
    "groups": ["dimension", "group"],
}
# ... and the columns that must hold a code from another table: (table, column, target, column).
# Optional tables add their own entries; a check runs only when both tables are present.
REFS: list[tuple[str, str, str, str]] = [
    ("crime", "area_code", "areas", "area_code"),
    ("crime", "offence", "offences", "offence"),
    ("pathway", "offence", "offences", "offence"),
    ("pathway", "area_code", "areas", "area_code"),
    ("need_mix", "offence", "offences", "offence"),
    ("need_mix", "service", "services", "service"),
    ("staffing", "service", "services", "service"),
    ("staffing", "area_code", "areas", "area_code"),
    ("directory", "service", "services", "service"),
    ("options", "service", "services", "service"),
    ("lots", "service", "services", "service"),
]


def cross_check(frames: dict[str, pd.DataFrame], raws: dict[str, RawTable]) -> list[Problem]:
    """Checks between tables; only call once every table parsed without problems."""
    wh = {n: _Where(r, {h: i for i, h in enumerate(r.header)}) for n, r in raws.items()}
    problems: list[Problem] = []
    for name, cols in KEYS.items():
        if name in frames:
            problems += _duplicates(frames[name], cols, wh[name])
    for table, col, target, tcol in REFS:
        if table in frames and target in frames:
            problems += _unknown_refs(
                frames[table], col, set(frames[target][tcol]), wh[table], target
            )
    problems += _service_rules(frames["services"], wh["services"])
    problems += _pathway_rows(frames, wh["pathway"])
    problems += _history(frames, wh["crime"])
    if "directory" in frames:
        problems += check_directory(frames, raws)
    if "options" in frames:
        problems += _option_areas(frames, wh["options"])
    if "groups" in frames:
        problems += _group_shares(frames["groups"], wh["groups"])
    return problems


def _option_areas(frames: dict[str, pd.DataFrame], where: _Where) -> list[Problem]:
    """An option's areas must be areas where its service has a staffing row."""
    served: dict[str, set[str]] = {}
    for rec in frames["staffing"].to_dict("records"):
        served.setdefault(str(rec["service"]), set()).add(str(rec["area_code"]))
    out: list[Problem] = []
    for rec in frames["options"].to_dict("records"):
        text = rec.get("areas")
        if text is None or text != text:
            continue
        out.extend(
            where.problem(
                f"names area {code}, where service {rec['service']} has no staffing row",
                row=int(rec["_row"]),
                column="areas",
                value=str(text),
                fix="list only areas the service serves (see the staffing table), "
                "separated by spaces, or leave it blank for all of them",
            )
            for code in str(text).replace(",", " ").split()
            if code not in served.get(str(rec["service"]), set())
        )
    return out


def _group_shares(frame: pd.DataFrame, where: _Where) -> list[Problem]:
    """Each dimension's victim shares add up to 1 (within 0.01)."""
    out: list[Problem] = []
    for dim, part in frame.groupby("dimension", sort=False):
        total = float(part["victim_share"].sum())
        if abs(total - 1.0) > 0.01:
            out.append(
                where.problem(
                    f"has victim_share adding up to {total:.3g} for dimension {dim}, not 1",
                    row=int(part["_row"].iloc[0]),
                    column="victim_share",
                    value=f"{total:.3g}",
                    fix=f"give every group of {dim} (including 'not known' if used) so that "
                    "their shares add up to 1",
                )
            )
    return out


def _duplicates(frame: pd.DataFrame, cols: list[str], where: _Where) -> list[Problem]:
    keyed = frame[cols].astype(str)
    dup = keyed.duplicated(keep="first").to_numpy()
    # a blank optional key (pathway's area_code) is shown blank, as the user left it
    values = {c: ["" if v is None else str(v) for v in frame[c]] for c in cols}
    rows = frame["_row"].to_numpy()
    return [
        where.problem(
            f"repeats the key ({', '.join(f'{c}={values[c][i]}' for c in cols)}) of an earlier row",
            row=int(rows[i]),
            column=cols[-1],
            value=values[cols[-1]][i],
            fix="keep one row per " + " and ".join(cols),
        )
        for i in np.flatnonzero(dup)
    ]


def _unknown_refs(
    frame: pd.DataFrame, col: str, known: set[object], where: _Where, target: str
) -> list[Problem]:
    out = []
    rows = frame["_row"].to_numpy()
    for i, value in enumerate(frame[col]):
        if value is None or value in known:
            continue
        close = difflib.get_close_matches(str(value), [str(k) for k in known], n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        out.append(
            where.problem(
                f"is not in the {target} table",
                row=int(rows[i]),
                column=col,
                value=str(value),
                fix=f"use a {col} listed in the {target} table{hint}, or add it to that table",
            )
        )
    return out


def _service_rules(frame: pd.DataFrame, where: _Where) -> list[Problem]:
    out: list[Problem] = []
    # places per FTE: caseload_per_fte, or sessions_per_fte_week / sessions_per_client_week;
    # capacity per week is places / duration_weeks, so every one of these must be above 0
    need: dict[str, tuple[str, ...]] = {
        "caseload": ("caseload_per_fte", "duration_weeks"),
        "sessions": ("sessions_per_fte_week", "sessions_per_client_week", "duration_weeks"),
    }
    for rec in frame.to_dict("records"):
        basis, mode = str(rec["capacity_basis"]), str(rec["mode"])
        cols = need["caseload"] if mode == "stretch" else need[basis]
        out.extend(
            where.problem(
                f"needs {col} greater than 0 for a {mode} service on a {basis} basis",
                row=int(rec["_row"]),
                column=col,
                value="" if rec[col] != rec[col] else f"{rec[col]:g}",
                fix=f"enter {col} greater than 0 for service {rec['service']}",
            )
            for col in cols
            if not float(rec[col]) > 0
        )
    return out


def _pathway_rows(frames: dict[str, pd.DataFrame], where: _Where) -> list[Problem]:
    general = set(frames["pathway"].loc[frames["pathway"]["area_code"].isna(), "offence"])
    return [
        where.problem(
            f"has no row for offence {off} with a blank area_code",
            row=None,
            fix=f"add a pathway row for {off} with area_code left blank (the rates for every "
            "area; defaults are used for any rate left blank)",
        )
        for off in frames["offences"]["offence"]
        if off not in general
    ]


def _month_no(month: str) -> int:
    return int(month[:4]) * 12 + int(month[5:]) - 1


def _label(month_no: int) -> str:
    return f"{month_no // 12}-{month_no % 12 + 1:02d}"


def _history(frames: dict[str, pd.DataFrame], where: _Where) -> list[Problem]:
    crime = frames["crime"]
    if crime.empty:
        return []
    months = crime["month"].map(_month_no)
    last = int(months.max())
    out: list[Problem] = []
    groups = crime.assign(_m=months).groupby(["area_code", "offence"], sort=True)["_m"]
    have = {key: set(v) for key, v in groups}
    for area in frames["areas"]["area_code"]:
        for off in frames["offences"]["offence"]:
            got = have.get((area, off), set())
            first = min(got) if got else last + 1
            gaps = [m for m in range(first, last + 1) if m not in got]
            if len(got) < MIN_HISTORY_MONTHS:
                out.append(
                    where.problem(
                        f"has {len(got)} months of history for {area} / {off}; forecasting needs "
                        f"at least {MIN_HISTORY_MONTHS}",
                        fix="add monthly counts up to "
                        f"{_label(last)} (write 0 for a month with no crimes)",
                    )
                )
            elif gaps:
                shown = ", ".join(_label(m) for m in gaps[:6]) + (" ..." if len(gaps) > 6 else "")
                out.append(
                    where.problem(
                        f"is missing {len(gaps)} month(s) for {area} / {off}: {shown}",
                        fix="add a row for each missing month (0 if no crimes were recorded); "
                        "every series must run without gaps to the last month, " + _label(last),
                    )
                )
    return out
