"""Input loading and validation: every problem a user can make is found, located and explained.

Each test copies a valid model (the built-in example, cut to three boroughs so that the suite
stays fast), breaks one thing, and checks the problem that comes back: file, sheet, row (the
spreadsheet row: the header is row 1), column, value, message and fix.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import openpyxl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from needsled.cli import app
from needsled.directory import example_directory_rows
from needsled.errors import InputError, Problem
from needsled.example import write_example
from needsled.io.load import load_model
from needsled.io.read import RawTable
from needsled.io.validate import MIN_HISTORY_MONTHS, parse_table
from needsled.model import Model
from needsled.schema import ALL_TABLES, TABLES

KEEP_AREAS = ("E09000002", "E09000003", "E09000004")  # the small model's boroughs
HISTORY = ("2019-04", "2025-03")  # the example's first and last month of crime history

Rows = list[list[str]]


# ---------------------------------------------------------------- helpers


def read_rows(folder: Path, table: str) -> Rows:
    with (folder / f"{table}.csv").open(newline="", encoding="utf-8") as fh:
        return [list(r) for r in csv.reader(fh)]


def write_rows(folder: Path, table: str, rows: Rows) -> None:
    with (folder / f"{table}.csv").open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)


def edit(folder: Path, table: str, change: Callable[[Rows], Rows | None]) -> None:
    """Apply ``change`` to a table's rows (header first) and write it back."""
    rows = read_rows(folder, table)
    new = change(rows)
    write_rows(folder, table, rows if new is None else new)


def set_cell(folder: Path, table: str, row: int, column: str, value: str) -> None:
    """Set one cell; ``row`` is the spreadsheet row number (header = 1)."""

    def change(rows: Rows) -> None:
        rows[row - 1][rows[0].index(column)] = value

    edit(folder, table, change)


def cell(folder: Path, table: str, row: int, column: str) -> str:
    rows = read_rows(folder, table)
    return rows[row - 1][rows[0].index(column)]


def add_column(folder: Path, table: str, name: str, value: str = "") -> None:
    def change(rows: Rows) -> None:
        rows[0].append(name)
        for r in rows[1:]:
            r.append(value)

    edit(folder, table, change)


def drop_column(folder: Path, table: str, name: str) -> None:
    def change(rows: Rows) -> Rows:
        i = rows[0].index(name)
        return [r[:i] + r[i + 1 :] for r in rows]

    edit(folder, table, change)


def append_row(folder: Path, table: str, values: dict[str, str]) -> int:
    """Add a row (blank where not given); return its spreadsheet row number."""
    rows = read_rows(folder, table)
    rows.append([values.get(h, "") for h in rows[0]])
    write_rows(folder, table, rows)
    return len(rows)


def delete_row(folder: Path, table: str, row: int) -> None:
    rows = read_rows(folder, table)
    del rows[row - 1]
    write_rows(folder, table, rows)


def copy_row(folder: Path, table: str, row: int) -> int:
    """Append a copy of spreadsheet row ``row``; return the copy's row number."""
    rows = read_rows(folder, table)
    rows.append(list(rows[row - 1]))
    write_rows(folder, table, rows)
    return len(rows)


def row_of(folder: Path, table: str, column: str, value: str) -> int:
    """Spreadsheet row number of the first row whose ``column`` is ``value``."""
    rows = read_rows(folder, table)
    i = rows[0].index(column)
    return 1 + next(n for n, r in enumerate(rows) if r[i] == value)


def crime_row(folder: Path, area: str, offence: str, month: str) -> int:
    rows = read_rows(folder, "crime")
    return 1 + next(i for i, r in enumerate(rows) if r[:3] == [area, offence, month])


def problems_of(path: Path, scenarios: Path | None = None) -> tuple[Problem, ...]:
    with pytest.raises(InputError) as info:
        load_model(path, scenarios)
    assert info.value.problems, "an InputError must name at least one problem"
    return info.value.problems


def only_problem(path: Path, scenarios: Path | None = None) -> Problem:
    found = problems_of(path, scenarios)
    assert len(found) == 1, "\n".join(str(p) for p in found)
    return found[0]


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` and its SHA-256 (new or changed files show up)."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def squash(text: str) -> str:
    """Text without whitespace: the CLI wraps long lines wherever it likes."""
    return "".join(text.split())


def to_workbook(folder: Path, out: Path) -> Path:
    """One sheet per table from the CSVs, numbers stored as numbers, as Excel would hold them."""
    book = openpyxl.Workbook()
    book.remove(book.active)
    for name in TABLES:
        sheet = book.create_sheet(name)
        for r in read_rows(folder, name):
            sheet.append([_excel_value(v) for v in r])
    book.save(out)
    shutil.copy(folder / "scenarios.yaml", out.parent / "scenarios.yaml")
    return out


def _excel_value(text: str) -> object:
    if text == "":
        return None
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() else number


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def example_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_example(tmp_path_factory.mktemp("example") / "model")


@pytest.fixture(scope="session")
def small_dir(tmp_path_factory: pytest.TempPathFactory, example_dir: Path) -> Path:
    """The example cut to three boroughs (same offences, services, pathway and scenarios)."""
    folder = tmp_path_factory.mktemp("small") / "model"
    shutil.copytree(example_dir, folder)
    for table in ("areas", "crime", "staffing"):

        def keep(rows: Rows) -> Rows:
            i = rows[0].index("area_code")
            return [rows[0], *(r for r in rows[1:] if r[i] in KEEP_AREAS)]

        edit(folder, table, keep)
    # the directory lists areas by code: rebuild it for the boroughs kept
    header, rows = example_directory_rows(list(KEEP_AREAS))
    write_rows(folder, "directory", [header, *[[str(c) for c in r] for r in rows]])
    return folder


@pytest.fixture
def model(tmp_path: Path, small_dir: Path) -> Path:
    """A fresh, valid copy of the small model for a test to break."""
    return Path(shutil.copytree(small_dir, tmp_path / "model"))


@pytest.fixture(scope="session")
def small_model(small_dir: Path) -> Model:
    return load_model(small_dir)


def assert_problem(
    p: Problem,
    *,
    file: Path,
    row: int | None,
    column: str | None,
    value: str | None,
    message: str,
    fix: str,
) -> None:
    assert Path(p.file) == file, p
    assert (p.sheet, p.cell) == (None, None), p  # CSV files have no sheets or cells
    assert p.row == row, p
    assert p.column == column, p
    assert p.value == value, p
    assert message in p.message, p
    assert fix in p.fix, p
    text = str(p)
    assert str(file) in text
    assert message in text
    assert f"Fix: {p.fix}" in text
    if row is not None and p.cell is None:
        assert f"row {row}" in text
    if column is not None:
        assert f"column {column}" in text
    if value is not None:
        assert repr(value) in text


# ---------------------------------------------------------------- valid models


def test_example_loads(example_dir: Path) -> None:
    m = load_model(example_dir)
    assert len(m.area_codes) == 32
    assert m.offence_codes == ("RAPE", "OSO", "DA")
    assert m.services.codes == ("ISVA", "COUNSELLING", "ESS", "CYP_ISVA", "BY_AND_FOR", "IDVA")
    assert [s.name for s in m.scenarios] == [
        "baseline",
        "reports-up-20pc",
        "opt-out-referral",
        "court-delays",
    ]
    assert m.history_end == HISTORY[1]
    assert m.crime_history.shape == (32, 3, 72)
    assert np.all(m.crime_history >= 0)
    assert m.crime_history.sum() > 0
    assert set(m.provenance) == {str(example_dir / f"{t}.csv") for t in ALL_TABLES} | {
        str(example_dir / "scenarios.yaml")
    }


def test_small_model_loads(small_dir: Path, small_model: Model) -> None:
    m = small_model
    assert m.area_codes == KEEP_AREAS
    assert m.crime_history.shape == (3, 3, 72)
    # the first crime row of the CSV is the first month of the first series
    assert m.crime_history[0, 0, 0] == float(cell(small_dir, "crime", 2, "count"))


def test_defaults_fill_blank_optional_cells(small_model: Model) -> None:
    pathway = small_model.pathway
    # the example gives no referral_share: the schema default 0.76 applies, with no interval
    assert np.all(pathway.referral_share.value == 0.76)
    assert np.all(np.isnan(pathway.referral_share.lo))
    # ISVA's duration interval is carried through
    dur = small_model.services.duration_weeks
    assert (dur.value[0], dur.lo[0], dur.hi[0]) == (78, 60, 104)


def test_no_scenarios_file_means_a_single_baseline(model: Path) -> None:
    (model / "scenarios.yaml").unlink()
    assert [s.name for s in load_model(model).scenarios] == ["baseline"]


def test_scenarios_path_can_be_given(model: Path, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere.yaml"
    other.write_text("scenarios:\n  - name: only-this\n", encoding="utf-8")
    assert [s.name for s in load_model(model, scenarios=other).scenarios] == ["only-this"]


# ---------------------------------------------------------------- cell checks


@pytest.mark.parametrize(
    ("table", "row", "column", "bad", "message", "fix"),
    [
        pytest.param(
            "areas",
            3,
            "adult_population",
            "lots",
            "is not a number",
            "a whole number of at least 0",
            id="not-a-number",
        ),
        pytest.param(
            "services",
            2,
            "cost_per_fte",
            "about 40k",
            "is not a number",
            "a number of at least 0",
            id="not-a-number-float",
        ),
        pytest.param(
            "crime", 5, "count", "nan", "is not a finite number", "a whole number", id="not-finite"
        ),
        pytest.param(
            "services",
            2,
            "duration_weeks",
            "600",
            "is out of range",
            "a number from 0 to 520",
            id="out-of-range-above",
        ),
        pytest.param(
            "crime",
            4,
            "count",
            "-3",
            "is out of range",
            "a whole number of at least 0",
            id="out-of-range-below",
        ),
        pytest.param(
            "need_mix",
            2,
            "share",
            "1.5",
            "is out of range",
            "a number between 0 and 1",
            id="share-above-1",
        ),
        pytest.param(
            "pathway",
            3,
            "priority_share",
            "-0.1",
            "is out of range",
            "a number between 0 and 1",
            id="share-below-0",
        ),
        pytest.param(
            "need_mix",
            3,
            "share",
            "25%",
            "is not a number",
            "write 35% as 0.35",
            id="share-as-percent",
        ),
        pytest.param(
            "crime", 7, "count", "3.5", "is not a whole number", "a whole number", id="not-whole"
        ),
        pytest.param(
            "staffing",
            2,
            "waiting_start",
            "2.5",
            "is not a whole number",
            "a whole number",
            id="not-whole-optional",
        ),
        pytest.param(
            "areas",
            2,
            "area_code",
            "E0900002",
            "is not a GSS code",
            "a 9-character GSS code",
            id="gss-too-short",
        ),
        pytest.param(
            "staffing",
            4,
            "area_code",
            "Barnet",
            "is not a GSS code",
            "a 9-character GSS code",
            id="gss-a-name",
        ),
        pytest.param(
            "areas",
            4,
            "area_code",
            "E09٠٠٠٠٠4",
            "is not a GSS code",
            "a 9-character GSS code",
            id="gss-arabic-indic-digits",
        ),
        pytest.param("crime", 3, "month", "2019-13", "is not a month", "YYYY-MM", id="month-13"),
        pytest.param(
            "crime", 3, "month", "May 2019", "is not a month", "YYYY-MM", id="month-words"
        ),
        pytest.param(
            "crime", 3, "month", "٢٠١٩-٠٥", "is not a month", "YYYY-MM", id="month-arabic-digits"
        ),
        pytest.param(
            "services",
            3,
            "mode",
            "queued",
            "is not an allowed value",
            "one of queue, stretch",
            id="enum-mode",
        ),
        pytest.param(
            "pathway",
            2,
            "referral_model",
            "opt in",
            "is not an allowed value",
            "one of opt-in, opt-out",
            id="enum-referral-model",
        ),
        pytest.param(
            "offences",
            2,
            "offence",
            "RAPE OFFENCES",
            "is not a valid code",
            "no spaces",
            id="code-with-space",
        ),
    ],
)
def test_bad_cell(
    model: Path, table: str, row: int, column: str, bad: str, message: str, fix: str
) -> None:
    set_cell(model, table, row, column, bad)
    p = only_problem(model)
    assert_problem(
        p, file=model / f"{table}.csv", row=row, column=column, value=bad, message=message, fix=fix
    )
    assert p.sheet is None
    assert p.cell is None


def test_every_bad_cell_in_a_column_is_reported(model: Path) -> None:
    for row in (2, 5, 9):
        set_cell(model, "crime", row, "count", "x")
    found = problems_of(model)
    assert [(p.row, p.column, p.value) for p in found] == [(r, "count", "x") for r in (2, 5, 9)]


@pytest.mark.parametrize(
    ("column", "text", "parsed"),
    [
        ("month", "2024-03-01", "2024-03"),  # a date typed into Excel
        ("month", "202403", "2024-03"),  # the Met's layout
        ("area_code", "e09000002", "E09000002"),
        ("count", "1,234", 1234.0),
        ("count", "12.0", 12.0),
    ],
)
def test_accepted_spellings(column: str, text: str, parsed: object) -> None:
    row = {"area_code": "E09000002", "offence": "RAPE", "month": "2024-01", "count": "3"}
    row[column] = text
    raw = RawTable("crime", "crime.csv", None, tuple(row), (tuple(row.values()),))
    frame, problems = parse_table(raw)
    assert problems == []
    assert frame[column].iat[0] == parsed


CRIME_HEADER = ("area_code", "offence", "month", "count")
CELL_TEXT = st.one_of(
    st.text(max_size=12),
    st.from_regex(r"[EWSNKe][0-9٠-٩]{8}", fullmatch=True),
    st.from_regex(r"[0-9٠-٩]{4}-?[0-9٠-٩]{2}(-[0-9]{2})?", fullmatch=True),
    st.from_regex(r"-?[0-9,]{1,7}(\.[0-9]{0,2})?(e[0-9])?", fullmatch=True),
).map(str.strip)  # the readers strip every cell


@settings(max_examples=150, deadline=None)
@given(column=st.sampled_from(CRIME_HEADER), text=CELL_TEXT)
def test_any_cell_text_is_parsed_or_reported_at_that_cell(column: str, text: str) -> None:
    row = dict(zip(CRIME_HEADER, ("E09000002", "RAPE", "2024-01", "3"), strict=True))
    row[column] = text
    raw = RawTable("crime", "crime.csv", None, CRIME_HEADER, (tuple(row.values()),))
    frame, problems = parse_table(raw)  # never raises
    if problems:
        assert [(p.row, p.column, p.value) for p in problems] == [(2, column, text)]
        return
    value: Any = frame[column].to_list()[0]
    if column == "area_code":
        assert re.fullmatch(r"[EWSNK][0-9]{8}", value)
    elif column == "offence":
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", value)
    elif column == "month":
        assert re.fullmatch(r"(19[0-9][1-9]|19[1-9]0|2[01][0-9]{2})-(0[1-9]|1[0-2])", value)
    else:
        assert value >= 0
        assert float(value).is_integer()


def test_enum_and_money_spellings(model: Path) -> None:
    set_cell(model, "services", 2, "mode", "Queue")
    set_cell(model, "services", 2, "cost_per_fte", "£41,500")
    m = load_model(model)
    assert m.services.cost_per_fte.value[0] == 41500
    assert not m.services.stretch[0]


def test_required_cell_empty(model: Path) -> None:
    set_cell(model, "staffing", 3, "fte", "")
    p = only_problem(model)
    assert_problem(
        p,
        file=model / "staffing.csv",
        row=3,
        column="fte",
        value="",
        message="is empty but required",
        fix="enter a number of at least 0",
    )


def test_optional_cell_empty_uses_default(model: Path) -> None:
    set_cell(model, "services", 2, "cost_per_fte", "")
    assert load_model(model).services.cost_per_fte.value[0] == 40000  # the schema default


# ---------------------------------------------------------------- header checks


def test_required_column_missing(model: Path) -> None:
    drop_column(model, "crime", "count")
    p = only_problem(model)
    assert_problem(
        p,
        file=model / "crime.csv",
        row=1,
        column="count",
        value=None,
        message="is missing the required column 'count'",
        fix="add a column 'count'",
    )


def test_unknown_column_with_did_you_mean(model: Path) -> None:
    edit(
        model,
        "services",
        lambda rows: rows[0].__setitem__(rows[0].index("drop_out_per_month"), "drop_out_per_mnth"),
    )
    p = only_problem(model)
    assert_problem(
        p,
        file=model / "services.csv",
        row=1,
        column="drop_out_per_mnth",
        value="drop_out_per_mnth",
        message="is not a column needsled knows",
        fix="did you mean 'drop_out_per_month'?",
    )
    assert "known columns: service, service_name" in p.fix


def test_misspelt_required_column_is_unknown_and_missing(model: Path) -> None:
    edit(model, "areas", lambda rows: rows[0].__setitem__(2, "adult_populaton"))
    found = problems_of(model)
    assert sorted(p.message for p in found) == [
        "is missing the required column 'adult_population'",
        "is not a column needsled knows",
    ]
    assert any("did you mean 'adult_population'?" in p.fix for p in found)


def test_note_columns_are_allowed(model: Path) -> None:
    add_column(model, "services", "notes", "checked with the provider")
    add_column(model, "crime", "Comment")
    load_model(model)


def test_repeated_column(model: Path) -> None:
    add_column(model, "areas", "area_name", "again")
    p = only_problem(model)
    assert_problem(
        p,
        file=model / "areas.csv",
        row=1,
        column="area_name",
        value="area_name",
        message="is a repeated column name",
        fix="keep one column",
    )


@pytest.mark.parametrize(
    "name", ["date_of_birth", "Date of birth", "DOB", "postcode", "victim_id", "crime_ref"]
)
def test_personal_data_column_refused(model: Path, name: str) -> None:
    add_column(model, "crime", name, "x")
    p = only_problem(model)  # refused as personal data, not also reported as unknown
    assert_problem(
        p,
        file=model / "crime.csv",
        row=1,
        column=name,
        value=name,
        message="describes individual people",
        fix="give counts",
    )


# ---------------------------------------------------------------- intervals


@pytest.mark.parametrize("end", ["lo", "hi"])
def test_interval_with_one_end_only(model: Path, end: str) -> None:
    set_cell(model, "services", 2, f"duration_weeks_{end}", "")
    p = only_problem(model)
    assert_problem(
        p,
        file=model / "services.csv",
        row=2,
        column=f"duration_weeks_{end}",
        value="",
        message="has only one end of an 80% interval",
        fix="give both duration_weeks_lo and duration_weeks_hi, or neither",
    )


def test_interval_column_without_its_partner(model: Path) -> None:
    add_column(model, "services", "cost_per_fte_lo", "30000")
    found = problems_of(model)
    assert [(p.row, p.column) for p in found] == [(r, "cost_per_fte_hi") for r in range(2, 8)]
    assert all("only one end" in p.message for p in found)


@pytest.mark.parametrize(
    ("lo", "hi", "column", "value"),
    [
        ("80", "104", "duration_weeks_lo", "80"),  # low end above the value (78)
        ("60", "70", "duration_weeks_hi", "70"),  # high end below the value
        ("110", "100", "duration_weeks_lo", "110"),  # ends the wrong way round
    ],
)
def test_interval_not_containing_its_value(
    model: Path, lo: str, hi: str, column: str, value: str
) -> None:
    set_cell(model, "services", 2, "duration_weeks_lo", lo)
    set_cell(model, "services", 2, "duration_weeks_hi", hi)
    p = only_problem(model)
    assert_problem(
        p,
        file=model / "services.csv",
        row=2,
        column=column,
        value=value,
        message=f"has an 80% interval [{lo}, {hi}] that does not contain its value 78",
        fix="make duration_weeks_lo <= duration_weeks <= duration_weeks_hi",
    )


def test_interval_around_a_default(model: Path) -> None:
    # referral_share is blank (default 0.76); an interval not containing the default is wrong
    add_column(model, "pathway", "referral_share_lo", "0.8")
    add_column(model, "pathway", "referral_share_hi", "0.9")
    found = problems_of(model)
    assert [(p.row, p.column, p.value) for p in found] == [
        (r, "referral_share_lo", "0.8") for r in (2, 3, 4)
    ]


def test_interval_ends_are_range_checked(model: Path) -> None:
    add_column(model, "need_mix", "share_lo")
    add_column(model, "need_mix", "share_hi")
    set_cell(model, "need_mix", 2, "share_lo", "0.5")
    set_cell(model, "need_mix", 2, "share_hi", "1.2")
    p = only_problem(model)  # not also "only one end": the high end was given, wrongly
    assert_problem(
        p,
        file=model / "need_mix.csv",
        row=2,
        column="share_hi",
        value="1.2",
        message="is out of range",
        fix="between 0 and 1",
    )


# ---------------------------------------------------------------- keys and references


@pytest.mark.parametrize(
    ("table", "row", "column"),
    [
        ("areas", 3, "area_code"),
        ("offences", 2, "offence"),
        ("services", 4, "service"),
        ("crime", 10, "month"),
        ("pathway", 3, "area_code"),
        ("need_mix", 5, "service"),
        ("staffing", 6, "area_code"),
    ],
)
def test_duplicate_key(model: Path, table: str, row: int, column: str) -> None:
    copy = copy_row(model, table, row)
    p = only_problem(model)
    assert_problem(
        p,
        file=model / f"{table}.csv",
        row=copy,
        column=column,
        value=cell(model, table, row, column),
        message="repeats the key",
        fix="keep one row per",
    )
    assert "of an earlier row" in p.message


def test_duplicate_pathway_general_row_shows_blank_area(model: Path) -> None:
    copy = copy_row(model, "pathway", 2)
    p = only_problem(model)
    assert (p.row, p.column, p.value) == (copy, "area_code", "")
    assert "(offence=RAPE, area_code=)" in p.message
    assert p.fix == "keep one row per offence and area_code"


def test_duplicate_month_written_two_ways(model: Path) -> None:
    row = crime_row(model, KEEP_AREAS[0], "OSO", "2020-06")
    copy = append_row(
        model,
        "crime",
        {"area_code": KEEP_AREAS[0], "offence": "OSO", "month": "202006", "count": "4"},
    )
    p = only_problem(model)
    assert (p.row, p.column, p.value) == (copy, "month", "2020-06")
    assert row < copy


@pytest.mark.parametrize(
    ("table", "column", "target", "row", "bad", "hint"),
    [
        # row None: a new row is added (changing an existing pathway row would also leave an
        # offence without its all-areas row)
        ("crime", "area_code", "areas", 2, "E09000099", None),
        ("crime", "offence", "offences", 2, "RAPES", "RAPE"),
        ("pathway", "offence", "offences", None, "ROBBERY", None),
        ("pathway", "area_code", "areas", None, "E09000005", "E0900000"),
        ("need_mix", "offence", "offences", 2, "ROBBERY", None),
        ("need_mix", "service", "services", 2, "ISVAS", "ISVA"),
        ("staffing", "service", "services", 2, "IDVA2", "IDVA"),
        ("staffing", "area_code", "areas", 2, "E09000005", "E0900000"),
    ],
)
def test_unknown_code(
    model: Path, table: str, column: str, target: str, row: int | None, bad: str, hint: str | None
) -> None:
    if row is None:
        row = append_row(model, table, {"offence": "RAPE", column: bad})
    else:
        set_cell(model, table, row, column, bad)
    if table == "staffing":  # the directory would then list an area the service left
        (model / "directory.csv").unlink()
    p = only_problem(model)
    assert_problem(
        p,
        file=model / f"{table}.csv",
        row=row,
        column=column,
        value=bad,
        message=f"is not in the {target} table",
        fix=f"use a {column} listed in the {target} table",
    )
    if hint:
        assert f"did you mean '{hint}" in p.fix


def test_area_override_in_pathway_is_allowed(model: Path) -> None:
    append_row(
        model, "pathway", {"offence": "RAPE", "area_code": KEEP_AREAS[1], "report_share": "0.3"}
    )
    m = load_model(model)
    assert m.pathway.report_share.value[1, 0] == 0.3
    assert m.pathway.report_share.value[0, 0] == 0.16
    # rates left blank in the area's row keep the all-areas row's values, not the defaults
    np.testing.assert_array_equal(m.pathway.prevalence.value[:, 0], 0.004)
    assert m.pathway.prevalence.lo[1, 0] == 0.003
    assert m.pathway.consent_opt_in.value[1, 0] == 0.55


def test_a_decimal_comma_is_refused_not_misread(model: Path) -> None:
    append_row(
        model, "pathway", {"offence": "RAPE", "area_code": KEEP_AREAS[1], "report_share": "0,3"}
    )
    with pytest.raises(InputError) as err:
        load_model(model)
    (p,) = err.value.problems
    assert p.column == "report_share"
    assert p.value == "0,3"
    assert "comma" in p.message


# ---------------------------------------------------------------- service rules


@pytest.mark.parametrize(
    ("service", "column", "value", "kind"),
    [
        ("ISVA", "caseload_per_fte", "", "queue service on a caseload basis"),
        ("ISVA", "caseload_per_fte", "0", "queue service on a caseload basis"),
        ("IDVA", "caseload_per_fte", "", "stretch service on a caseload basis"),
        ("COUNSELLING", "sessions_per_fte_week", "", "queue service on a sessions basis"),
        ("COUNSELLING", "sessions_per_fte_week", "0", "queue service on a sessions basis"),
    ],
)
def test_capacity_figure_needed(
    model: Path, service: str, column: str, value: str, kind: str
) -> None:
    row = row_of(model, "services", "service", service)
    set_cell(model, "services", row, column, value)
    p = only_problem(model)
    assert_problem(
        p,
        file=model / "services.csv",
        row=row,
        column=column,
        value=value,
        message=f"needs {column} greater than 0 for a {kind}",
        fix=f"enter {column} greater than 0 for service {service}",
    )


def test_sessions_per_client_week_of_zero(model: Path) -> None:
    # places per FTE = sessions_per_fte_week / sessions_per_client_week: 0 would divide by 0
    add_column(model, "services", "sessions_per_client_week", "0")
    p = only_problem(model)  # only COUNSELLING is on a sessions basis
    assert_problem(
        p,
        file=model / "services.csv",
        row=row_of(model, "services", "service", "COUNSELLING"),
        column="sessions_per_client_week",
        value="0",
        message="needs sessions_per_client_week greater than 0",
        fix="for service COUNSELLING",
    )


def test_zero_duration(model: Path) -> None:
    # capacity a week = places / duration_weeks
    row = row_of(model, "services", "service", "ESS")
    for column, value in (
        ("duration_weeks", "0"),
        ("duration_weeks_lo", ""),
        ("duration_weeks_hi", ""),
    ):
        set_cell(model, "services", row, column, value)
    p = only_problem(model)
    assert_problem(
        p,
        file=model / "services.csv",
        row=row,
        column="duration_weeks",
        value="0",
        message="needs duration_weeks greater than 0",
        fix="for service ESS",
    )


def test_sessions_basis_needs_no_caseload(model: Path) -> None:
    # COUNSELLING (sessions basis) has no caseload_per_fte, and needs none
    assert (
        cell(
            model,
            "services",
            row_of(model, "services", "service", "COUNSELLING"),
            "caseload_per_fte",
        )
        == ""
    )
    load_model(model)


# ---------------------------------------------------------------- pathway and history


def test_missing_pathway_row_for_all_areas(model: Path) -> None:
    set_cell(model, "pathway", 3, "area_code", KEEP_AREAS[0])  # OSO now only for one borough
    p = only_problem(model)
    assert_problem(
        p,
        file=model / "pathway.csv",
        row=None,
        column=None,
        value=None,
        message="has no row for offence OSO with a blank area_code",
        fix="add a pathway row for OSO with area_code left blank",
    )


def test_crime_history_gap(model: Path) -> None:
    delete_row(model, "crime", crime_row(model, KEEP_AREAS[1], "DA", "2021-07"))
    p = only_problem(model)
    assert_problem(
        p,
        file=model / "crime.csv",
        row=None,
        column=None,
        value=None,
        message=f"is missing 1 month(s) for {KEEP_AREAS[1]} / DA: 2021-07",
        fix="every series must run without gaps to the last month, 2025-03",
    )


def test_crime_history_ending_early(model: Path) -> None:
    def drop(rows: Rows) -> Rows:
        return [r for r in rows if not (r[:2] == [KEEP_AREAS[2], "RAPE"] and r[2] >= "2025-01")]

    edit(model, "crime", drop)
    p = only_problem(model)
    assert p.message.endswith(
        f"is missing 3 month(s) for {KEEP_AREAS[2]} / RAPE: 2025-01, 2025-02, 2025-03"
    )


def test_crime_history_too_short(model: Path) -> None:
    def keep_last_year(rows: Rows) -> Rows:
        return [r for r in rows if r[:2] != [KEEP_AREAS[0], "OSO"] or r[2] >= "2024-04"]

    edit(model, "crime", keep_last_year)
    p = only_problem(model)
    assert_problem(
        p,
        file=model / "crime.csv",
        row=None,
        column=None,
        value=None,
        message=f"has 12 months of history for {KEEP_AREAS[0]} / OSO; forecasting "
        f"needs at least {MIN_HISTORY_MONTHS}",
        fix="add monthly counts up to 2025-03",
    )


def test_crime_history_missing_series(model: Path) -> None:
    edit(model, "crime", lambda rows: [r for r in rows if r[:2] != [KEEP_AREAS[1], "RAPE"]])
    p = only_problem(model)
    assert f"has 0 months of history for {KEEP_AREAS[1]} / RAPE" in p.message


def test_late_starting_series_trims_history_rather_than_inventing_zeros(model: Path) -> None:
    def start_late(rows: Rows) -> Rows:
        return [r for r in rows if r[:2] != [KEEP_AREAS[0], "RAPE"] or r[2] >= "2020-04"]

    edit(model, "crime", start_late)
    m = load_model(model)
    assert m.crime_history.shape == (3, 3, 60)  # 2020-04 .. 2025-03, the months all series have
    assert m.history_end == HISTORY[1]
    first = crime_row(model, KEEP_AREAS[0], "RAPE", "2020-04")
    assert m.crime_history[0, 0, 0] == float(cell(model, "crime", first, "count"))
    other = crime_row(model, KEEP_AREAS[1], "DA", "2020-04")
    assert m.crime_history[1, 2, 0] == float(cell(model, "crime", other, "count"))


# ---------------------------------------------------------------- files


@pytest.mark.parametrize("table", TABLES)
def test_missing_table_file(model: Path, table: str) -> None:
    (model / f"{table}.csv").unlink()
    p = only_problem(model)
    assert_problem(
        p,
        file=model,
        row=None,
        column=None,
        value=None,
        message=f"has no '{table}' table",
        fix=f"add the {table} table as a CSV file",
    )


def test_non_utf8_csv(model: Path) -> None:
    text = (model / "areas.csv").read_text(encoding="utf-8").replace("Barnet", "Barnét")
    (model / "areas.csv").write_bytes(text.encode("cp1252"))
    p = only_problem(model)  # not also "has no 'areas' table"
    assert_problem(
        p,
        file=model / "areas.csv",
        row=None,
        column=None,
        value=None,
        message="is not UTF-8 text",
        fix="save the file as 'CSV UTF-8'",
    )


def test_non_utf8_csv_does_not_hide_other_problems(model: Path) -> None:
    data = "offence,offence_name\nRAPE,Violé\n".encode("latin-1")
    (model / "offences.csv").write_bytes(data)
    set_cell(model, "staffing", 2, "fte", "none")
    found = problems_of(model)
    where = data.index("é".encode("latin-1"))
    assert [(Path(p.file).name, p.message) for p in found] == [
        ("offences.csv", f"is not UTF-8 text (invalid continuation byte at byte {where})"),
        ("staffing.csv", "is not a number"),
    ]


def test_utf8_with_bom_and_multiline_text(model: Path) -> None:
    rows = read_rows(model, "areas")
    rows[2][1] = "Barnet\n(north)"  # a line break inside a quoted cell is one cell
    with (model / "areas.csv").open("w", newline="", encoding="utf-8-sig") as fh:
        csv.writer(fh).writerows(rows)
    set_cell(model, "areas", 4, "adult_population", "many")
    p = only_problem(model)
    assert (p.row, p.column, p.value) == (4, "adult_population", "many")
    (model / "areas.csv").write_text(
        (model / "areas.csv").read_text(encoding="utf-8-sig").replace("many", "1000"),
        encoding="utf-8-sig",
    )
    assert load_model(model).area_names[1] == "Barnet\n(north)"


def test_empty_table(model: Path) -> None:
    write_rows(model, "offences", [["offence", "offence_name"]])
    p = only_problem(model)
    assert_problem(
        p,
        file=model / "offences.csv",
        row=None,
        column=None,
        value=None,
        message="has no rows",
        fix="fill in the offences table",
    )


def test_empty_file(model: Path) -> None:
    (model / "need_mix.csv").write_text("", encoding="utf-8")
    found = problems_of(model)
    assert [(p.row, p.column, p.message) for p in found] == [
        (1, "offence", "is missing the required column 'offence'"),
        (1, "service", "is missing the required column 'service'"),
        (1, "share", "is missing the required column 'share'"),
        (None, None, "has no rows"),
    ]


def test_empty_pathway_needs_a_row_per_offence(model: Path) -> None:
    write_rows(model, "pathway", [["offence", "area_code"]])
    found = problems_of(model)
    assert [p.message for p in found] == [
        f"has no row for offence {o} with a blank area_code" for o in ("RAPE", "OSO", "DA")
    ]


def test_trailing_blank_rows_and_columns_are_ignored(model: Path) -> None:
    # Excel leaves empty cells right of the table and empty rows below it
    edit(model, "offences", lambda rows: [*([*r, ""] for r in rows), [], ["", "", ""]])
    assert load_model(model).offence_codes == ("RAPE", "OSO", "DA")


def test_blank_row_in_the_middle_is_reported_where_it_is(model: Path) -> None:
    edit(model, "offences", lambda rows: [*rows[:2], [], *rows[2:]])
    found = problems_of(model)
    assert {(p.row, p.message) for p in found} == {(3, "is empty but required")}


@pytest.mark.parametrize("kind", ["text-file", "missing"])
def test_neither_folder_nor_workbook(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "model.txt"
    if kind == "text-file":
        path.write_text("area_code\n", encoding="utf-8")
    p = only_problem(path)
    assert_problem(
        p,
        file=path,
        row=None,
        column=None,
        value=None,
        message="is neither a model folder nor an Excel workbook",
        fix="give the folder holding areas.csv",
    )


def test_corrupt_workbook(tmp_path: Path) -> None:
    path = tmp_path / "model.xlsx"
    path.write_bytes(b"this is not a zip file")
    p = only_problem(path)
    assert p.file == str(path)
    assert p.message.startswith("cannot be read as a workbook")
    assert "save it again as .xlsx" in p.fix


# ---------------------------------------------------------------- scenarios YAML

LEVER = "scenarios:\n  - name: baseline\n  - name: more\n    levers:\n      - "


@pytest.mark.parametrize(
    ("text", "column", "value", "message"),
    [
        pytest.param(
            LEVER + "lever: polise_reports\n        change: 0.2\n",
            "scenarios[1: more].levers[0].lever",
            "polise_reports",
            "Input should be 'police_reports'",
            id="unknown-lever",
        ),
        pytest.param(
            LEVER + "lever: police_reports\n        change: 0.2\n        profile: jump\n",
            "scenarios[1: more].levers[0].profile",
            "jump",
            "Input should be 'step' or 'ramp'",
            id="bad-profile",
        ),
        pytest.param(
            LEVER + "lever: police_reports\n        change: 0.2\n        interval: [0.3, 0.4]\n",
            "scenarios[1: more].levers[0]",
            None,
            "interval [0.3, 0.4] must contain the lever's change (0.2)",
            id="interval-not-containing-change",
        ),
        pytest.param(
            LEVER + "lever: referral_model\n        offences: [RAPE]\n",
            "scenarios[1: more].levers[0]",
            None,
            "referral_model needs value: opt-in or value: opt-out",
            id="referral-model-without-value",
        ),
        pytest.param(
            LEVER + "lever: police_reports\n        change: 0.2\n        chnage: 0.3\n",
            "scenarios[1: more].levers[0].chnage",
            "0.3",
            "Extra inputs are not permitted",
            id="unknown-lever-key",
        ),
        pytest.param(
            "horizon: 60\n",
            "horizon",
            "60",
            "Extra inputs are not permitted",
            id="unknown-top-level-key",
        ),
        pytest.param(
            "scenarios:\n  - name: a\n  - name: b\n  - name: a\n",
            None,
            None,
            "scenario names must be unique; repeated: a",
            id="duplicate-names",
        ),
        pytest.param(
            LEVER + "lever: police_reports\n        change: 20\n",
            "scenarios[1: more].levers[0].change",
            "20",
            "less than or equal to 10",
            id="change-too-big",
        ),
        pytest.param(
            "start: 2025-13\n",
            "start",
            "2025-13",
            "start must be a month written YYYY-MM",
            id="bad-start-month",
        ),
        pytest.param(
            "horizon_months: 0\n",
            "horizon_months",
            "0",
            "greater than or equal to 1",
            id="horizon-zero",
        ),
    ],
)
def test_yaml_schema_error(
    model: Path, text: str, column: str | None, value: str | None, message: str
) -> None:
    (model / "scenarios.yaml").write_text(text, encoding="utf-8")
    p = only_problem(model)
    assert_problem(
        p,
        file=model / "scenarios.yaml",
        row=None,
        column=column,
        value=value,
        message=message,
        fix="see the scenarios reference in docs/reference.md",
    )


def test_yaml_single_bad_scenario_gives_one_problem(model: Path) -> None:
    # not also "Tuple should have at least 1 item" for the scenario list
    text = "scenarios:\n  - name: only\n    levers:\n      - lever: referral_model\n"
    (model / "scenarios.yaml").write_text(text, encoding="utf-8")
    p = only_problem(model)
    assert p.column == "scenarios[0: only].levers[0]"
    assert "referral_model needs value" in p.message


def test_yaml_empty_scenario_list(model: Path) -> None:
    (model / "scenarios.yaml").write_text("scenarios: []\n", encoding="utf-8")
    p = only_problem(model)
    assert p.column == "scenarios"
    assert "at least 1 item" in p.message


@pytest.mark.parametrize(
    ("kind", "code"),
    [("areas", "E09000099"), ("offences", "ROBBERY"), ("services", "ISVAA")],
)
def test_yaml_lever_names_unknown_code(model: Path, kind: str, code: str) -> None:
    text = LEVER + f"lever: police_reports\n        change: 0.2\n        {kind}: [{code}]\n"
    (model / "scenarios.yaml").write_text(text, encoding="utf-8")
    p = only_problem(model)
    assert_problem(
        p,
        file=model / "scenarios.yaml",
        row=None,
        column=f"scenarios[1: more].levers[0].{kind}",
        value=code,
        message=f"is not in the {kind} table",
        fix="use one of: ",
    )
    known = {"areas": KEEP_AREAS[0], "offences": "RAPE", "services": "ISVA"}[kind]
    assert known in p.fix


def test_yaml_start_leaving_a_gap(model: Path) -> None:
    (model / "scenarios.yaml").write_text("start: 2025-06\n", encoding="utf-8")
    p = only_problem(model)
    assert_problem(
        p,
        file=model / "scenarios.yaml",
        row=None,
        column="start",
        value="2025-06",
        message="leaves a gap after the last month of history (2025-03)",
        fix="set start to 2025-04 or earlier",
    )


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("horizon_months: 60\nscenarios:\n  - name: a\n   description: x\n", 4),
        ("scenarios:\n  - name: a\n    levers: [\n  - name: b\n", 4),
        ('horizon_months: 60\nscenarios:\n  - name: "a\n', 4),
    ],
)
def test_yaml_syntax_error_names_the_line(model: Path, text: str, line: int) -> None:
    (model / "scenarios.yaml").write_text(text, encoding="utf-8")
    p = only_problem(model)
    assert_problem(
        p,
        file=model / "scenarios.yaml",
        row=None,
        column=None,
        value=None,
        message=f"is not valid YAML at line {line}",
        fix="check the indentation and colons near that line",
    )


def test_yaml_not_a_mapping(model: Path) -> None:
    (model / "scenarios.yaml").write_text("- baseline\n- more\n", encoding="utf-8")
    p = only_problem(model)
    assert p.message == "does not hold a mapping of settings"
    assert "scenarios:" in p.fix


def test_yaml_not_utf8(model: Path) -> None:
    (model / "scenarios.yaml").write_bytes(
        "# Café scenarios\nhorizon_months: 60\n".encode("cp1252")
    )
    p = only_problem(model)
    assert_problem(
        p,
        file=model / "scenarios.yaml",
        row=None,
        column=None,
        value=None,
        message="is not UTF-8 text",
        fix="UTF-8",
    )


def test_scenarios_path_that_does_not_exist(model: Path) -> None:
    missing = model / "other.yaml"
    p = only_problem(model, scenarios=missing)
    assert_problem(
        p,
        file=missing,
        row=None,
        column=None,
        value=None,
        message="does not exist",
        fix="give the path of an existing scenarios",
    )


# ---------------------------------------------------------------- all at once, read-only


def test_problems_in_different_files_are_all_reported(model: Path) -> None:
    set_cell(model, "areas", 2, "adult_population", "-5")
    set_cell(model, "services", 5, "mode", "waitlist")
    set_cell(model, "crime", 100, "month", "2021/05")
    add_column(model, "staffing", "client_name", "")
    (model / "offences.csv").unlink()
    (model / "scenarios.yaml").write_text(LEVER + "lever: fte\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_model(model)
    found = info.value.problems
    assert len(found) == 6
    assert sorted(Path(p.file).name for p in found) == sorted(
        ["areas.csv", "services.csv", "crime.csv", "staffing.csv", "model", "scenarios.yaml"]
    )
    report = str(info.value)
    assert report.startswith(f"6 problems in {model}; nothing was loaded:")
    assert all(str(p) in report for p in found)


def test_table_and_yaml_problems_are_reported_together(model: Path) -> None:
    # a cross-table problem (history gap) is not hidden by a problem in the scenarios file
    delete_row(model, "crime", crime_row(model, KEEP_AREAS[0], "RAPE", "2022-02"))
    (model / "scenarios.yaml").write_text("horizon_months: 0\n", encoding="utf-8")
    found = problems_of(model)
    assert [(Path(p.file).name, p.column) for p in found] == [
        ("crime.csv", None),
        ("scenarios.yaml", "horizon_months"),
    ]
    assert "2022-02" in found[0].message


def test_cross_table_checks_wait_for_clean_tables(model: Path) -> None:
    # with a cell problem the tables cannot be compared: only the cell problem is reported
    set_cell(model, "staffing", 2, "service", "NOPE")
    set_cell(model, "staffing", 3, "fte", "x")
    found = problems_of(model)
    assert [(p.row, p.column) for p in found] == [(3, "fte")]


def test_files_are_never_modified(model: Path, tmp_path: Path) -> None:
    """Every file is hashed before and after a passing and a failing load (folder and
    workbook): nothing is changed, and nothing is added (no caches, no lock files)."""
    (tmp_path / "book").mkdir()
    book = to_workbook(model, tmp_path / "book" / "model.xlsx")
    before, before_book = snapshot(model), snapshot(book.parent)
    load_model(model)
    load_model(book)
    assert snapshot(model) == before
    assert snapshot(book.parent) == before_book

    set_cell(model, "services", 3, "mode", "queued")
    (model / "scenarios.yaml").write_text(LEVER + "lever: nope\n", encoding="utf-8")
    book.unlink()
    to_workbook(model, book)
    broken, broken_book = snapshot(model), snapshot(book.parent)
    assert len(problems_of(model)) == 2
    assert len(problems_of(book)) == 2
    assert snapshot(model) == broken
    assert snapshot(book.parent) == broken_book


# ---------------------------------------------------------------- Excel workbook


@pytest.fixture
def book_of(tmp_path: Path) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        out = tmp_path / "book"
        out.mkdir(exist_ok=True)
        return to_workbook(folder, out / "model.xlsx")

    return make


def test_without_a_title_the_model_is_named_after_its_folder_or_workbook(
    model: Path, book_of: Callable[[Path], Path]
) -> None:
    text = (model / "scenarios.yaml").read_text(encoding="utf-8")
    assert "title: London example (synthetic)\n" in text
    (model / "scenarios.yaml").write_text(
        text.replace("title: London example (synthetic)\n", ""), encoding="utf-8"
    )
    assert load_model(model).name == "model"
    book = book_of(model)
    assert load_model(book).name == book.stem


def test_workbook_loads_the_same_model(
    model: Path, small_model: Model, book_of: Callable[[Path], Path]
) -> None:
    m = load_model(book_of(model))
    ref = small_model
    assert m.name == ref.name == "London example (synthetic)"  # the scenarios file's title
    assert m.area_codes == ref.area_codes
    assert m.history_end == ref.history_end
    np.testing.assert_array_equal(m.crime_history, ref.crime_history)
    np.testing.assert_array_equal(m.staffing.fte, ref.staffing.fte)
    np.testing.assert_array_equal(m.need_mix.value, ref.need_mix.value)
    np.testing.assert_array_equal(m.pathway.prevalence.lo, ref.pathway.prevalence.lo)
    np.testing.assert_array_equal(m.services.places_per_fte, ref.services.places_per_fte)
    assert [s.name for s in m.scenarios] == [s.name for s in ref.scenarios]


def test_workbook_alone_in_a_folder_is_found(model: Path, book_of: Callable[[Path], Path]) -> None:
    book = book_of(model)
    assert load_model(book.parent).area_codes == KEEP_AREAS


def test_workbook_months_typed_as_dates(model: Path, book_of: Callable[[Path], Path]) -> None:
    book = book_of(model)
    wb = openpyxl.load_workbook(book)
    ws = wb["crime"]
    for r in range(2, ws.max_row + 1):
        year, month = (int(x) for x in str(ws.cell(r, 3).value).split("-"))
        ws.cell(r, 3).value = dt.datetime(year, month, 1)
    wb.save(book)
    assert load_model(book).history_end == HISTORY[1]


@pytest.mark.parametrize(
    ("table", "row", "column", "bad", "message", "excel_cell"),
    [
        ("services", 3, "caseload_per_fte", "lots", "is not a number", "F3"),
        ("areas", 4, "adult_population", "-1", "is out of range", "C4"),
        ("crime", 20, "month", "2020-14", "is not a month", "C20"),
        ("need_mix", 6, "share", "2", "is out of range", "C6"),
        ("pathway", 2, "referral_model", "auto", "is not an allowed value", "P2"),
        ("staffing", 8, "fte", "", "is empty but required", "C8"),
    ],
)
def test_workbook_problem_names_sheet_and_cell(
    model: Path,
    book_of: Callable[[Path], Path],
    table: str,
    row: int,
    column: str,
    bad: str,
    message: str,
    excel_cell: str,
) -> None:
    set_cell(model, table, row, column, bad)
    book = book_of(model)
    p = only_problem(book)
    assert (p.file, p.sheet, p.row, p.column, p.cell) == (str(book), table, row, column, excel_cell)
    assert p.value == bad
    assert message in p.message
    assert f"{book}, sheet {table}, cell {excel_cell}, column {column}:" in str(p)


def test_workbook_cross_table_problems_name_the_cell(
    model: Path, book_of: Callable[[Path], Path]
) -> None:
    set_cell(model, "staffing", 5, "service", "NOPE")
    copy = copy_row(model, "areas", 2)
    book = book_of(model)
    found = problems_of(book)
    assert [(p.sheet, p.cell, p.value) for p in found] == [
        ("areas", f"A{copy}", KEEP_AREAS[0]),
        ("staffing", "A5", "NOPE"),
    ]


def test_workbook_header_problems_name_the_cell(
    model: Path, book_of: Callable[[Path], Path]
) -> None:
    add_column(model, "areas", "postcode", "N1")  # becomes column D
    add_column(model, "offences", "ofence_group", "x")  # becomes column C
    found = problems_of(book_of(model))
    assert [(p.sheet, p.cell, p.column) for p in found] == [
        ("areas", "D1", "postcode"),
        ("offences", "C1", "ofence_group"),
    ]
    assert "did you mean 'offence'?" in found[1].fix


def test_workbook_missing_sheet(model: Path, book_of: Callable[[Path], Path]) -> None:
    book = book_of(model)
    wb = openpyxl.load_workbook(book)
    del wb["need_mix"]
    wb.create_sheet("Notes")  # sheets that are not tables are ignored
    wb.save(book)
    p = only_problem(book)
    assert_problem(
        p,
        file=book,
        row=None,
        column=None,
        value=None,
        message="has no 'need_mix' table",
        fix="add the need_mix table as a sheet",
    )


def test_workbook_sheet_names_are_matched_loosely(
    model: Path, book_of: Callable[[Path], Path]
) -> None:
    book = book_of(model)
    wb = openpyxl.load_workbook(book)
    wb["areas"].title = "Areas "
    wb["Areas "].cell(2, 3).value = "x"
    wb.save(book)
    p = only_problem(book)
    assert (p.sheet, p.cell) == ("Areas ", "C2")


# ---------------------------------------------------------------- command line


def test_cli_validate_ok(model: Path) -> None:
    result = CliRunner().invoke(app, ["validate", str(model)])
    assert result.exit_code == 0, result.output
    assert squash(result.output).startswith(squash(f"OK: {model} has 3 areas, 3 offences"))
    assert squash("crime history to 2025-03") in squash(result.output)


def test_cli_validate_lists_every_problem(model: Path) -> None:
    set_cell(model, "areas", 3, "adult_population", "lots")
    set_cell(model, "services", 2, "mode", "queued")
    result = CliRunner().invoke(app, ["validate", str(model)])
    assert result.exit_code == 1
    text = squash(result.output)
    assert squash(f"2 problem(s) in {model}; nothing was loaded or run:") in text
    for p in problems_of(model):
        assert squash(str(p)) in text
    assert "Traceback" not in result.output


def test_cli_validate_workbook(model: Path, book_of: Callable[[Path], Path]) -> None:
    set_cell(model, "services", 3, "caseload_per_fte", "lots")
    result = CliRunner().invoke(app, ["validate", str(book_of(model))])
    assert result.exit_code == 1
    assert squash("sheet services, cell F3, column caseload_per_fte: value 'lots'") in squash(
        result.output
    )


def test_cli_validate_missing_path(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["validate", str(tmp_path / "nowhere")])
    assert result.exit_code == 1
    assert squash(f"{tmp_path / 'nowhere'} does not exist") in squash(result.output)
