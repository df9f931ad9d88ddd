"""The directory of services: its checks, search, expected waits and the HSDS export.

The checks are exercised one broken cell at a time on the built-in example with its synthetic
directory; search on a hand-made directory whose order is worked out in each test; the expected
wait on hand-made returns solved by hand (Little's law); the export against the published HSDS
3.0 JSON schemas in ``../shared/data/standards/hsds`` (read through the ``shared_data``
fixture), made strict so that a field HSDS does not define fails too.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import json
import math
import re
import uuid
from collections.abc import Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pandas as pd
import pytest
from referencing import Registry, Resource
from typer.testing import CliRunner

from needsled.cli_directory import directory_app
from needsled.directory import (
    NO_RETURN,
    Directory,
    Entry,
    Wait,
    build_directory,
    check_directory,
    example_directory_rows,
    expected_waits,
    uk_phone,
    valid_email,
    valid_website,
)
from needsled.errors import InputError, Problem
from needsled.example import BOROUGHS, write_example
from needsled.io.directory_out import (
    HSDS_TABLES,
    hsds_tables,
    parse_opening_hours,
    write_hsds,
)
from needsled.io.load import load_model
from needsled.io.read import RawTable, read_tables
from needsled.io.validate import parse_table
from needsled.model import Model
from needsled.returns.format import COLUMNS

runner = CliRunner(env={"COLUMNS": "200"})  # wide enough that no table cell wraps
CODES = [c for c, _, _ in BOROUGHS]
HACKNEY, LAMBETH = "E09000012", "E09000022"
# 2025-Q1 has 90 days = 12.857 weeks: 45 starts is 3.5 a week, and 70 waiting / 3.5 = 20 weeks
Q1_STARTS, Q1_WAITING, Q1_WAIT_WEEKS = 45, 70, 20.0


# ---------------------------------------------------------------- helpers


def write_rows(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


def read_rows(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return [list(r) for r in csv.reader(fh)]


def example_directory(drop: tuple[str, ...] = ()) -> tuple[list[str], list[list[object]]]:
    header, rows = example_directory_rows(CODES)
    keep = [i for i, h in enumerate(header) if h not in drop]
    return [header[i] for i in keep], [[r[i] for i in keep] for r in rows]


def parsed(folder: Path) -> tuple[dict[str, pd.DataFrame], dict[str, RawTable]]:
    """Every table parsed; the only problems allowed are the ones the lead's fix removes."""
    raws, problems = read_tables(folder)
    frames = {}
    for name, raw in raws.items():
        frame, found = parse_table(raw)
        frames[name] = frame
        problems += found
    pending = [p for p in problems if "describes individual people" in p.message]
    assert all(p.column in {"phone", "email"} for p in pending), problems
    assert len(problems) == len(pending), problems
    return frames, raws


def plain_example(folder: Path) -> Path:
    """The built-in example without a directory table (whether or not it comes with one)."""
    write_example(folder)
    (folder / "directory.csv").unlink(missing_ok=True)
    return folder


def with_directory(model: Model, frame: pd.DataFrame) -> Model:
    """The model as load_model gives it once the directory table is loaded with it."""
    return dataclasses.replace(model, tables=MappingProxyType({"directory": frame}))


def returns_frame(rows: Sequence[tuple[Any, ...]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(COLUMNS))


def q1_return(provider: str = "RC-NORTH", service: str = "ISVA", area: str = HACKNEY) -> list[Any]:
    return [
        (provider, service, area, "2025-Q1", "starts", "", Q1_STARTS),
        (provider, service, area, "2025-Q1", "waiting_end", "", Q1_WAITING),
    ]


@pytest.fixture(scope="module")
def example_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built-in example with its synthetic directory (phone and email included)."""
    folder = write_example(tmp_path_factory.mktemp("example") / "model")
    write_rows(folder / "directory.csv", *example_directory())
    return folder


@pytest.fixture(scope="module")
def example_frames(example_dir: Path) -> tuple[dict[str, pd.DataFrame], dict[str, RawTable]]:
    return parsed(example_dir)


@pytest.fixture(scope="module")
def example_model(tmp_path_factory: pytest.TempPathFactory, example_frames: Any) -> Model:
    plain = plain_example(tmp_path_factory.mktemp("plain") / "model")
    return with_directory(load_model(plain), example_frames[0]["directory"])


@pytest.fixture
def model_dir(tmp_path: Path, example_dir: Path) -> Path:
    """A fresh copy of the example with its directory, for a test to break."""
    folder = tmp_path / "model"
    folder.mkdir()
    for f in example_dir.iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    return folder


def set_directory_cell(folder: Path, row: int, column: str, value: str) -> None:
    """Set one cell of directory.csv; ``row`` is the spreadsheet row (header = 1)."""
    rows = read_rows(folder / "directory.csv")
    rows[row - 1][rows[0].index(column)] = value
    write_rows(folder / "directory.csv", rows[0], rows[1:])


def directory_row(folder: Path, service: str, provider: str) -> int:
    rows = read_rows(folder / "directory.csv")
    return next(i + 1 for i, r in enumerate(rows) if r[:2] == [service, provider])


def only_problem(folder: Path) -> Problem:
    problems = check_directory(*parsed(folder))
    assert len(problems) == 1, [str(p) for p in problems]
    return problems[0]


# ---------------------------------------------------------------- the checks


def test_the_example_directory_passes_every_check(example_frames: Any) -> None:
    assert check_directory(*example_frames) == []


def test_a_model_without_a_directory_has_nothing_to_check(tmp_path: Path) -> None:
    assert check_directory(*parsed(plain_example(tmp_path / "m"))) == []


@pytest.mark.parametrize(
    ("column", "bad", "message", "fix"),
    [
        ("areas", "E0900012", "not a GSS area code", "write GSS codes such as E09000001"),
        ("areas", "E09000099", "not in the areas table", "did you mean"),
        ("offences", "RAPEE", "not in the offences table", "did you mean 'RAPE'?"),
        ("email", "referrals@example", "not an email address", "referrals@example.org"),
        ("email", "mailto:referrals@example.org", "not an email address", "remove 'mailto:'"),
        ("website", "www.example.org/isva", "not a web address", "https://www.example.org/isva"),
        ("website", "see our leaflet", "not a web address", "e.g. https://"),
        ("phone", "020 7946 000", "not a UK phone number", "020 7946 0000"),
        ("phone", "+1 212 555 0100", "not a UK phone number", "with its area code"),
    ],
)
def test_each_check_names_file_row_column_value_and_fix(
    model_dir: Path, column: str, bad: str, message: str, fix: str
) -> None:
    row = directory_row(model_dir, "ISVA", "RC-NORTH")
    cell = f"{HACKNEY} {bad}" if column == "areas" else bad
    set_directory_cell(model_dir, row, column, cell)
    p = only_problem(model_dir)
    assert p.file == str(model_dir / "directory.csv")
    assert (p.row, p.column, p.value) == (row, column, bad)
    assert message in p.message
    assert fix in p.fix


def test_contact_problems_say_the_contact_must_be_the_organisations(model_dir: Path) -> None:
    row = directory_row(model_dir, "ESS", "VS-LONDON")
    set_directory_cell(model_dir, row, "phone", "12345")
    set_directory_cell(model_dir, row, "email", "jo at example.org")
    problems = check_directory(*parsed(model_dir))
    assert {p.column for p in problems} == {"phone", "email"}
    assert all("public contact" in p.fix and "never a member of staff" in p.fix for p in problems)


def test_an_area_the_service_does_not_serve(model_dir: Path) -> None:
    rows = read_rows(model_dir / "staffing.csv")
    kept = [r for r in rows[1:] if r[:2] != ["ISVA", HACKNEY]]
    write_rows(model_dir / "staffing.csv", rows[0], kept)
    p = only_problem(model_dir)
    assert (p.row, p.column, p.value) == (
        directory_row(model_dir, "ISVA", "RC-NORTH"),
        "areas",
        HACKNEY,
    )
    assert "ISVA has no staffing row" in p.message
    assert f"add a staffing row for ISVA in {HACKNEY}" in p.fix


def test_a_blank_areas_cell_for_a_service_with_no_staffing(model_dir: Path) -> None:
    rows = read_rows(model_dir / "staffing.csv")
    write_rows(model_dir / "staffing.csv", rows[0], [r for r in rows[1:] if r[0] != "ESS"])
    p = only_problem(model_dir)
    assert (p.row, p.column, p.value) == (directory_row(model_dir, "ESS", "VS-LONDON"), "areas", "")
    assert "covers no area" in p.message


def test_every_problem_is_found_at_once(model_dir: Path) -> None:
    row = directory_row(model_dir, "IDVA", "DA-ADVOCACY")
    for column, bad in (("areas", "X1"), ("offences", "ARSON"), ("phone", "999")):
        set_directory_cell(model_dir, row, column, bad)
    set_directory_cell(model_dir, 2, "website", "example")
    found = {(p.row, p.column, p.value) for p in check_directory(*parsed(model_dir))}
    assert found == {
        (row, "areas", "X1"),
        (row, "offences", "ARSON"),
        (row, "phone", "999"),
        (2, "website", "example"),
    }


def test_a_workbook_problem_names_the_sheet_and_cell() -> None:
    header = ("service", "provider", "provider_name", "areas", "phone")
    raw = RawTable(
        "directory", "model.xlsx", "directory", header, (("S", "P", "Provider", "", "5"),)
    )
    frame, _ = parse_table(raw)
    frames = {
        "directory": frame,
        "areas": pd.DataFrame({"area_code": ["E09000001"]}),
        "offences": pd.DataFrame({"offence": ["R"]}),
        "services": pd.DataFrame({"service": ["S"]}),
        "staffing": pd.DataFrame({"service": ["S"], "area_code": ["E09000001"]}),
    }
    (p,) = check_directory(frames, {"directory": raw})
    assert (p.file, p.sheet, p.cell, p.column, p.value) == (
        "model.xlsx",
        "directory",
        "E2",
        "phone",
        "5",
    )


@pytest.mark.parametrize(
    "number",
    [
        "020 7946 0000",
        "+44 20 7946 0999",
        "+44 (0)20 7946 0000",
        "0044 20 7946 0000",
        "020-7946-0000",
        "01632 960 001",
        "07700 900123",
        "0808 802 9999",
        "0800 123 456",
        "0300 123 4567",
        "116 123",
    ],
)
def test_uk_phone_numbers_are_accepted(number: str) -> None:
    assert uk_phone(number)


@pytest.mark.parametrize(
    "number",
    ["12345", "999", "112", "020 7946 000", "020 7946 00000", "06 1234 56789", "+1 212 555 0100",
     "020 7946 0000 ext 12", "0800 1111", "44 20 7946 0000"],
)  # fmt: skip
def test_other_phone_numbers_are_not(number: str) -> None:
    assert not uk_phone(number)


def test_email_and_web_address_shapes() -> None:
    assert valid_email("referrals@example.org")
    assert valid_email("isva.referrals+web@north.example.co.uk")
    for bad in ("referrals@example", "a@@example.org", "my name@example.org", "a@b.c", ".a@x.org"):
        assert not valid_email(bad), bad
    assert valid_website("https://example.org")
    assert valid_website("http://www.example.org/referrals?from=police#form")
    assert valid_website("https://example.org:8443/a")
    for bad in ("www.example.org", "ftp://example.org", "https://localhost", "https://a b.org"):
        assert not valid_website(bad), bad


# ---------------------------------------------------------------- the model's directory


def test_blank_areas_and_offences_come_from_staffing_and_need_mix(tmp_path: Path) -> None:
    """Without the phone and email columns the directory loads through load_model today."""
    folder = write_example(tmp_path / "m")
    write_rows(folder / "directory.csv", *example_directory(drop=("phone", "email")))
    rows = read_rows(folder / "staffing.csv")
    write_rows(
        folder / "staffing.csv",
        rows[0],
        [r for r in rows[1:] if r[:2] != ["BY_AND_FOR", LAMBETH]],
    )
    directory = build_directory(load_model(folder))
    by_key = {(e.service, e.provider): e for e in directory.entries}
    by_and_for = by_key["BY_AND_FOR", "BME-WOMEN"]
    assert by_and_for.areas == tuple(c for c in CODES if c != LAMBETH)
    # need_mix sends RAPE, OSO and DA victims to the by-and-for service; IDVA lists DA itself
    assert by_and_for.offences == ("RAPE", "OSO", "DA")
    assert by_and_for.offence_names == ("Rape", "Other sexual offences", "Domestic abuse")
    assert by_key["IDVA", "DA-ADVOCACY"].offences == ("DA",)
    south = by_key["ISVA", "RC-SOUTH"]
    assert LAMBETH in south.areas
    assert HACKNEY not in south.areas
    assert south.languages == ("English", "Polish", "Portuguese")
    assert south.target_wait_weeks == 4
    assert len(directory.entries) == 8  # every example service has a directory row


def test_services_without_a_directory_row_are_listed_without_a_provider(
    example_model: Model,
) -> None:
    frame = example_model.tables["directory"]
    model = with_directory(example_model, frame[frame["service"] != "ESS"])
    bare = [e for e in build_directory(model).entries if e.service == "ESS"]
    assert len(bare) == 1
    assert (bare[0].provider, bare[0].provider_name) == ("", "")
    assert len(bare[0].areas) == len(CODES)
    plain = build_directory(dataclasses.replace(example_model, tables=MappingProxyType({})))
    assert [e.service for e in plain.entries] == list(example_model.services.codes)


def test_example_rows_are_synthetic_and_cover_what_the_brief_asks() -> None:
    header, rows = example_directory_rows(CODES)
    col = {h: i for i, h in enumerate(header)}
    assert all(str(r[col["provider_name"]]).endswith("(synthetic)") for r in rows)
    assert all(str(r[col["email"]]).endswith(".example.org") for r in rows)
    assert all(str(r[col["website"]]).startswith("https://") for r in rows)
    assert all(".example.org/" in str(r[col["website"]]) for r in rows)
    # Ofcom's numbers for drama: 020 7946 0000 to 020 7946 0999
    assert all(re.fullmatch(r"020 7946 0[0-9]{3}", str(r[col["phone"]])) for r in rows)
    assert any(r[col["by_and_for"]] for r in rows)
    assert any(set(str(r[col["languages"]]).split(", ")) - {"English"} for r in rows)
    assert {r[col["service"]] for r in rows} == {
        "ISVA",
        "COUNSELLING",
        "ESS",
        "CYP_ISVA",
        "BY_AND_FOR",
        "IDVA",
    }
    # a cut-down example keeps only the areas it has, and drops a row left with none
    _, few = example_directory_rows([HACKNEY, "E09000013"])
    listed = {a for r in few for a in str(r[col["areas"]]).split()}
    assert listed == {HACKNEY, "E09000013"}
    assert "RC-SOUTH" not in {r[col["provider"]] for r in few}


# ---------------------------------------------------------------- expected waits


def test_expected_wait_is_littles_law_on_the_latest_quarter() -> None:
    # 2024-Q4 has 92 days = 13.143 weeks: 46 starts is 3.5 a week; 35 waiting -> 10 weeks
    rows = [
        ("P", "S", "A", "2024-Q4", "starts", "", 46),
        ("P", "S", "A", "2024-Q4", "waiting_end", "", 35),
        *q1_return("P", "S", "A"),
    ]
    waits = expected_waits(returns_frame(rows))
    assert waits["P", "S", "A"] == Wait(Q1_WAIT_WEEKS, "2025-Q1", "about 20 weeks (2025-Q1 return)")
    earlier = expected_waits(returns_frame(rows[:2]))
    assert earlier["P", "S", "A"].weeks == 10.0


def test_the_waiting_list_can_come_from_its_bands() -> None:
    bands = [("P", "S", "A", "2025-Q1", "waiting_band", b, n) for b, n in (("0-4 weeks", 30),
             ("5-12 weeks", 25), ("13-26 weeks", 15))]  # fmt: skip
    rows = [("P", "S", "A", "2025-Q1", "starts", "", Q1_STARTS), *bands]
    assert expected_waits(returns_frame(rows))["P", "S", "A"].weeks == Q1_WAIT_WEEKS


@pytest.mark.parametrize(
    ("starts", "waiting", "weeks", "note"),
    [
        (10, 0, 0.0, "no waiting list at the end of 2025-Q2"),
        (3, 40, None, "too few starts in 2025-Q2 to estimate a wait"),
        (40, 4, None, "fewer than 5 waiting at the end of 2025-Q2"),
        (0, 12, None, "no one started support in 2025-Q2: no estimate"),
        # 2025-Q2 has 91 days = 13 weeks: 130 starts is 10 a week; 5 waiting -> half a week
        (130, 5, 0.5, "under a week (from the 2025-Q2 return)"),
        (2600, 5, 0.1, "under a week (from the 2025-Q2 return)"),  # 0.025 weeks: not 0
        (26, 26, 13.0, "about 13 weeks (2025-Q2 return)"),
    ],
)
def test_small_and_edge_counts(starts: int, waiting: int, weeks: float | None, note: str) -> None:
    rows = [
        ("P", "S", "A", "2025-Q2", "starts", "", starts),
        ("P", "S", "A", "2025-Q2", "waiting_end", "", waiting),
    ]
    assert expected_waits(returns_frame(rows))["P", "S", "A"] == Wait(weeks, "2025-Q2", note)


def test_an_old_return_is_no_recent_return() -> None:
    rows = [
        *q1_return("P", "S", "NEW"),
        ("P", "S", "LATE", "2024-Q4", "starts", "", 46),
        ("P", "S", "LATE", "2024-Q4", "waiting_end", "", 35),
        ("P", "S", "OLD", "2024-Q3", "starts", "", 46),
        ("P", "S", "OLD", "2024-Q3", "waiting_end", "", 35),
        ("P", "S", "NONE", "2025-Q1", "starts", "", 46),  # no waiting list given: no estimate
    ]
    waits = expected_waits(returns_frame(rows))
    assert waits["P", "S", "LATE"].weeks is not None  # one quarter late still counts
    assert waits["P", "S", "OLD"] == Wait(
        None, "2024-Q3", f"{NO_RETURN} (the latest is for 2024-Q3)"
    )
    assert ("P", "S", "NONE") not in waits


def test_waits_reach_the_entries_of_their_provider_only(example_model: Model) -> None:
    returns = returns_frame(q1_return())
    directory = build_directory(example_model, returns)
    entries = {(e.service, e.provider): e for e in directory.entries}
    assert entries["ISVA", "RC-NORTH"].wait(HACKNEY).weeks == Q1_WAIT_WEEKS
    assert entries["ISVA", "RC-NORTH"].wait("E09000002").note == NO_RETURN
    assert entries["COUNSELLING", "RC-NORTH"].wait(HACKNEY).note == NO_RETURN
    assert directory.newest_return == "2025-Q1"
    assert build_directory(example_model).newest_return is None


# ---------------------------------------------------------------- search


A1, A2, A3 = "E09000012", "E09000013", "E09000014"


def entry(provider: str, service: str, kind: str, areas: tuple[str, ...], **kw: Any) -> Entry:
    waits = kw.pop("waits", {})
    names = {A1: "Hackney", A2: "Hammersmith and Fulham", A3: "Haringey"}
    offences = kw.pop("offences", ("RAPE",))
    return Entry(
        service=service,
        service_name=kw.pop("service_name", service.title()),
        service_type=kind,
        provider=provider,
        provider_name=provider,
        description=kw.pop("description", ""),
        areas=areas,
        area_names=tuple(names[a] for a in areas),
        offences=offences,
        offence_names=offences,
        waits=MappingProxyType({a: Wait(w, "2025-Q1", f"{w} weeks") for a, w in waits.items()}),
        **kw,
    )


@pytest.fixture
def hand() -> Directory:
    entries = (
        entry("Alpha Rape Crisis", "COUNSELLING", "counselling", (A1, A2), waits={A1: 10.0}),
        entry("Beta Counselling", "COUNSELLING", "counselling", (A1,), waits={A1: 4.0},
              offences=("RAPE", "DA")),
        entry("Gamma Advocacy", "ISVA", "ISVA", (A2,), service_name="Independent sexual "
              "violence advisers"),
        entry("Delta Women's Centre", "BY_AND_FOR", "by-and-for", (A1, A2, A3),
              by_and_for="Black and minoritised women", languages=("English", "Urdu"),
              description="Advocacy and counselling in community languages"),
    )  # fmt: skip
    return Directory(
        entries=entries,
        area_codes=(A1, A2, A3),
        area_names=("Hackney", "Hammersmith and Fulham", "Haringey"),
        offence_codes=("RAPE", "DA"),
        offence_names=("Rape", "Domestic abuse"),
    )


def providers(hits: list[Any]) -> list[str]:
    return [h.entry.provider for h in hits]


def test_areas_match_by_code_or_name_in_any_case(hand: Directory) -> None:
    for query in (A1, A1.lower(), "Hackney", "HACKNEY", " hackney "):
        assert hand.match_areas(query) == (A1,), query
    assert hand.match_areas("hammersmith") == (A2,)  # part of a name
    assert hand.match_areas("Hammersmith & Fulham") == (A2,)
    assert hand.match_areas("ha") == (A1, A2, A3)
    assert hand.match_areas("Hackny") == ()
    assert hand.suggest_area("Hackny") == "Hackney"
    assert hand.match_offences("rape") == ("RAPE",)
    assert hand.match_offences("domestic") == ("DA",)


def test_need_ranks_type_and_name_above_description_then_by_wait(hand: Directory) -> None:
    hits = hand.search(area="Hackney", need="counselling")
    # both counselling services score the same (type, name): the shorter wait comes first;
    # the by-and-for centre only mentions counselling in its description
    assert providers(hits) == ["Beta Counselling", "Alpha Rape Crisis", "Delta Women's Centre"]
    assert hits[0].score == hits[1].score > hits[2].score
    assert [h.areas for h in hits] == [(A1,)] * 3


def test_filters_by_area_and_offence(hand: Directory) -> None:
    assert providers(hand.search(area=A2, need="counsel")) == [
        "Alpha Rape Crisis",
        "Delta Women's Centre",
    ]
    assert providers(hand.search(offence="domestic abuse")) == ["Beta Counselling"]
    assert providers(hand.search(area="Haringey")) == ["Delta Women's Centre"]
    assert hand.search(area="Nowhere") == []


def test_every_word_of_the_need_must_match(hand: Directory) -> None:
    assert providers(hand.search(need="urdu")) == ["Delta Women's Centre"]
    assert providers(hand.search(need="black women")) == ["Delta Women's Centre"]
    assert hand.search(need="black cats") == []
    by_and_for = hand.search(need="by and for")
    assert providers(by_and_for) == ["Delta Women's Centre"]
    assert by_and_for[0].score == 3 + 4  # the word 'by' in the type, and the type itself
    assert providers(hand.search(need="independent sexual violence")) == ["Gamma Advocacy"]


def test_without_filters_every_entry_in_wait_then_name_order(hand: Directory) -> None:
    hits = hand.search()
    assert providers(hits) == [
        "Beta Counselling",
        "Alpha Rape Crisis",
        "Delta Women's Centre",
        "Gamma Advocacy",
    ]
    assert hits[1].wait == "10 weeks in 1 of 2 areas (2025-Q1); no estimate in 1"
    assert math.isinf(hits[2].shortest_wait_weeks)
    assert hits[2].wait == NO_RETURN


# ---------------------------------------------------------------- HSDS export


def strict(schema: Any) -> Any:
    """A copy that also refuses fields the schema does not define."""
    schema = copy.deepcopy(schema)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("properties"), dict):
                node["additionalProperties"] = False
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return schema


def errors(schema: Any, data: Any, registry: Registry | None = None) -> list[str]:
    cls = jsonschema.Draft202012Validator
    kw: dict[str, Any] = {"registry": registry} if registry is not None else {}
    validator = cls(strict(schema), format_checker=cls.FORMAT_CHECKER, **kw)
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(data)]


@pytest.fixture(scope="module")
def hsds(shared_data: Path) -> Path:
    folder = shared_data / "standards" / "hsds"
    if not (folder / "compiled" / "service_package.json").is_file():
        pytest.skip(f"the HSDS schemas are not in {folder}")
    return folder


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def directory(example_model: Model) -> Directory:
    return build_directory(example_model, returns_frame(q1_return()))


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, directory: Directory) -> Path:
    folder = tmp_path_factory.mktemp("hsds")
    write_hsds(directory, folder)
    return folder


def test_the_strict_check_catches_what_hsds_does_not_allow(hsds: Path) -> None:
    """The validation below is not vacuous: ids, enums and unknown fields are all checked."""
    bad = [{"id": "ISVA-1", "name": "ISVA", "status": "open", "expected_wait": "3 weeks"}]
    found = errors(load(hsds / "compiled" / "service_package.json"), bad)
    assert len(found) == 3, found
    assert any("is not a 'uuid'" in e for e in found)
    assert any("'open' is not one of" in e for e in found)
    assert any("'expected_wait' was unexpected" in e for e in found)


def test_services_json_validates_against_the_hsds_service_schema(
    hsds: Path, exported: Path
) -> None:
    services = load(exported / "services.json")
    assert len(services) == 8
    assert errors(load(hsds / "compiled" / "service_package.json"), services) == []


def test_organizations_json_validates_against_the_hsds_organization_schema(
    hsds: Path, exported: Path
) -> None:
    orgs = load(exported / "organizations.json")
    assert len(orgs) == 6
    assert errors(load(hsds / "compiled" / "organization_package.json"), orgs) == []
    rc_north = next(o for o in orgs if o["name"].startswith("Example Rape Crisis Centre North"))
    assert [s["name"] for s in rc_north["services"]] == [
        "Independent sexual violence advisers",
        "Specialist counselling",
    ]


def test_every_record_of_every_table_validates_against_its_own_schema(
    hsds: Path, directory: Directory
) -> None:
    tables = hsds_tables(directory)
    assert errors(load(hsds / "compiled" / "tabular.json"), tables) == []
    registry: Registry = Registry().with_resources(
        (p.name, Resource.from_contents(load(p), default_specification=_spec()))
        for p in hsds.glob("*.json")
    )
    for table, rows in tables.items():
        assert rows, f"the example fills the {table} table"
        schema = load(hsds / f"{table}.json")
        for row in rows:
            assert errors(schema, row, registry) == [], (table, row)
            missing = set(schema.get("tabular_required", [])) - row.keys()
            assert not missing, (table, missing)


def _spec() -> Any:
    from referencing.jsonschema import DRAFT202012

    return DRAFT202012


def test_ids_are_unique_and_every_reference_resolves(directory: Directory) -> None:
    tables = hsds_tables(directory)
    ids = {t: {r["id"] for r in rows} for t, rows in tables.items()}
    every = [r["id"] for rows in tables.values() for r in rows]
    assert len(every) == len(set(every))
    refs = {
        "organization_id": "organization",
        "service_id": "service",
        "location_id": "location",
        "taxonomy_term_id": "taxonomy_term",
        "taxonomy_id": "taxonomy",
    }
    for table, rows in tables.items():
        for row in rows:
            for key, target in refs.items():
                if key in row:
                    assert row[key] in ids[target], (table, key)
    for attr in tables["attribute"]:
        assert attr["link_id"] in ids[attr["link_entity"]]


def test_web_addresses_are_absolute_http_uris(directory: Directory) -> None:
    for rows in hsds_tables(directory).values():
        for row in rows:
            for key in ("url", "website", "uri"):
                if key in row:
                    parts = urlsplit(row[key])
                    assert parts.scheme in {"http", "https"}, row[key]
                    assert "." in parts.netloc, row[key]


def test_csv_files_are_the_hsds_tables_with_their_columns(hsds: Path, exported: Path) -> None:
    written = sorted(p.name for p in (exported / "csv").iterdir())
    assert written == sorted(f for f, _ in HSDS_TABLES.values())
    for table, (file_name, _) in HSDS_TABLES.items():
        schema = load(hsds / f"{table}.json")
        assert schema["path"] == file_name
        scalar = [
            name
            for name, spec in schema["properties"].items()
            if spec.get("type") != "array" and "$ref" not in spec
        ]
        rows = read_rows(exported / "csv" / file_name)
        assert rows[0] == scalar, table
        assert len(rows) > 1, table


def test_the_csv_and_json_hold_the_same_records(exported: Path) -> None:
    services = load(exported / "services.json")
    rows = read_rows(exported / "csv" / "services.csv")
    by_id = {r[0]: dict(zip(rows[0], r, strict=True)) for r in rows[1:]}
    for s in services:
        flat = by_id[s["id"]]
        for key, value in s.items():
            if not isinstance(value, list | dict):
                assert flat[key] == str(value)
    areas = read_rows(exported / "csv" / "service_areas.csv")
    assert len(areas) - 1 == sum(len(s["service_areas"]) for s in services)


def test_ids_are_stable_across_exports(tmp_path: Path, example_model: Model) -> None:
    returns = returns_frame(q1_return())
    first, second = tmp_path / "one", tmp_path / "two"
    write_hsds(build_directory(example_model, returns), first)
    frame = example_model.tables["directory"]
    shuffled = with_directory(example_model, frame.iloc[::-1].reset_index(drop=True))
    write_hsds(build_directory(shuffled, returns), second)
    assert (first / "services.json").read_bytes() != (second / "services.json").read_bytes()

    def ids(folder: Path) -> dict[str, str]:
        return {s["alternate_name"]: s["id"] for s in load(folder / "services.json")}

    assert ids(first) == ids(second)
    # worked out again from the codes alone, as docs/directory.md says
    ns = uuid.uuid5(uuid.NAMESPACE_URL, "urn:needsled:hsds")
    rc_north = (
        "Example Rape Crisis Centre North London (synthetic): Independent sexual violence advisers"
    )
    assert ids(first)[rc_north] == str(uuid.uuid5(ns, '["service", "RC-NORTH", "ISVA"]'))
    write_hsds(build_directory(example_model, returns), second)
    for name in ("services.json", "organizations.json", "csv/attributes.csv"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def service(services: list[Any], provider_start: str, name: str) -> Any:
    return next(
        s for s in services if s["organization"]["name"].startswith(provider_start)
        and s["name"] == name
    )  # fmt: skip


def test_the_mapping_of_each_directory_field(exported: Path) -> None:
    services = load(exported / "services.json")
    isva = service(
        services, "Example Rape Crisis Centre North", "Independent sexual violence advisers"
    )
    assert isva["status"] == "active"
    assert isva["phones"][0]["number"] == "020 7946 0101"
    assert isva["contacts"][0] == {
        "id": isva["contacts"][0]["id"],
        "service_id": isva["id"],
        "department": "Referrals",
        "email": "referrals@rc-north.example.org",
    }
    assert isva["url"] == "https://rc-north.example.org/isva"
    assert isva["application_process"].startswith("Self-referral")
    (schedule,) = isva["schedules"]
    assert (schedule["freq"], schedule["byday"], schedule["opens_at"], schedule["closes_at"]) == (
        "WEEKLY",
        "MO,TU,WE,TH,FR",
        "09:00",
        "17:00",
    )
    kinds = sorted(s["location"]["location_type"] for s in isva["service_at_locations"])
    assert kinds == ["physical", "virtual"]  # delivered in person and online
    assert all(s["location"]["accessibility"] for s in isva["service_at_locations"])
    offences = {
        a["taxonomy_term"]["code"] for a in isva["attributes"] if a["link_type"] == "offence"
    }
    assert offences == {"RAPE", "OSO"}
    hackney = next(a for a in isva["service_areas"] if a["name"] == "Hackney")
    assert hackney["uri"].endswith("/E09000012")
    values = {a["link_type"]: a["value"] for a in hackney["attributes"]}
    assert values == {"expected_wait_weeks": "20", "expected_wait_quarter": "2025-Q1"}
    # the counts behind the wait are not published: only ids hold digits other than these
    shown = " ".join(
        str(v)
        for row in (hackney, *hackney["attributes"])
        for k, v in row.items()
        if not k.endswith("id") and isinstance(v, str)
    )
    # the area code twice (description, uri), the wait and its quarter (description, attributes)
    expected = ["09000012"] * 2 + ["20", "2025", "1"] * 2
    assert sorted(re.findall(r"[0-9]+", shown)) == sorted(expected)
    barnet = next(a for a in isva["service_areas"] if a["name"] == "Barnet")
    assert "attributes" not in barnet
    assert NO_RETURN in barnet["description"]

    bme = service(services, "Example Black and Minoritised", "By-and-for service for Black and "
                  "minoritised survivors")  # fmt: skip
    by_for = [a for a in bme["attributes"] if a["link_type"] == "by_and_for"]
    assert [a["value"] for a in by_for] == ["Black and minoritised women and girls"]
    codes = {lang["name"]: lang.get("code") for lang in bme["languages"]}
    assert codes["Urdu"] == "ur"
    assert codes["Arabic"] == "ar"
    assert "interpretation_services" not in bme  # HSDS: languages spoken, not interpreted

    cyp = service(services, "Example Young People", "Children and young people's ISVA")
    (unparsed,) = cyp["schedules"]
    assert unparsed["description"] == "Weekdays 09:00-17:00, evenings by appointment"
    assert "freq" not in unparsed
    assert "opens_at" not in unparsed


@pytest.mark.parametrize(
    ("text", "parsed_hours"),
    [
        ("Mon-Fri 09:00-17:00", [(("MO", "TU", "WE", "TH", "FR"), "09:00", "17:00")]),
        ("Weekdays 9am to 5.30pm", [(("MO", "TU", "WE", "TH", "FR"), "09:00", "17:30")]),
        (
            "Mon, Wed 10.30-14:00; Sat-Sun 10:00-13:00",
            [(("MO", "WE"), "10:30", "14:00"), (("SA", "SU"), "10:00", "13:00")],
        ),
        ("Tuesday and Thursday 18:00 - 21:00", [(("TU", "TH"), "18:00", "21:00")]),
        ("24 hours", None),
        ("Mon-Fri 17:00-09:00", None),  # overnight: left as text
        ("Fri-Mon 09:00-17:00", None),
        ("Mon-Fri 25:00-26:00", None),
    ],
)
def test_opening_hours(text: str, parsed_hours: Any) -> None:
    assert parse_opening_hours(text) == parsed_hours


# ---------------------------------------------------------------- the command line


@pytest.fixture(scope="module")
def cli_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example with a directory that loads today (the phone and email columns left out)."""
    folder = write_example(tmp_path_factory.mktemp("cli") / "model")
    write_rows(folder / "directory.csv", *example_directory(drop=("phone", "email")))
    return folder


@pytest.fixture(scope="module")
def returns_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("returns") / "returns.csv"
    write_rows(path, list(COLUMNS), [list(r) for r in q1_return()])
    return path


def test_search_prints_matching_services_with_their_wait(
    cli_model: Path, returns_csv: Path
) -> None:
    args = ["search", str(cli_model), "--area", "hackney", "--need", "isva"]
    result = runner.invoke(directory_app, [*args, "--returns", str(returns_csv)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "Example Rape Crisis Centre North London (synthetic)" in text
    assert "South London" not in text  # Hackney is north of the river
    assert "Children and young people's ISVA" in text
    assert "about 20 weeks" in text
    assert "Little's law" in text


def test_search_reads_returns_from_parquet_and_a_folder(
    tmp_path: Path, cli_model: Path, returns_csv: Path
) -> None:
    pd.read_csv(returns_csv, dtype=str, keep_default_na=False).assign(
        value=lambda f: f["value"].astype(int)
    ).to_parquet(tmp_path / "returns.parquet")
    for source in (tmp_path / "returns.parquet", tmp_path):
        args = ["search", str(cli_model), "--area", HACKNEY, "--need", "isva"]
        result = runner.invoke(directory_app, [*args, "--returns", str(source)])
        assert result.exit_code == 0, result.output
        assert "about 20 weeks" in result.output


def test_search_reads_the_returns_store_and_not_its_log(
    tmp_path: Path, cli_model: Path, returns_csv: Path
) -> None:
    store = tmp_path / "store"
    store.mkdir()
    table = pd.read_csv(returns_csv, dtype=str, keep_default_na=False)
    table.assign(value=table["value"].astype(float)).to_parquet(store / "returns.parquet")
    write_rows(store / "imports.csv", ["file", "sha256", "returns"], [["q1.xlsx", "ab12", 1]])
    args = ["search", str(cli_model), "--area", HACKNEY, "--need", "isva"]
    result = runner.invoke(directory_app, [*args, "--returns", str(store)])
    assert result.exit_code == 0, result.output
    assert "about 20 weeks" in result.output


def test_search_says_when_an_area_is_unknown(cli_model: Path) -> None:
    result = runner.invoke(directory_app, ["search", str(cli_model), "--area", "Hackny"])
    assert result.exit_code == 1
    assert "no area in this model matches 'Hackny'" in result.output
    assert "did you mean Hackney?" in result.output
    assert "Traceback" not in result.output


def test_search_with_no_match_and_an_unknown_offence(cli_model: Path) -> None:
    result = runner.invoke(directory_app, ["search", str(cli_model), "--need", "astronomy"])
    assert result.exit_code == 0
    assert "No service for need 'astronomy'." in result.output
    result = runner.invoke(directory_app, ["search", str(cli_model), "--offence", "arson"])
    assert result.exit_code == 1
    assert "RAPE (Rape)" in result.output


def test_bad_returns_are_listed_plainly(tmp_path: Path, cli_model: Path) -> None:
    path = tmp_path / "returns.csv"
    rows = [list(r) for r in q1_return()]
    rows[0][3], rows[1][6] = "2025 Q1", "lots"
    write_rows(path, list(COLUMNS), rows)
    result = runner.invoke(directory_app, ["search", str(cli_model), "--returns", str(path)])
    assert result.exit_code == 1
    assert f"{path}, row 2, column quarter: value '2025 Q1': is not a quarter" in result.output
    assert f"{path}, row 3, column value: value 'lots': is not a count" in result.output
    assert isinstance(result.exception, SystemExit)


def test_a_broken_model_is_listed_not_a_traceback(tmp_path: Path, cli_model: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    for f in cli_model.iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    (folder / "services.csv").unlink()
    for command in (["search", str(folder)], ["export", str(folder), "--out", str(tmp_path)]):
        result = runner.invoke(directory_app, command)
        assert result.exit_code == 1
        assert "has no 'services' table" in " ".join(result.output.split())
        assert isinstance(result.exception, SystemExit)


def test_export_writes_json_and_csv(tmp_path: Path, cli_model: Path, returns_csv: Path) -> None:
    out = tmp_path / "open-data"
    args = ["export", str(cli_model), "--out", str(out), "--returns", str(returns_csv)]
    result = runner.invoke(directory_app, args)
    assert result.exit_code == 0, result.output
    assert "Exported 8 service(s) from 6 organisation(s)" in result.output
    assert "public contact" in result.output
    assert len(load(out / "services.json")) == 8
    assert (out / "csv" / "services.csv").is_file()


def test_export_needs_a_directory(tmp_path: Path) -> None:
    folder = plain_example(tmp_path / "m")
    result = runner.invoke(directory_app, ["export", str(folder), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert "nothing to export" in result.output
    assert not (tmp_path / "o").exists()


def test_load_model_runs_the_directory_checks(model_dir: Path) -> None:
    assert load_model(model_dir).tables["directory"]["phone"].notna().all()
    set_directory_cell(model_dir, 2, "phone", "12345")
    with pytest.raises(InputError) as info:
        load_model(model_dir)
    assert [(p.row, p.column) for p in info.value.problems] == [(2, "phone")]
