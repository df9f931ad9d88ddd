"""Provider returns in the web application: a provider downloads their Excel return, fills it
in and uploads it; problems are shown by file, sheet and cell and nothing is stored; a
provider sees only their own returns (another provider's is 404, even in the same
organisation); every table shown or downloaded is suppressed; uploads and downloads are
audited; provider codes are set on the Users page, by the API and on the command line. The
round trip runs on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner
from web_helpers import PASSWORD, add_user, client, sign_in
from web_models import small_model, zipped
from web_returns import counts, fill, filled_return, stored_counts

from _returns_quarter import rows_by_key
from needsled.io.load import load_model
from needsled.web import actions
from needsled.web.auth import Principal
from needsled.web.db import AuditEntry, ProviderReturn, StoredModel, User

QUARTER = "2025-Q1"
# RCC delivers ISVA in the first two areas, OTH in the third: the same service, other areas
DIRECTORY = [
    ("ISVA", "RCC", "0 1"),
    ("ISVA", "OTH", "2"),
    ("COUNSELLING", "DAS", ""),
    ("IDVA", "DAS", ""),
]
SMALL = re.compile(r"^[1-4]$")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_model(tmp_path_factory.mktemp("returns") / "model", directory=DIRECTORY)


@pytest.fixture(scope="module")
def areas(model_dir: Path) -> tuple[str, ...]:
    return tuple(load_model(model_dir).area_codes)


def _setup(app: FastAPI, model_dir: Path) -> int:
    """Users of organisation A, and the commissioner's model (with its directory)."""
    add_user(app, "Org A", "comm@a.org", "commissioner")
    add_user(app, "Org A", "admin@a.org", "admin")
    add_user(app, "Org A", "view@a.org", "viewer")
    add_user(app, "Org A", "rcc@a.org", "provider", provider="RCC")
    add_user(app, "Org A", "oth@a.org", "provider", provider="OTH")
    add_user(app, "Org A", "isva@a.org", "provider", ("ISVA",))  # services only, no code
    st = app.state.needsled
    with st.store.session() as db:
        comm = db.scalar(select(User).where(User.email == "comm@a.org"))
        assert comm is not None
        db.expunge(comm)
    stored = actions.upload_model(
        st, Principal(comm, None, None), "Alpha", [("m.zip", zipped(model_dir))], "test"
    )
    return stored.id


@pytest.fixture
def app(app_factory: Callable[..., FastAPI]) -> FastAPI:
    return app_factory(warm_explorers=False)


def _upload(c: TestClient, csrf: str, model_id: int, *paths: Path) -> Any:
    return c.post(
        f"/models/{model_id}/returns",
        data={"csrf_token": csrf},
        files=[("files", (p.name, p.read_bytes())) for p in paths],
        follow_redirects=False,
    )


def _returns(app: FastAPI) -> list[ProviderReturn]:
    with app.state.needsled.store.session() as db:
        rows = list(db.scalars(select(ProviderReturn).order_by(ProviderReturn.id)))
        for r in rows:
            db.expunge(r)
        return rows


def _audit(app: FastAPI) -> list[tuple[str, str, str, str]]:
    with app.state.needsled.store.session() as db:
        return [
            (e.email, e.action, e.object, e.outcome)
            for e in db.scalars(select(AuditEntry).order_by(AuditEntry.id))
        ]


def test_a_provider_downloads_fills_and_uploads_their_return(
    app_factory: Callable[..., FastAPI],
    db_url: str,
    model_dir: Path,
    areas: tuple[str, ...],
    tmp_path: Path,
) -> None:
    app = app_factory(db_url, warm_explorers=False)
    mid = _setup(app, model_dir)
    with client(app) as c:
        csrf = sign_in(c, "rcc@a.org")
        assert f"/models/{mid}/returns" in c.get("/returns").text
        page = c.get(f"/models/{mid}/returns")
        assert page.status_code == 200
        assert f"ISVA in {areas[0]}, ISVA in {areas[1]}" in page.text
        r = c.get(f"/models/{mid}/returns/template?quarter={QUARTER}")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/vnd.openxmlformats")
        assert f"return-RCC-{QUARTER}.xlsx" in r.headers["content-disposition"]
        blank = tmp_path / "blank.xlsx"
        blank.write_bytes(r.content)
        book = openpyxl.load_workbook(blank)
        # only their own services and areas: not OTH's area, not DAS's services
        assert book.sheetnames == ["instructions", f"ISVA {areas[0]}", f"ISVA {areas[1]}"]
        offences = tuple(load_model(model_dir).offence_codes)
        values = {n: counts(offences) for n in book.sheetnames[1:]}
        filled = fill(blank, tmp_path / "rcc-2025q1.xlsx", values)
        r = _upload(c, csrf, mid, filled)
        assert r.status_code == 303, r.text[:2000]
        assert r.headers["location"] == f"/models/{mid}/returns?done=2"
        page = c.get(r.headers["location"]).text
        assert "2 return(s) stored." in page
        assert "rcc-2025q1.xlsx" in page
        listed = c.get(f"/api/models/{mid}/returns").json()
        assert {(x["provider"], x["service"], x["area"], x["quarter"]) for x in listed} == {
            ("RCC", "ISVA", areas[0], QUARTER),
            ("RCC", "ISVA", areas[1], QUARTER),
        }
        assert all("counts" not in x for x in listed)  # raw counts never leave the store
        first = _returns(app)
        assert [sorted(r.counts) for r in first] == [stored_counts(model_dir)] * 2
        # a corrected file replaces the returns in place (same rows, counts changed)
        doubled = {n: counts(offences, 2) for n in book.sheetnames[1:]}
        again = fill(blank, tmp_path / "rcc-2025q1-corrected.xlsx", doubled)
        assert _upload(c, csrf, mid, again).status_code == 303
    second = _returns(app)
    assert [r.id for r in second] == [r.id for r in first]
    assert [r.replaced for r in second] == [1, 1]
    assert [sorted(r.counts) for r in second] == [stored_counts(model_dir, 2)] * 2
    assert {r.filename for r in second} == {"rcc-2025q1-corrected.xlsx"}
    log = [(a, o, out) for email, a, o, out in _audit(app) if email == "rcc@a.org"]
    assert ("download", f"model {mid} return template RCC {QUARTER}", "ok") in log
    uploads = [out for a, o, out in log if a == "upload" and o == f"returns of model {mid}"]
    assert uploads == [
        "ok: 2 return(s) from 1 file(s), 0 replaced",
        "ok: 2 return(s) from 1 file(s), 2 replaced",
    ]


def test_a_malformed_return_shows_its_problems_by_sheet_and_cell(
    app: FastAPI, model_dir: Path, areas: tuple[str, ...], tmp_path: Path
) -> None:
    mid = _setup(app, model_dir)
    good = filled_return(model_dir, "RCC", QUARTER, tmp_path / "good")
    sheet = f"ISVA {areas[1]}"
    bad = filled_return(
        model_dir,
        "RCC",
        "2025-Q2",
        tmp_path / "bad",
        change={sheet: {("referrals", "police"): -3, ("closures", "completed"): "lots"}},
    )
    where = rows_by_key(openpyxl.load_workbook(bad)[sheet])
    police, completed = f"C{where['referrals', 'police']}", f"C{where['closures', 'completed']}"
    with client(app) as c:
        csrf = sign_in(c, "rcc@a.org")
        r = _upload(c, csrf, mid, good, bad)
        assert r.status_code == 422
        assert "nothing was stored" in r.text
        rows = re.findall(r"<tr><td>([^<]*)</td><td>([^<]*)</td>", r.text)
        assert (sheet, police) in rows
        assert (sheet, completed) in rows
        assert f"<h3>{bad.name}</h3>" in r.text  # grouped by file, named as the user knows it
        assert str(tmp_path) not in r.text
        assert "cache/returns" not in r.text
        api = c.post(
            f"/api/models/{mid}/returns",
            files=[("files", (bad.name, bad.read_bytes()))],
            headers={"X-CSRF-Token": csrf},
        )
        assert api.status_code == 422
        found = {(p["file"], p["sheet"], p["cell"]) for p in api.json()["problems"]}
        assert {(bad.name, sheet, police), (bad.name, sheet, completed)} <= found
    assert _returns(app) == []  # the clean file was not stored either
    refused = [out for _, a, o, out in _audit(app) if a == "upload" and o.startswith("returns")]
    assert len(refused) == 2
    assert all(o.startswith("refused: ") for o in refused)


def test_record_level_files_are_refused(app: FastAPI, model_dir: Path, tmp_path: Path) -> None:
    mid = _setup(app, model_dir)
    records = tmp_path / "clients.csv"
    records.write_text(
        "client_id,name,date_of_birth,postcode\n1,Synthetic Person,1990-01-01,ZZ99 9ZZ\n"
    )
    with client(app) as c:
        csrf = sign_in(c, "comm@a.org")
        r = c.post(
            f"/api/models/{mid}/returns",
            files=[("files", (records.name, records.read_bytes()))],
            headers={"X-CSRF-Token": csrf},
        )
    assert r.status_code == 422
    assert "record-level" in r.json()["problems"][0]["message"]
    assert _returns(app) == []


def test_more_returns_than_one_upload_takes_are_refused_not_cut(
    app: FastAPI, model_dir: Path, tmp_path: Path
) -> None:
    """51 files at once: refused with the limit named and nothing stored (a 51st file is not
    silently dropped); the first of them alone is stored."""
    mid = _setup(app, model_dir)
    one = filled_return(model_dir, "RCC", QUARTER, tmp_path / "one")
    data = one.read_bytes()
    with client(app) as c:
        csrf = sign_in(c, "comm@a.org")
        url = f"/api/models/{mid}/returns"
        h = {"X-CSRF-Token": csrf}
        many = [("files", (f"r{i:02d}.xlsx", data)) for i in range(51)]
        r = c.post(url, files=many, headers=h)
        assert r.status_code == 422
        assert any("more than 50 files" in p["message"] for p in r.json()["problems"])
        assert _returns(app) == []
        r = c.post(url, files=many[:1], headers=h)
        assert r.status_code == 201, r.text[:300]
    assert _returns(app)


def test_a_provider_never_sees_another_providers_returns(
    app: FastAPI, model_dir: Path, areas: tuple[str, ...], tmp_path: Path
) -> None:
    mid = _setup(app, model_dir)
    rcc = filled_return(model_dir, "RCC", QUARTER, tmp_path / "rcc")
    oth = filled_return(model_dir, "OTH", QUARTER, tmp_path / "oth", scale=3)
    with client(app) as c:
        csrf = sign_in(c, "oth@a.org")
        assert _upload(c, csrf, mid, oth).status_code == 303
    oth_id = _returns(app)[0].id
    with client(app) as c:
        csrf = sign_in(c, "rcc@a.org")
        # their own upload works; another provider's file is refused, by sheet and cell
        assert _upload(c, csrf, mid, rcc).status_code == 303
        r = _upload(c, csrf, mid, oth)
        assert r.status_code == 422
        assert "this is the return of provider OTH" in r.text
        assert (f"ISVA {areas[2]}", "C4") in re.findall(
            r"<tr><td>([^<]*)</td><td>([^<]*)</td>", r.text
        )
        # OTH's return, its template and its numbers are nowhere: 404, not 403
        for url in (
            f"/returns/{oth_id}",
            f"/api/returns/{oth_id}",
            f"/models/{mid}/returns/template?quarter={QUARTER}&provider=OTH",
            f"/api/models/{mid}/returns/template?quarter={QUARTER}&provider=OTH",
        ):
            assert c.get(url).status_code == 404, url
        listed = c.get(f"/api/models/{mid}/returns").json()
        assert {x["provider"] for x in listed} == {"RCC"}
        tables = c.get(f"/api/models/{mid}/returns/outcomes").json()
        shown = {row[2] for t in tables.values() for row in t["rows"]}
        assert areas[2] not in shown  # OTH's area is not in their tables
        assert areas[0] in shown
        page = c.get(f"/models/{mid}/returns").text
        assert areas[2] not in page
        assert "OTH" not in page
        # the whole model is not theirs (OTH and DAS deliver in it): its data stays hidden
        assert c.get(f"/api/models/{mid}").status_code == 404
        assert c.get("/api/models").json() == []
    with client(app) as c:
        sign_in(c, "comm@a.org")
        listed = c.get(f"/api/models/{mid}/returns").json()
        assert {x["provider"] for x in listed} == {"RCC", "OTH"}
        assert c.get(f"/api/returns/{oth_id}").status_code == 200
        tables = c.get(f"/api/models/{mid}/returns/outcomes").json()
        assert areas[2] in {row[2] for t in tables.values() for row in t["rows"]}


def _cells_of_tables(html: str) -> list[str]:
    return re.findall(r"<td>([^<]*)</td>", html.split("Outcomes and journeys", 1)[-1])


def test_returns_tables_are_suppressed_on_pages_and_in_downloads(
    app: FastAPI, model_dir: Path, tmp_path: Path
) -> None:
    """The return holds many counts of 1 to 4 (BASE): none is shown, anywhere."""
    mid = _setup(app, model_dir)
    rcc = filled_return(model_dir, "RCC", QUARTER, tmp_path / "rcc")
    with client(app) as c:
        csrf = sign_in(c, "rcc@a.org")
        assert _upload(c, csrf, mid, rcc).status_code == 303
    rid = _returns(app)[0].id
    for email in ("rcc@a.org", "comm@a.org"):
        with client(app) as c:
            sign_in(c, email)
            cells = _cells_of_tables(c.get(f"/models/{mid}/returns").text)
            assert "&lt;5" in cells  # small counts are there, and shown as "<5"
            assert not [v for v in cells if SMALL.match(v)]
            one = re.findall(r"<td>([^<]*)</td>", c.get(f"/returns/{rid}").text)
            assert "&lt;5" in one
            assert not [v for v in one if SMALL.match(v)]
            tables = c.get(f"/api/models/{mid}/returns/outcomes").json()
            assert set(tables) == {
                "outcomes_by_need",
                "outcomes_by_group",
                "journeys",
                "time_to_support",
                "satisfaction",
            }
            for name, t in tables.items():
                values = [v for row in t["rows"] for v in row]
                assert not [v for v in values if SMALL.match(v)], name
                r = c.get(f"/models/{mid}/returns/outcomes/{name}.csv")
                assert r.status_code == 200
                assert r.headers["content-type"].startswith("text/csv")
                rows = list(csv.reader(io.StringIO(r.text)))
                assert rows[0] == t["columns"]
                assert not [v for row in rows for v in row if SMALL.match(v)], name
                assert all(row[-1].startswith("on: ") for row in rows[1:])  # suppression on
            assert "<5" in c.get(f"/models/{mid}/returns/outcomes/journeys.csv").text
            assert c.get(f"/models/{mid}/returns/outcomes/secret.csv").status_code == 404
    downloads = [(e, o) for e, a, o, _ in _audit(app) if a == "download"]
    assert ("rcc@a.org", f"model {mid} returns journeys.csv") in downloads
    assert ("comm@a.org", f"model {mid} returns satisfaction.csv") in downloads
    assert ("comm@a.org", f"model {mid} returns outcomes (API)") in downloads


def test_a_model_stored_before_summaries_held_the_directory_gets_it(
    app: FastAPI, model_dir: Path
) -> None:
    """Its returns pages load the model once and complete its summary."""
    mid = _setup(app, model_dir)
    st = app.state.needsled
    with st.store.session() as db:
        row = db.get(StoredModel, mid)
        assert row is not None
        full = dict(row.summary)
        row.summary = {k: v for k, v in full.items() if k not in ("directory", "served")}
    with client(app) as c:
        sign_in(c, "rcc@a.org")
        assert c.get("/returns").text.count(f"/models/{mid}/returns") == 0  # not known yet
        assert c.get(f"/models/{mid}/returns").status_code == 200
        assert f"/models/{mid}/returns" in c.get("/returns").text
    with st.store.session() as db:
        row = db.get(StoredModel, mid)
        assert row is not None
        assert row.summary["directory"] == full["directory"]
        assert row.summary["served"] == full["served"]


def test_viewers_and_providers_without_a_code_see_no_returns(app: FastAPI, model_dir: Path) -> None:
    mid = _setup(app, model_dir)
    for email in ("view@a.org", "isva@a.org"):
        with client(app) as c:
            sign_in(c, email)
            for url in ("/returns", f"/models/{mid}/returns", f"/api/models/{mid}/returns"):
                assert c.get(url).status_code == 403, (email, url)
            assert 'href="/returns"' not in c.get("/scenarios").text  # not in the menu
    with client(app) as c:
        sign_in(c, "isva@a.org")
        assert "provider code" in c.get(f"/api/models/{mid}/returns").text


def test_the_users_page_and_the_api_set_provider_codes(app: FastAPI, model_dir: Path) -> None:
    mid = _setup(app, model_dir)
    with client(app) as c:
        csrf = sign_in(c, "admin@a.org")
        r = c.post(
            "/admin/users",
            data={
                "csrf_token": csrf,
                "email": "new@a.org",
                "password": PASSWORD,
                "role": "provider",
                "provider": "OTH",
            },
            follow_redirects=False,
        )
        assert r.status_code == 303, r.text[:1000]
        users = {u["email"]: u for u in c.get("/api/users").json()}
        assert users["new@a.org"]["provider"] == "OTH"
        assert users["new@a.org"]["services"] == []
        uid = users["isva@a.org"]["id"]
        page = c.get("/admin/users").text
        assert f'id="provider-{uid}"' in page
        r = c.post(
            f"/admin/users/{uid}",
            data={"csrf_token": csrf, "role": "provider", "services": "ISVA", "provider": "RCC",
                  "active": "on"},
            follow_redirects=False,
        )  # fmt: skip
        assert r.status_code == 303
        h = {"X-CSRF-Token": csrf}
        bad = c.patch(f"/api/users/{uid}", json={"provider": "no spaces"}, headers=h)
        assert bad.status_code == 422
        cleared = c.patch(f"/api/users/{uid}", json={"provider": ""}, headers=h).json()
        assert cleared["provider"] is None
        assert cleared["services"] == ["ISVA"]
        audit = c.get("/api/audit").json()
    changes = [e["outcome"] for e in audit if e["action"] == "permission change"]
    assert "added as provider, provider code OTH" in changes
    assert "provider code -> RCC" in changes
    assert "provider code -> none" in changes
    with client(app) as c:
        sign_in(c, "new@a.org")
        assert c.get(f"/api/models/{mid}/returns").status_code == 200


def test_users_add_with_a_provider_code(tmp_path: Path) -> None:
    from needsled.cli import app as cli

    data = tmp_path / "data"
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD + "\n")
    run = CliRunner().invoke
    args = ["users", "add", "--data-dir", str(data), "--org", "Org A", "--password-file", str(pw)]
    r = run(cli, [*args, "--email", "rcc@a.org", "--role", "provider", "--provider", "RCC"])
    assert r.exit_code == 0, r.output
    r = run(cli, [*args, "--email", "v@a.org", "--role", "viewer", "--provider", "RCC"])
    assert r.exit_code == 1
    assert "only providers have a provider code" in r.output
    r = run(cli, [*args, "--email", "p@a.org", "--role", "provider"])
    assert r.exit_code == 1
    assert "--provider" in r.output
    r = run(cli, ["users", "list", "--data-dir", str(data)])
    assert "rcc@a.org\tprovider [provider RCC]" in r.output
