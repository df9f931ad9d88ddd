"""The blank input workbook: generated from the schema, checked cell by cell in Excel, and a
filled-in copy loads as a model."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import openpyxl
import pytest
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.worksheet import Worksheet
from typer.testing import CliRunner

from needsled.cli import app
from needsled.errors import InputError, column_letter
from needsled.example import write_example
from needsled.io.load import load_model
from needsled.io.template import INSTRUCTIONS, write_template
from needsled.schema import ALL_TABLES, OPTIONAL_TABLES, TABLES, Column, tables

EXCEL_LAST_ROW = 1_048_576


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_template(tmp_path_factory.mktemp("template") / "model.xlsx")


@pytest.fixture(scope="module")
def book(template: Path) -> openpyxl.Workbook:
    return openpyxl.load_workbook(template)


def validations_by_column(ws: Worksheet) -> dict[str, DataValidation]:
    """Each column letter's data validation (failing if one column has two)."""
    out: dict[str, DataValidation] = {}
    for dv in ws.data_validations.dataValidation:
        for rng in dv.sqref.ranges:
            assert rng.min_col == rng.max_col, f"{rng} spans several columns"
            letter = column_letter(rng.min_col - 1)
            assert letter not in out, f"column {letter} has two validations"
            out[letter] = dv
    return out


def schema_column(table: str, name: str) -> Column:
    return tables()[table].column(name.removesuffix("_lo").removesuffix("_hi"))


def test_returns_path_and_accepts_str(tmp_path: Path) -> None:
    out = write_template(str(tmp_path / "t.xlsx"))
    assert out == tmp_path / "t.xlsx"
    assert out.is_file()


def test_sheets(book: openpyxl.Workbook) -> None:
    assert book.sheetnames == ["instructions", "columns", *ALL_TABLES]
    lines = [c.value for c in book["instructions"]["A"]]
    assert lines[0] == "How to fill in this workbook"
    assert [line or "" for line in lines] == INSTRUCTIONS
    assert any("needsled validate model.xlsx" in (line or "") for line in lines)
    assert any("dates of birth" in (line or "") for line in lines)


@pytest.mark.parametrize("table", TABLES)
def test_table_sheet_header(book: openpyxl.Workbook, table: str) -> None:
    ws = book[table]
    header = [c.value for c in ws[1]]
    assert header == list(tables()[table].all_names())
    assert ws.max_row == 1  # blank below the header
    assert ws.freeze_panes == "A2"
    for j, name in enumerate(header, start=1):
        note = ws.cell(1, j).comment
        assert note is not None, name
        col = schema_column(table, name)
        if name == col.name:
            assert note.text.startswith(col.description), name
            assert f"Allowed: {col.rule()}." in note.text
            assert ("Required." in note.text) == col.required
        else:
            assert note.text.startswith(f"Optional 80% interval for {col.name}")


def test_interval_columns_follow_their_column(book: openpyxl.Workbook) -> None:
    header = [c.value for c in book["services"][1]]
    i = header.index("duration_weeks")
    assert header[i + 1 : i + 3] == ["duration_weeks_lo", "duration_weeks_hi"]
    assert "target_wait_weeks_lo" not in header  # no interval allowed for it
    pathway = [c.value for c in book["pathway"][1]]
    for rate in ("report_share", "referral_share", "prevalence", "priority_share"):
        assert {f"{rate}_lo", f"{rate}_hi"} <= set(pathway)


@pytest.mark.parametrize("table", TABLES)
def test_validation_per_column(book: openpyxl.Workbook, table: str) -> None:
    ws = book[table]
    found = validations_by_column(ws)
    for j, name in enumerate(tables()[table].all_names()):
        letter = column_letter(j)
        col = schema_column(table, name)
        dv = found.get(letter)
        if col.allowed:
            assert dv is not None, name
            assert dv.type == "list"
            assert dv.formula1 == '"' + ",".join(col.allowed) + '"'
        elif col.type == "share":
            assert dv is not None, name
            assert (dv.type, dv.operator or "between") == ("decimal", "between")
            assert (float(dv.formula1), float(dv.formula2)) == (0.0, 1.0)
        elif col.numeric:
            assert dv is not None, name
            assert dv.type == ("whole" if col.type == "int" else "decimal")
            assert float(dv.formula1) == col.min
            if col.max is not None:
                assert float(dv.formula2) == col.max
        else:  # text, codes, GSS codes and months are checked by needsled validate
            assert dv is None, name
            continue
        # every row of the sheet, not just the first few thousand (crime tables are long)
        assert str(dv.sqref) == f"{letter}2:{letter}{EXCEL_LAST_ROW}"
    checked = [n for n in tables()[table].all_names() if _checked(schema_column(table, n))]
    assert sorted(found) == sorted(
        column_letter(tables()[table].all_names().index(n)) for n in checked
    )


def _checked(col: Column) -> bool:
    return col.numeric or bool(col.allowed)


def test_enum_columns_have_dropdowns(book: openpyxl.Workbook) -> None:
    services = validations_by_column(book["services"])
    header = [c.value for c in book["services"][1]]
    mode = services[column_letter(header.index("mode"))]
    assert mode.formula1 == '"queue,stretch"'
    pathway = validations_by_column(book["pathway"])
    header = [c.value for c in book["pathway"][1]]
    assert pathway[column_letter(header.index("referral_model"))].formula1 == '"opt-in,opt-out"'
    share = pathway[column_letter(header.index("report_share_hi"))]
    assert (share.type, float(share.formula1), float(share.formula2)) == ("decimal", 0.0, 1.0)


def test_columns_reference_sheet(book: openpyxl.Workbook) -> None:
    rows = list(book["columns"].iter_rows(values_only=True))
    assert rows[0] == (
        "table",
        "column",
        "required",
        "default",
        "allowed",
        "unit",
        "80% interval",
        "meaning",
    )
    expected = [
        (
            c.table + (" (optional)" if c.table in OPTIONAL_TABLES else ""),
            c.name,
            "yes" if c.required else "no",
            c.rule(),
            c.description,
        )
        for t in tables().values()
        for c in t.columns
    ]
    assert [(r[0], r[1], r[2], r[4], r[7]) for r in rows[1:]] == expected


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "mine.xlsx"
    path.write_bytes(b"a workbook of mine")
    with pytest.raises(FileExistsError, match="already exists"):
        write_template(path)
    assert path.read_bytes() == b"a workbook of mine"
    fresh = write_template(tmp_path / "new.xlsx")
    before = fresh.read_bytes()
    with pytest.raises(FileExistsError):
        write_template(fresh)
    assert fresh.read_bytes() == before


def test_cli_template(tmp_path: Path) -> None:
    path = tmp_path / "model.xlsx"
    first = CliRunner().invoke(app, ["template", str(path)])
    assert first.exit_code == 0, first.output
    assert path.is_file()
    again = CliRunner().invoke(app, ["template", str(path)])
    assert again.exit_code == 1
    assert "already exists" in again.output


def test_blank_template_reports_every_empty_table(template: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copy(template, tmp_path / "blank.xlsx"))
    with pytest.raises(InputError) as info:
        load_model(copy)
    found = info.value.problems
    # pathway may be empty in itself; it is checked against offences once they are filled in
    assert [(p.sheet, p.message) for p in found] == [
        (t, "has no rows") for t in TABLES if t != "pathway"
    ]
    assert all(p.file == str(copy) for p in found)


def _number_or_text(text: str) -> object:
    if text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if value.is_integer() else value


def test_filled_in_template_loads(template: Path, tmp_path: Path) -> None:
    example = write_example(tmp_path / "example")
    (tmp_path / "filled").mkdir()
    filled = Path(shutil.copy(template, tmp_path / "filled" / "model.xlsx"))
    wb = openpyxl.load_workbook(filled)
    for table in TABLES:
        ws = wb[table]
        header = [c.value for c in ws[1]]
        with (example / f"{table}.csv").open(newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
        where = [header.index(name) + 1 for name in rows[0]]  # the template has every column
        for r, row in enumerate(rows[1:], start=2):
            for j, text in zip(where, row, strict=True):
                ws.cell(r, j).value = _number_or_text(text)
    wb.save(filled)
    shutil.copy(example / "scenarios.yaml", filled.parent / "scenarios.yaml")

    got = load_model(filled)
    want = load_model(example)
    assert got.name == "London example (synthetic)"  # the title in scenarios.yaml
    assert got.area_codes == want.area_codes
    assert got.offence_codes == want.offence_codes
    assert got.services.codes == want.services.codes
    assert got.history_end == want.history_end == "2025-03"
    np.testing.assert_array_equal(got.crime_history, want.crime_history)  # all 6,912 rows
    np.testing.assert_array_equal(got.adult_population, want.adult_population)
    for rate in ("report_share", "prevalence", "referral_share", "consent_opt_in"):
        a, b = getattr(got.pathway, rate), getattr(want.pathway, rate)
        np.testing.assert_array_equal(a.value, b.value)
        np.testing.assert_array_equal(a.lo, b.lo)
    np.testing.assert_array_equal(got.need_mix.value, want.need_mix.value)
    np.testing.assert_array_equal(got.services.places_per_fte, want.services.places_per_fte)
    np.testing.assert_array_equal(got.staffing.fte, want.staffing.fte)
    assert [s.name for s in got.scenarios] == [s.name for s in want.scenarios]
    assert set(got.provenance) == {str(filled), str(filled.parent / "scenarios.yaml")}


def test_example_workbook_loads_like_the_example_folder(tmp_path: Path) -> None:
    (tmp_path / "book").mkdir()
    book = write_template(tmp_path / "book" / "model.xlsx", example=True)
    assert (tmp_path / "book" / "scenarios.yaml").is_file()
    from_book = load_model(book)
    from_csv = load_model(write_example(tmp_path / "csv"))
    np.testing.assert_array_equal(from_book.crime_history, from_csv.crime_history)
    np.testing.assert_array_equal(from_book.staffing.fte, from_csv.staffing.fte)
    np.testing.assert_array_equal(from_book.need_mix.value, from_csv.need_mix.value)
    assert from_book.services.codes == from_csv.services.codes
    assert [s.name for s in from_book.scenarios] == [s.name for s in from_csv.scenarios]
    with pytest.raises(FileExistsError):  # never overwrites the scenarios file beside it
        write_template(tmp_path / "book" / "other.xlsx", example=True)
