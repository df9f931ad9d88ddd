"""Quarterly provider returns: the Excel template, filling it in as a person would, importing
it (every problem at once, nothing stored unless all is clean) and the store."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from pathlib import Path

import openpyxl
import pandas as pd
import pyarrow.parquet as pq
import pytest
import typer
from typer.testing import CliRunner

from _returns_quarter import BASE, fill, rows_by_key
from needsled.cli_returns import returns_app
from needsled.errors import InputError, Problem
from needsled.example import write_example
from needsled.io.load import load_model
from needsled.model import Model
from needsled.returns import store as store_module
from needsled.returns.checks import record_level_reason
from needsled.returns.format import COLUMNS, GUIDANCE, MEASURES, categories_of
from needsled.returns.layout import SECTIONS
from needsled.returns.read import ImportedFile, read_return, read_returns
from needsled.returns.store import LOG_FILE, STORE_FILE, add_to_store, read_log, read_store
from needsled.returns.template import write_return_template

TODAY = dt.date(2025, 6, 1)
QUARTER = "2025-Q1"
DIRECTORY = (
    "service,provider,provider_name,areas\n"
    'ISVA,RCC,Rape Crisis North,"E09000002 E09000003"\n'
    "COUNSELLING,RCC,Rape Crisis North,E09000004\n"
    "IDVA,DAS,Domestic Abuse Support,E09000002\n"
)
RCC_SHEETS = ["ISVA E09000002", "ISVA E09000003", "COUNSELLING E09000004"]

OFFENCES = ("RAPE", "OSO", "DA")


def filled(k: int) -> dict[tuple[str, str], float]:
    """The return for sheet ``k``: every count times k + 1 (the rules still hold)."""
    return {
        (m, c): v * (k + 1)
        for m, values in BASE.items()
        for c, v in zip(categories_of(m, OFFENCES), values, strict=True)
    }


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = write_example(tmp_path_factory.mktemp("returns") / "model")
    (folder / "directory.csv").write_text(DIRECTORY, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def model(model_dir: Path) -> Model:
    return load_model(model_dir)


@pytest.fixture(scope="module")
def template(model: Model, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_return_template(
        model, "RCC", QUARTER, tmp_path_factory.mktemp("template") / "rcc.xlsx"
    )


def edit_cell(path: Path, sheet: str, cell: str, value: object) -> None:
    """Change a locked cell (someone unprotecting the sheet first)."""
    book = openpyxl.load_workbook(path)
    ws = book[sheet]
    ws.protection.sheet = False
    ws[cell].value = value
    book.save(path)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def without_directory(folder: Path) -> Path:
    """The example model with no directory table (it may ship one)."""
    model = write_example(folder)
    (model / "directory.csv").unlink(missing_ok=True)
    return model


def cli(*args: str) -> tuple[int, str]:
    app = typer.Typer()
    app.add_typer(returns_app)
    result = CliRunner().invoke(app, ["returns", *args])
    return result.exit_code, result.output


def find(problems: tuple[Problem, ...], sheet: str | None, cell: str | None) -> Problem:
    hits = [p for p in problems if p.sheet == sheet and p.cell == cell]
    assert len(hits) == 1, f"expected one problem at {sheet} {cell}, got {hits}"
    return hits[0]


# --------------------------------------------------------------------------------- template


def test_every_measure_is_on_the_sheet_once() -> None:
    listed = [m for _, measures in SECTIONS for m in measures]
    assert sorted(listed) == sorted(MEASURES)
    assert set(GUIDANCE) == set(MEASURES)


def test_template_sheets_identity_and_instructions(template: Path) -> None:
    book = openpyxl.load_workbook(template)
    assert book.sheetnames == ["instructions", *RCC_SHEETS]
    text = " ".join(
        str(c.value) for row in book["instructions"].iter_rows() for c in row if c.value
    )
    assert "January to March 2025" in text
    assert "COUNTS ONLY" in text
    assert "dates of birth" in text
    for m in MEASURES.values():  # every measure explained with its label
        assert m.label in text
        assert GUIDANCE[m.name] in text
    ws = book["ISVA E09000003"]
    assert [ws[f"C{r}"].value for r in (4, 5, 6, 7)] == ["RCC", "ISVA", "E09000003", QUARTER]
    assert ws["D6"].value == "Barnet"
    codes = ws.column_dimensions["E"]  # columns E:F, the hidden codes
    assert codes.hidden
    assert (codes.min, codes.max) == (5, 6)


def test_template_protection_and_validation(template: Path) -> None:
    book = openpyxl.load_workbook(template)
    for name in ["instructions", *RCC_SHEETS]:
        assert book[name].protection.sheet, f"{name} is not protected"
    ws = book["ISVA E09000002"]
    where = rows_by_key(ws)
    rules: dict[str, tuple[str, str | None, str | None]] = {}
    for dv in ws.data_validations.dataValidation:
        for cell in str(dv.sqref).split():
            rules[cell] = (dv.type, dv.operator, dv.formula1)
    for (measure, _), row in where.items():
        entry = ws.cell(row, 3)
        assert entry.protection.locked is False, f"{entry.coordinate} should be typed into"
        kind = "decimal" if MEASURES[measure].kind == "fte" else "whole"
        assert rules[entry.coordinate] == (kind, "greaterThanOrEqual", "0")
    unlocked = {
        c.coordinate for row in ws.iter_rows(max_col=8) for c in row if c.protection.locked is False
    }
    assert unlocked == {ws.cell(r, 3).coordinate for r in where.values()}
    for cell in ("C4", "C5", "C6", "C7"):  # provider, service, area, quarter
        assert ws[cell].protection.locked is not False


def test_template_refuses_unknown_provider_and_model_without_directory(
    model_dir: Path, tmp_path: Path
) -> None:
    code, output = cli(
        "template", str(model_dir), "--provider", "NOPE", "--quarter", QUARTER,
        "--out", str(tmp_path / "x.xlsx"),
    )  # fmt: skip
    assert code == 1
    assert "no provider with this code" in output
    assert "DAS, RCC" in output
    bare = without_directory(tmp_path / "bare")
    code, output = cli(
        "template", str(bare), "--provider", "RCC", "--quarter", QUARTER,
        "--out", str(tmp_path / "y.xlsx"),
    )  # fmt: skip
    assert code == 1
    assert "no directory table" in output
    assert "directory.csv" in output
    assert not (tmp_path / "x.xlsx").exists()
    assert not (tmp_path / "y.xlsx").exists()


def test_template_never_overwrites(model: Model, template: Path) -> None:
    before = sha(template)
    with pytest.raises(FileExistsError):
        write_return_template(model, "RCC", QUARTER, template)
    assert sha(template) == before


# ------------------------------------------------------------------------------ round trip


def test_round_trip_and_store(
    model: Model, model_dir: Path, template: Path, tmp_path: Path
) -> None:
    typed = {name: filled(k) for k, name in enumerate(RCC_SHEETS)}
    path = fill(template, tmp_path / "rcc-2025q1.xlsx", typed)
    frame = read_return(path, model, today=TODAY)
    assert list(frame.columns) == list(COLUMNS)
    expected = pd.DataFrame(
        [
            ("RCC", name.split()[0], name.split()[1], QUARTER, m, c, float(v))
            for name, values in typed.items()
            for (m, c), v in values.items()
        ],
        columns=list(COLUMNS),
    )
    key = ["service", "area", "measure", "category"]
    got = frame.sort_values(key).reset_index(drop=True)
    want = expected.sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
    # COUNSELLING E09000004 (sheet 3), ISVA E09000002 (sheet 1), ISVA E09000003 (sheet 2)
    assert got.loc[got["measure"] == "fte_in_post", "value"].tolist() == [7.5, 2.5, 5.0]
    # blank optional breakdowns are simply not there
    assert "outcome_assessed_age" not in set(got["measure"])

    before = sha(path)
    store = tmp_path / "store"
    code, output = cli("import", str(model_dir), str(path), "--store", str(store))
    assert code == 0, output
    assert "Imported 3 return(s)" in output
    assert "replaced" not in output
    assert sha(path) == before, "the user's file was modified"
    pd.testing.assert_frame_equal(
        read_store(store).sort_values(key).reset_index(drop=True), want, check_dtype=False
    )
    log = read_log(store)
    assert log["file"].tolist() == [path.name]
    assert log["sha256"].tolist() == [before]
    assert log.loc[0, "providers"] == "RCC"
    assert log.loc[0, "quarters"] == QUARTER
    assert sorted(p.name for p in store.iterdir()) == sorted([STORE_FILE, LOG_FILE])

    # the same provider, service, area and quarter again replaces the earlier return whole
    corrected = typed | {"ISVA E09000002": {**filled(0), ("fte_in_post", ""): 3.0}}
    path3 = fill(template, tmp_path / "rcc-2025q1-v2.xlsx", corrected)
    code, output = cli("import", str(model_dir), str(path3), "--store", str(store))
    assert code == 0, output
    assert "replaced the earlier import of RCC, ISVA, E09000002, 2025-Q1" in output
    stored = read_store(store)
    assert len(stored) == len(expected)  # replaced, not added
    fte = stored[(stored["area"] == "E09000002") & (stored["measure"] == "fte_in_post")]
    assert fte["value"].tolist() == [3.0]
    assert read_log(store)["replaced"].tolist() == ["0", "3"]


# ------------------------------------------------------------------------------ bad returns


def test_bad_values_and_breakdowns_all_at_once(
    model: Model, model_dir: Path, template: Path, tmp_path: Path
) -> None:
    good = {name: filled(k) for k, name in enumerate(RCC_SHEETS)}
    bad = {k: dict(v) for k, v in good.items()}
    s1, s2 = RCC_SHEETS[0], RCC_SHEETS[1]
    bad[s1][("contacted", "")] = "ten"  # not a number
    bad[s1][("declined", "")] = -2  # negative
    bad[s1][("starts", "")] = 8.5  # decimal in a count
    bad[s1][("referrals_offence", "DA")] = 3  # 6+4+3 = 13, referrals total 12
    bad[s1][("outcome_improved", "drugs and alcohol")] = 4  # need there is 1
    bad[s2][("waiting_band", "over 52 weeks")] = None  # a breakdown half filled in
    bad[s2][("users_sex", "male")] = dt.datetime(2025, 1, 2)  # Excel made a date of it
    path = fill(template, tmp_path / "bad.xlsx", bad)
    before = sha(path)
    where = rows_by_key(openpyxl.load_workbook(path)[s1])
    where2 = rows_by_key(openpyxl.load_workbook(path)[s2])

    with pytest.raises(InputError) as err:
        read_returns([path], model, today=TODAY)
    problems = err.value.problems
    assert len(problems) == 7, err.value.report()
    p = find(problems, s1, f"C{where['contacted', '']}")
    assert p.value == "ten"
    assert "not a number" in p.message
    assert "whole number" in p.fix
    p = find(problems, s1, f"C{where['declined', '']}")
    assert p.value == "-2"
    assert "negative" in p.message
    p = find(problems, s1, f"C{where['starts', '']}")
    assert p.value == "8.5"
    assert "decimal" in p.message
    assert "whole number" in p.fix
    span = f"C{where['referrals_offence', 'RAPE']}:C{where['referrals_offence', 'DA']}"
    p = find(problems, s1, span)
    assert "adds up to 13" in p.message
    assert "is 12" in p.message
    assert "referrals_offence" in p.message
    assert "agree" in p.fix
    p = find(problems, s1, f"C{where['outcome_improved', 'drugs and alcohol']}")
    assert "more than" in p.message
    assert "outcome_need, drugs and alcohol" in p.message
    assert p.value == "4"
    assert "at most" in p.fix
    span = f"C{where2['waiting_band', '0-4 weeks']}:C{where2['waiting_band', 'over 52 weeks']}"
    p = find(problems, s2, span)
    assert "4 of its 5 categories" in p.message
    assert "leave the whole breakdown blank" in p.fix
    p = find(problems, s2, f"C{where2['users_sex', 'male']}")
    assert "date" in p.message
    assert all(p.file == str(path) for p in problems)

    store = tmp_path / "store"
    code, output = cli("import", str(model_dir), str(path), "--store", str(store))
    assert code == 1
    assert "7 problem(s)" in output
    assert "nothing was stored" in output
    assert not store.exists()
    assert sha(path) == before


def test_identity_duplicates_and_other_files_all_at_once(
    model: Model, model_dir: Path, template: Path, tmp_path: Path
) -> None:
    good = {name: filled(k) for k, name in enumerate(RCC_SHEETS)}
    clean = fill(template, tmp_path / "clean.xlsx", good)
    edited = fill(template, tmp_path / "edited.xlsx", good)
    edit_cell(edited, RCC_SHEETS[0], "C4", "NOBODY")  # unknown provider
    edit_cell(edited, RCC_SHEETS[1], "C6", "E09000030")  # an area RCC does not cover
    edit_cell(edited, RCC_SHEETS[2], "C7", "2025-5")  # malformed quarter
    future = fill(template, tmp_path / "future.xlsx", good)
    for name in RCC_SHEETS:
        edit_cell(future, name, "C7", "2025-Q3")  # not ended on TODAY
    edit_cell(future, RCC_SHEETS[0], "C5", "NOSUCH")  # unknown service
    people = tmp_path / "clients.xlsx"
    book = openpyxl.Workbook()
    ws = book.active
    ws.append(["Name", "Date of birth", "Postcode", "NHS number", "Referral"])
    ws.append(["(synthetic)", dt.date(1990, 1, 1), "ZZ1 1ZZ", "0000000000", "police"])
    book.save(people)
    person_csv = tmp_path / "cases.csv"
    person_csv.write_text("client id,date of referral,offence\n1,2025-01-03,RAPE\n")

    paths = [clean, edited, future, clean, people, person_csv]  # clean twice: duplicates
    with pytest.raises(InputError) as err:
        read_returns(paths, model, today=TODAY)
    problems = err.value.problems
    report = err.value.report()

    p = find(problems, RCC_SHEETS[0], "C4")
    assert p.file == str(edited)
    assert "no provider 'NOBODY'" in p.message
    p = find(problems, RCC_SHEETS[1], "C6")
    assert "does not list RCC as delivering ISVA in E09000030" in p.message
    assert "directory table" in p.fix
    edited_q = [p for p in problems if p.file == str(edited) and p.cell == "C7"]
    assert len(edited_q) == 1
    assert "not a calendar quarter" in edited_q[0].message
    assert "YYYY-Qn" in edited_q[0].fix
    future_q = [p for p in problems if p.file == str(future) and p.cell == "C7"]
    assert len(future_q) == 3
    assert all("has not ended yet" in p.message for p in future_q)
    assert any(p.file == str(future) and p.cell == "C5" and "NOSUCH" in p.message for p in problems)
    dupes = [p for p in problems if "a second return" in p.message]
    assert len(dupes) == 3
    assert all(str(clean) in p.message for p in dupes)
    record = [p for p in problems if "record-level" in p.message]
    assert {p.file for p in record} == {str(people), str(person_csv)}
    assert "Name" in report
    assert "Date of birth" in report
    assert "counts only" in report

    store = tmp_path / "store"
    code, output = cli("import", str(model_dir), *map(str, paths), "--store", str(store))
    assert code == 1
    assert "nothing was stored" in output
    assert not store.exists()


def test_a_workbook_that_is_not_a_return(model: Model, tmp_path: Path) -> None:
    other = tmp_path / "budget.xlsx"
    book = openpyxl.Workbook()
    book.active.append(["service", "budget"])
    book.active.append(["ISVA", 100000])
    book.save(other)
    with pytest.raises(InputError) as err:
        read_returns([other, tmp_path / "missing.xlsx"], model, today=TODAY)
    assert len(err.value.problems) == 2
    assert "not a needsled return" in err.value.problems[0].message
    assert "returns template" in err.value.problems[0].fix
    assert "does not exist" in err.value.problems[1].message


def test_model_without_directory_cannot_take_returns(template: Path, tmp_path: Path) -> None:
    bare = load_model(without_directory(tmp_path / "bare"))
    with pytest.raises(InputError, match="no directory table"):
        read_returns([template], bare, today=TODAY)


def test_record_level_detection() -> None:
    dated = [["ref", "when", "offence"]] + [
        [f"R{i}", dt.date(2025, 1, 1 + i), "RAPE"] for i in range(25)
    ]
    reason = record_level_reason(dated)
    assert reason is not None
    assert "one row per person" in reason
    # a table of counts by sex is not about individual people
    counts = [["sex", "people"], ["female", 12], ["male", 4]]
    assert record_level_reason(counts) is None
    assert record_level_reason([["Surname", "people"]]) is not None


def test_store_writes_are_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = tmp_path / "store"
    first = pd.DataFrame(
        [("RCC", "ISVA", "E09000002", QUARTER, "starts", "", 8.0)], columns=list(COLUMNS)
    )
    add_to_store(store, first)
    before = (store / STORE_FILE).read_bytes()

    def broken(_table: object, path: Path, **_: object) -> None:
        Path(path).write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", broken)
    second = first.assign(quarter="2025-Q2")
    with pytest.raises(OSError, match="disk full"):
        add_to_store(store, second)
    assert (store / STORE_FILE).read_bytes() == before
    assert sorted(p.name for p in store.iterdir()) == sorted([STORE_FILE, LOG_FILE])
    monkeypatch.undo()
    pd.testing.assert_frame_equal(read_store(store), first, check_dtype=False)


def test_a_crash_between_the_table_and_the_log_loses_no_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The table is written first, holding the whole log; the log's CSV copy last. A crash
    between the two leaves imports.csv one import behind: the log is read from the table, and
    the next import writes imports.csv whole again."""
    store = tmp_path / "store"
    row = ("RCC", "ISVA", "E09000002", QUARTER, "starts", "", 8.0)
    first = pd.DataFrame([row], columns=list(COLUMNS))
    files = [ImportedFile("q1.xlsx", "aa11", ("RCC",), (QUARTER,), (tuple(row[:4]),))]
    add_to_store(store, first, files)
    real = store_module._write_atomic

    def crash_at_the_log(path: Path, write: Callable[[Path], object]) -> None:
        if path.name == LOG_FILE:
            raise OSError("power cut")
        real(path, write)

    monkeypatch.setattr(store_module, "_write_atomic", crash_at_the_log)
    second = first.assign(quarter="2025-Q2")
    files2 = [ImportedFile("q2.xlsx", "bb22", ("RCC",), ("2025-Q2",), (tuple(second.iloc[0, :4]),))]
    with pytest.raises(OSError, match="power cut"):
        add_to_store(store, second, files2)
    monkeypatch.undo()
    assert len(read_store(store)) == 2  # the second import's returns are in
    on_disk = pd.read_csv(store / LOG_FILE, dtype=str, keep_default_na=False)
    assert on_disk["file"].tolist() == ["q1.xlsx"]  # the CSV copy is behind...
    assert read_log(store)["file"].tolist() == ["q1.xlsx", "q2.xlsx"]  # ...the log is not
    third = first.assign(quarter="2025-Q3")
    files3 = [ImportedFile("q3.xlsx", "cc33", ("RCC",), ("2025-Q3",), (tuple(third.iloc[0, :4]),))]
    add_to_store(store, third, files3)
    on_disk = pd.read_csv(store / LOG_FILE, dtype=str, keep_default_na=False)
    assert on_disk["file"].tolist() == ["q1.xlsx", "q2.xlsx", "q3.xlsx"]
    assert read_log(store)["sha256"].tolist() == ["aa11", "bb22", "cc33"]


def test_a_store_written_before_the_table_held_its_log_is_read_from_imports_csv(
    tmp_path: Path,
) -> None:
    store = tmp_path / "store"
    store.mkdir()
    pd.DataFrame([("RCC", "ISVA", "E09000002", QUARTER, "starts", "", 8.0)],
                 columns=list(COLUMNS)).to_parquet(store / STORE_FILE, index=False)  # fmt: skip
    (store / LOG_FILE).write_text("file,sha256\nold.xlsx,ab12\n", encoding="utf-8")
    assert read_log(store)["file"].tolist() == ["old.xlsx"]


def test_more_malformed_returns_all_at_once(
    model: Model, model_dir: Path, template: Path, tmp_path: Path
) -> None:
    """Every other way a return can be wrong, each with its file, sheet, cell, value and fix,
    all in one error; an existing store is left exactly as it was."""
    good = {name: filled(k) for k, name in enumerate(RCC_SHEETS)}
    s1, s2, s3 = RCC_SHEETS
    bad = {k: dict(v) for k, v in good.items()}
    bad[s1][("fte_in_post", "")] = "2,5"  # a decimal comma: not 25
    bad[s1][("rereferred", "")] = 13  # more than the 12 referrals
    for c in ("police", "self", "other agency"):  # a breakdown given, its total blank
        bad[s2][("referrals", c)] = None
    bad[s2][("rereferred", "")] = None
    for c in categories_of("waiting_band", OFFENCES):
        bad[s2][("waiting_band", c)] = 1
    bad[s2][("waiting_end", "")] = None
    bad[s3] = {}  # an empty sheet
    path = fill(template, tmp_path / "more.xlsx", bad)
    where1 = rows_by_key(openpyxl.load_workbook(path)[s1])
    where2 = rows_by_key(openpyxl.load_workbook(path)[s2])
    # someone unprotects a sheet and types a note beside the counts
    edit_cell(path, s1, "H20", "called back")
    before = sha(path)

    store = tmp_path / "store"
    earlier = fill(template, tmp_path / "earlier.xlsx", good)
    add_to_store(store, read_return(earlier, model, today=TODAY))
    stored = {p.name: p.read_bytes() for p in store.iterdir()}

    with pytest.raises(InputError) as err:
        read_returns([path], model, today=TODAY)
    problems = err.value.problems
    assert len(problems) == 6, err.value.report()
    p = find(problems, s1, f"C{where1['fte_in_post', '']}")
    assert p.value == "2,5"
    assert "2.5, not 2,5" in p.message
    assert "decimals allowed" in p.fix
    p = find(problems, s1, f"C{where1['rereferred', '']}")
    assert p.value == "13"
    assert "more than" in p.message
    assert "referrals" in p.message
    assert ": 12" in p.message
    assert "at most" in p.fix
    p = find(problems, s2, f"C{where2['waiting_end', '']}")
    assert "waiting_band" in p.message
    assert "is blank" in p.message
    assert "fill in Waiting list at quarter end" in p.fix
    span = f"C{where2['referrals', 'police']}:C{where2['referrals', 'other agency']}"
    p = find(problems, s2, span)  # contacted, referrals_offence are given; referrals are not
    assert "referrals_offence" in p.message
    assert "is blank" in p.message
    p = find(problems, s3, None)
    assert "empty" in p.message
    assert "zeros" in p.fix
    p = find(problems, s1, None)
    assert "outside the return's cells (H20)" in p.message
    assert "called back" not in str(p)  # what was typed there is not repeated
    assert all(p.file == str(path) for p in problems)

    code, output = cli("import", str(model_dir), str(path), "--store", str(store))
    assert code == 1
    assert "6 problem(s)" in output
    assert "nothing was stored" in output
    assert {p.name: p.read_bytes() for p in store.iterdir()} == stored
    assert sha(path) == before


def test_rows_changed_and_identity_blank(model: Model, template: Path, tmp_path: Path) -> None:
    good = {name: filled(k) for k, name in enumerate(RCC_SHEETS)}
    path = fill(template, tmp_path / "rows.xlsx", good)
    book = openpyxl.load_workbook(path)
    ws = book[RCC_SHEETS[0]]
    ws.protection.sheet = False
    ws.delete_rows(rows_by_key(ws)["declined", ""])  # a count's row deleted
    ws2 = book[RCC_SHEETS[1]]
    ws2.protection.sheet = False
    ws2["C4"].value = None  # the provider rubbed out
    book.save(path)
    with pytest.raises(InputError) as err:
        read_returns([path], model, today=TODAY)
    problems = err.value.problems
    p = find(problems, RCC_SHEETS[0], None)
    assert "rows are not those of a needsled return" in p.message
    assert "missing rows: declined" in p.message
    assert "do not insert, delete or move rows" in p.fix
    p = find(problems, RCC_SHEETS[1], "C4")
    assert "the provider is blank" in p.message
    assert "returns template" in p.fix
    assert len(problems) == 2, err.value.report()


def test_text_numbers(model: Model, template: Path, tmp_path: Path) -> None:
    """Numbers typed as text are read as the number they are, and only then."""
    good = {name: filled(k) for k, name in enumerate(RCC_SHEETS)}
    typed = {k: dict(v) for k, v in good.items()}
    typed[RCC_SHEETS[0]][("open_end", "")] = " 1,230 "  # the thousands separator
    typed[RCC_SHEETS[0]][("fte_in_post", "")] = "2.5"
    typed[RCC_SHEETS[0]][("closures", "completed")] = "1_0"  # not a number, though float() is
    path = fill(template, tmp_path / "text.xlsx", typed)
    with pytest.raises(InputError) as err:
        read_returns([path], model, today=TODAY)
    assert len(err.value.problems) == 1, err.value.report()
    assert err.value.problems[0].value == "1_0"
    typed[RCC_SHEETS[0]][("closures", "completed")] = 5
    path = fill(template, tmp_path / "text2.xlsx", typed)
    frame = read_return(path, model, today=TODAY)
    got = frame[frame["area"] == "E09000002"].set_index("measure")["value"]
    assert (got["open_end"], got["fte_in_post"]) == (1230.0, 2.5)


def test_a_text_file_that_is_not_record_level(model: Model, tmp_path: Path) -> None:
    counts = tmp_path / "counts.csv"
    counts.write_text("service,referrals\nISVA,12\n")
    with pytest.raises(InputError) as err:
        read_returns([counts], model, today=TODAY)
    (p,) = err.value.problems
    assert p.file == str(counts)
    assert "text file, not a needsled return" in p.message
    assert "returns template" in p.fix


def test_contacted_guidance_matches_the_calibration() -> None:
    """Calibration takes self- and agency referrals as contacted (docs/calibration.md): the
    return's instructions must say so."""
    text = GUIDANCE["contacted"]
    assert "self-" in text
    assert "other-agency" in text
    assert "as contacted" in text
