"""What a user does, through the pages and the API: upload (and the problems shown per sheet
and cell), the explorer, saving and comparing scenarios, the optimiser, the report and its
downloads; small numbers suppressed; the same on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import itertools
import re
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from web_helpers import add_user, client, sign_in
from web_models import small_model, zipped

from needsled.io.template import write_template
from needsled.web import actions
from needsled.web.db import AuditEntry, StoredModel


def _upload(c: TestClient, csrf: str, files: list[tuple[str, bytes]], name: str = "m") -> Any:
    return c.post(
        "/models",
        data={"csrf_token": csrf, "name": name},
        files=[("files", f) for f in files],
        follow_redirects=False,
    )


def _model_id(r: Any) -> int:
    assert r.status_code == 303, r.text[:2000]
    return int(r.headers["location"].rsplit("/", 1)[1])


@pytest.fixture
def app(app_factory: Callable[..., FastAPI]) -> FastAPI:
    a = app_factory(warm_explorers=False)
    add_user(a, "Org A", "comm@a.org", "commissioner")
    add_user(a, "Org A", "prov@a.org", "provider", ("ISVA",))
    return a


def test_workbook_problems_are_listed_by_sheet_and_cell(app: FastAPI, tmp_path: Path) -> None:
    book = tmp_path / "wb" / "model.xlsx"
    book.parent.mkdir()
    write_template(book, example=True)
    wb = openpyxl.load_workbook(book)
    staffing = wb["staffing"]
    header = [c.value for c in staffing[1]]
    fte_col = header.index("fte") + 1
    staffing.cell(row=3, column=fte_col, value=-2)
    areas = wb["areas"]
    pop_col = [c.value for c in areas[1]].index("adult_population") + 1
    areas.cell(row=5, column=pop_col, value="lots")
    wb.save(book)
    fte_cell = f"{openpyxl.utils.get_column_letter(fte_col)}3"
    pop_cell = f"{openpyxl.utils.get_column_letter(pop_col)}5"
    with client(app) as c:
        csrf = sign_in(c, "comm@a.org")
        yaml = (book.parent / "scenarios.yaml").read_bytes()
        r = _upload(c, csrf, [("model.xlsx", book.read_bytes()), ("scenarios.yaml", yaml)])
        assert r.status_code == 422
        html = r.text
        assert "nothing was stored" in html
        rows = re.findall(r"<tr><td>([^<]*)</td><td>([^<]*)</td>", html)
        assert ("staffing", fte_cell) in rows
        assert ("areas", pop_cell) in rows
        assert str(tmp_path) not in html
        assert "/cache/uploads" not in html
        assert c.get("/api/models").json() == []
        api = c.post(
            "/api/models",
            files=[("files", ("model.xlsx", book.read_bytes()))],
            headers={"X-CSRF-Token": csrf},
        )
        assert api.status_code == 422
        cells = {(p["sheet"], p["cell"]) for p in api.json()["problems"]}
        assert {("staffing", fte_cell), ("areas", pop_cell)} <= cells
    with app.state.needsled.store.session() as db:
        outcomes = [e.outcome for e in db.scalars(select(AuditEntry)) if e.action == "upload"]
    assert outcomes
    assert all(o.startswith("refused: ") for o in outcomes)


def test_a_zipped_folder_and_loose_csv_files_both_upload(app: FastAPI, tmp_path: Path) -> None:
    folder = small_model(tmp_path / "m")
    with client(app) as c:
        csrf = sign_in(c, "comm@a.org")
        mid = _model_id(_upload(c, csrf, [("folder.zip", zipped(folder))], "Zipped"))
        loose = [(p.name, p.read_bytes()) for p in sorted(folder.iterdir())]
        mid2 = _model_id(_upload(c, csrf, loose, "Loose files"))
        models = {m["id"]: m for m in c.get("/api/models").json()}
        assert (
            models[mid]["services"] == models[mid2]["services"] == ["ISVA", "COUNSELLING", "IDVA"]
        )
        assert models[mid]["summary"]["areas"] == 3
        page = c.get(f"/models/{mid}").text
        assert "Barking and Dagenham" in page
        assert "reports-up-20pc" in page


@pytest.mark.parametrize(
    ("member", "why"),
    [("../evil.csv", "points outside"), ("/abs/areas.csv", "points outside")],
)
def test_unsafe_zips_are_refused(app: FastAPI, member: str, why: str) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("areas.csv", "area_code,area_name,adult_population\n")
        zf.writestr(member, "x")
    with client(app) as c:
        csrf = sign_in(c, "comm@a.org")
        r = _upload(c, csrf, [("bad.zip", buf.getvalue())])
        assert r.status_code == 422
        assert why in r.text


def _bomb(member: str, megabytes: int) -> bytes:
    """A small zip holding ``member``: ``megabytes`` MB of zeros (a few KB compressed)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf, zf.open(member, "w") as fh:
        for _ in range(megabytes):
            fh.write(bytes(1 << 20))
    return buf.getvalue()


@pytest.mark.parametrize("kind", ["zip", "workbook", "zipped workbook"])
def test_zip_bombs_are_refused(
    app: FastAPI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """A few KB that unpack to more than the limit (here 4 MB, to keep the test small): in a
    .zip, in a workbook (itself a zip of XML, read through by its loader), or both."""
    from needsled.web import uploads

    monkeypatch.setattr(uploads, "MAX_UNPACKED", 4 << 20)
    folder = small_model(tmp_path / "m")
    book = _bomb("xl/worksheets/sheet1.xml", 6)
    if kind == "zip":
        files = [("bomb.zip", _bomb("model/areas.csv", 6))]
    elif kind == "workbook":
        files = [("model.xlsx", book), ("scenarios.yaml", (folder / "scenarios.yaml").read_bytes())]
    else:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("model/model.xlsx", book)
            zf.write(folder / "scenarios.yaml", "model/scenarios.yaml")
        files = [("bomb.zip", buf.getvalue())]
    assert sum(len(b) for _, b in files) < 100_000
    with client(app) as c:
        csrf = sign_in(c, "comm@a.org")
        r = _upload(c, csrf, files)
        assert r.status_code == 422, r.text[:500]
        assert "unpacks to more than 4 MB" in r.text
        assert c.get("/api/models").json() == []
        # the same model within the limit is fine
        monkeypatch.setattr(uploads, "MAX_UNPACKED", 200 << 20)
        assert _upload(c, csrf, [("m.zip", zipped(folder))]).status_code == 303


def test_a_damaged_zip_is_refused_in_words(app: FastAPI, tmp_path: Path) -> None:
    data = bytearray(zipped(small_model(tmp_path / "m"), top=None))
    info = zipfile.ZipFile(io.BytesIO(bytes(data))).infolist()[0]
    at = info.header_offset + 30 + len(info.filename.encode()) + 5
    data[at] ^= 0xFF  # one byte of the first file's compressed data
    with client(app) as c:
        csrf = sign_in(c, "comm@a.org")
        r = _upload(c, csrf, [("m.zip", bytes(data))])
        assert r.status_code == 422, r.text[:500]
        assert "damaged" in r.text


def test_a_provider_uploads_only_their_own_services(app: FastAPI, tmp_path: Path) -> None:
    with client(app) as c:
        csrf = sign_in(c, "prov@a.org")
        r = _upload(c, csrf, [("all.zip", zipped(small_model(tmp_path / "all")))])
        assert r.status_code == 422
        assert "COUNSELLING, IDVA are not yours" in r.text
        own = small_model(tmp_path / "own", services=("ISVA",))
        mid = _model_id(_upload(c, csrf, [("own.zip", zipped(own))]))
        assert [m["id"] for m in c.get("/api/models").json()] == [mid]


def _observed_row(html: str, area: str) -> list[str]:
    m = re.search(rf'<tr><th scope="row">{area}</th>(.*?)</tr>', html)
    assert m is not None, area
    return re.findall(r"<td>([^<]*)</td>", m.group(1))


def test_small_observed_counts_are_suppressed_on_the_model_page(
    app: FastAPI, tmp_path: Path
) -> None:
    # ISVA waiting lists 3, 20, 2 and COUNSELLING 57, 106, 49 as in the example
    folder = small_model(tmp_path / "m", waiting={(0, "ISVA"): 3, (2, "ISVA"): 2})
    with client(app) as c:
        csrf = sign_in(c, "comm@a.org")
        html = c.get(f"/models/{_model_id(_upload(c, csrf, [('m.zip', zipped(folder))]))}").text
    barking = _observed_row(html, "Barking and Dagenham")
    bexley = _observed_row(html, "Bexley")
    total = _observed_row(html, "Total")
    assert barking[0] == "&lt;5"  # 3
    assert bexley[0] == "&lt;5"  # 2
    # a small count is "<5"; a cell hidden to protect another is "<5" or "[c]" (model.md 8)
    hidden = ("&lt;5", "[c]")
    isva = [barking[0], _observed_row(html, "Barnet")[0], bexley[0], total[0]]
    assert "3" not in isva
    assert "2" not in isva
    # no row shows exactly one hidden cell beside its total (the total would give it away)
    for row in (barking, bexley):
        assert sum(v in hidden for v in row) != 1 or row[-1] in hidden, row
    assert "a small count cannot be worked out from the totals" in html  # the marks explained


@pytest.fixture
def signed_in(app: FastAPI, tmp_path: Path) -> Iterator[tuple[TestClient, str, int]]:
    folder = small_model(tmp_path / "m", waiting={(0, "ISVA"): 3})
    with client(app) as c:
        csrf = sign_in(c, "comm@a.org")
        mid = _model_id(_upload(c, csrf, [("m.zip", zipped(folder))], "Small London"))
        yield c, csrf, mid


def _summary(result: dict[str, Any], service: str, metric: str) -> float:
    row = next(r for r in result["summary"] if r["service"] == service)
    return float(row[metric]["mean"])


def test_moving_a_lever_changes_the_numbers(signed_in: tuple[TestClient, str, int]) -> None:
    c, csrf, mid = signed_in
    h = {"X-CSRF-Token": csrf}
    levers = {lv["name"]: lv for lv in c.get(f"/api/models/{mid}/levers").json()}
    assert "police_reports" in levers
    for lv in levers.values():  # the interface the page is built on
        assert {"name", "label", "unit", "min", "max", "step", "default"} <= set(lv)
        assert lv["min"] <= lv["default"] <= lv["max"]
    page = c.get(f"/models/{mid}/explore").text
    for lv in levers.values():  # a slider and a labelled number box for every lever
        assert f'data-lever="{lv["name"]}"' in page
        assert f'name="lever:{lv["name"]}"' in page
    base = c.post(f"/api/models/{mid}/evaluate", json={"settings": {}}, headers=h).json()
    up = c.post(
        f"/api/models/{mid}/evaluate", json={"settings": {"police_reports": 50}}, headers=h
    ).json()
    assert _summary(up, "ISVA", "referrals") > _summary(base, "ISVA", "referrals")
    assert up["charts"]
    assert all("$schema" in spec for spec in up["charts"].values())
    quick = c.post(
        f"/api/models/{mid}/evaluate",
        json={"settings": {"police_reports": 50}, "mode": "preview"},
        headers=h,
    ).json()
    assert quick["mode"] == "preview"
    bad = c.post(f"/api/models/{mid}/evaluate", json={"settings": {"nope": 1}}, headers=h)
    assert bad.status_code == 422
    assert "not a lever" in bad.json()["problems"][0]["message"]


def test_save_and_compare_two_scenarios(signed_in: tuple[TestClient, str, int]) -> None:
    c, csrf, mid = signed_in
    ids = []
    for name, value in (("Reports up a fifth", "20"), ("Reports up a half", "50")):
        r = c.post(
            f"/models/{mid}/scenarios",
            data={"csrf_token": csrf, "name": name, "lever:police_reports": value},
            follow_redirects=False,
        )
        assert r.status_code == 303
        ids.append(int(r.headers["location"].rsplit("/", 1)[1]))
    again = c.post(
        f"/models/{mid}/scenarios",
        data={"csrf_token": csrf, "name": "Reports up a half", "lever:police_reports": "5"},
    )
    assert again.status_code == 422
    assert "already has a scenario called" in again.text
    page = c.get(f"/compare?ids={ids[0]}&ids={ids[1]}")
    assert page.status_code == 200
    assert "Reports up a fifth" in page.text
    assert "Reports up a half" in page.text
    both = c.get(f"/api/compare?ids={ids[0]},{ids[1]}").json()
    assert [b["scenario"]["settings"]["police_reports"] for b in both] == [20.0, 50.0]
    fifth, half = (_summary(b["results"], "ISVA", "referrals") for b in both)
    assert half > fifth
    # a saved scenario's results are the explorer's for the same settings
    direct = c.post(
        f"/api/models/{mid}/evaluate",
        json={"settings": {"police_reports": 50}},
        headers={"X-CSRF-Token": csrf},
    ).json()
    assert both[1]["results"]["summary"] == direct["summary"]


def test_the_optimiser_page_makes_a_plan(app: FastAPI, signed_in: Any) -> None:
    c, csrf, mid = signed_in
    r = c.post(
        f"/models/{mid}/optimise",
        data={"csrf_token": csrf, "equity_floor_pc": "0", "curve_steps": "2", "years": "2"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    waiting = c.get(r.headers["location"]).text
    assert 'http-equiv="refresh"' in waiting or "Ready" in waiting
    app.state.needsled.jobs.wait(300)
    page = c.get(r.headers["location"]).text
    assert "The plan by service" in page
    assert "What more money buys" in page
    assert 'http-equiv="refresh"' not in page
    pid = int(r.headers["location"].rsplit("/", 1)[1])
    plan = c.get(f"/api/plans/{pid}").json()
    assert plan["status"] == "done"
    res = plan["result"]
    assert res["cost"] <= res["budget"] + 1  # within the budget (today's cost)
    curve = [p for p in res["curve"] if p["supported_within_target"] is not None]
    values = [p["supported_within_target"] for p in sorted(curve, key=lambda p: p["budget"])]
    assert len(values) >= 2
    # more money never buys less: each budget's best plan is at least the smaller one's
    assert all(b >= a - 1e-6 for a, b in itertools.pairwise(values))
    # a budget nothing fits says why, in words
    r = c.post(
        f"/api/models/{mid}/plans",
        json={"budget": 1000, "curve_steps": 0},
        headers={"X-CSRF-Token": csrf},
    )
    assert r.status_code == 202
    app.state.needsled.jobs.wait(300)
    bad = c.get(f"/api/plans/{r.json()['id']}").json()
    assert bad["status"] == "infeasible"
    assert "No plan fits a budget" in bad["result"]["infeasible"]


def test_the_report_and_its_downloads(app: FastAPI, signed_in: Any) -> None:
    c, csrf, mid = signed_in
    r = c.post(f"/models/{mid}/reports", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303
    app.state.needsled.jobs.wait(600)
    rid = int(r.headers["location"].rsplit("/", 1)[1])
    rep = c.get(f"/api/reports/{rid}").json()
    assert rep["status"] == "done", rep["message"]
    files = set(rep["files"])
    assert {"report.html", "results.xlsx", "charts.zip", "observed.csv"} <= files
    page = c.get(f"/reports/{rid}").text
    for name in ("report.html", "results.xlsx", "charts.zip"):
        assert f"/reports/{rid}/files/{name}" in page
    html = c.get(f"/reports/{rid}/files/report.html")
    assert html.status_code == 200
    assert "attachment" in html.headers["content-disposition"]
    assert not re.search(r"<script[^>]+src=", html.text)  # everything inline: works offline
    book = openpyxl.load_workbook(io.BytesIO(c.get(f"/reports/{rid}/files/results.xlsx").content))
    assert len(book.sheetnames) >= 2
    # the workbook's observed table is suppressed too (the ISVA waiting list of 3)
    (sheet,) = [book[n] for n in book.sheetnames if "observed" in n.lower()]
    rows = [[str(v) for v in r] for r in sheet.iter_rows(values_only=True)]
    assert next(r for r in rows if r[0] == "Barking and Dagenham")[1] == "<5"
    assert "&lt;5" in html.text  # and the report's own observed table
    with zipfile.ZipFile(io.BytesIO(c.get(f"/reports/{rid}/files/charts.zip").content)) as zf:
        pngs = zf.namelist()
        assert pngs
        assert all(zf.read(n).startswith(b"\x89PNG\r\n\x1a\n") for n in pngs)
    one = c.get(f"/api/reports/{rid}/files/charts/{pngs[0]}")
    assert one.content.startswith(b"\x89PNG")
    if "report.pdf" in files:
        assert c.get(f"/reports/{rid}/files/report.pdf").content.startswith(b"%PDF")
    observed = list(csv.reader(io.StringIO(c.get(f"/reports/{rid}/files/observed.csv").text)))
    barking = next(r for r in observed if r[0] == "Barking and Dagenham")
    assert barking[1] == "<5"  # the ISVA waiting list of 3, suppressed in the download too
    audit = c.get("/api/audit")
    assert audit.status_code == 403  # a commissioner does not read the audit log
    with app.state.needsled.store.session() as db:
        got = {(e.action, e.outcome) for e in db.scalars(select(AuditEntry))}
        objects = {e.object for e in db.scalars(select(AuditEntry))}
    assert {("upload", "ok"), ("run", "ok"), ("download", "ok")} <= got
    assert f"report {rid} charts.zip" in objects


def test_the_application_works_on_both_stores(
    db_url: str, app_factory: Callable[..., FastAPI], tmp_path: Path
) -> None:
    app = app_factory(db_url, warm_explorers=False)
    add_user(app, "Org A", "comm@a.org", "commissioner")
    add_user(app, "Org B", "comm@b.org", "commissioner")
    folder = small_model(tmp_path / "m")
    with client(app) as c:
        csrf = sign_in(c, "comm@a.org")
        mid = _model_id(_upload(c, csrf, [("m.zip", zipped(folder))], "Ünïcode £ model"))
        assert c.get(f"/models/{mid}").status_code == 200
        r = c.post(
            "/api/scenarios",
            json={"model_id": mid, "name": "x", "settings": {}},
            headers={"X-CSRF-Token": csrf},
        )
        assert r.status_code == 201
    with client(app) as other:
        sign_in(other, "comm@b.org")
        assert other.get(f"/models/{mid}").status_code == 404
        assert other.get("/api/models").json() == []


def test_deleting_a_model_asks_to_be_sure(app: FastAPI, signed_in: Any) -> None:
    c, csrf, mid = signed_in
    r = c.post(f"/models/{mid}/delete", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 400
    assert "Tick the box" in r.text
    assert c.get(f"/models/{mid}").status_code == 200
    state = app.state.needsled
    with state.store.session() as db:
        stored = db.get(StoredModel, mid)
        db.expunge(stored)
    actions.loaded_model(state, stored)  # as the explorer or a report would: unpacked
    unpacked = list((state.config.data_dir / "cache" / "models").glob(f"{mid}-*"))
    assert len(unpacked) == 1
    r = c.post(
        f"/models/{mid}/delete", data={"csrf_token": csrf, "confirm": "on"}, follow_redirects=False
    )
    assert r.status_code == 303
    assert c.get(f"/models/{mid}").status_code == 404
    assert not unpacked[0].exists()


def test_a_newer_slider_request_from_the_page_replaces_a_waiting_one(
    app: FastAPI, signed_in: tuple[TestClient, str, int]
) -> None:
    """Through the API: while the heavy lane is busy (a demand lever moved runs the engine
    for every service), a session's waiting request for other settings is answered 409 as
    soon as the same session asks again, and never computed; the newer one is answered when
    its turn comes."""
    c, csrf, mid = signed_in
    url = f"/api/models/{mid}/evaluate"
    h = {"X-CSRF-Token": csrf, "Cookie": f"needsled_session={c.cookies.get('needsled_session')}"}
    assert c.post(url, json={"mode": "preview"}, headers=h).status_code == 200  # explorer built
    lanes = app.state.needsled.sliders
    running, release = threading.Event(), threading.Event()

    def hold() -> dict[str, Any]:
        running.set()
        release.wait(60)
        return {}

    lanes.submit("blocker", preview=False, owner=None, settings=0, compute=hold, heavy=True)
    assert running.wait(60)
    answers: dict[str, Any] = {}

    def ask(name: str, reports: int) -> None:
        tab = client(app)  # the same browser session (its cookie), another request
        body = {"settings": {"police_reports": reports}, "mode": "full"}
        answers[name] = tab.post(url, json=body, headers=h)

    first = threading.Thread(target=ask, args=("first", 20))
    first.start()
    deadline = time.monotonic() + 60
    while lanes.waiting("heavy") < 1:  # until the first request waits in the lane
        assert time.monotonic() < deadline, "the request never waited in the heavy lane"
        threading.Event().wait(0.01)
    second = threading.Thread(target=ask, args=("second", 30))
    second.start()
    first.join(60)  # answered without the lane moving on
    assert answers["first"].status_code == 409
    assert "newer request" in answers["first"].json()["detail"]
    release.set()
    second.join(120)
    assert answers["second"].status_code == 200
    assert answers["second"].json()["settings"]["police_reports"] == 30
    assert lanes.counts["heavy"].dropped == 1
