"""Sessions, cookies, CSRF, sign-in rate limit, security headers, the secret, API tokens."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable
from http.cookies import SimpleCookie
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from starlette.requests import Request
from web_helpers import PASSWORD, add_user, client, csrf_of, sign_in

from needsled.web.config import SECRET_ENV, load_secret
from needsled.web.db import AuditEntry, User
from needsled.web.security import CSP, SESSION_COOKIE, Signer, cookie_secure


def _cookies(response: object) -> dict[str, SimpleCookie]:
    out = {}
    for raw in response.headers.get_list("set-cookie"):  # type: ignore[attr-defined]
        c: SimpleCookie = SimpleCookie()
        c.load(raw)
        for name in c:
            out[name] = c
    return out


def _audit(app: FastAPI) -> list[AuditEntry]:
    with app.state.needsled.store.session() as db:
        return list(db.scalars(select(AuditEntry).order_by(AuditEntry.id)))


@pytest.fixture
def app(app_factory: Callable[..., FastAPI]) -> FastAPI:
    a = app_factory()
    add_user(a, "Org A", "admin@a.org", "admin")
    add_user(a, "Org A", "view@a.org", "viewer")
    return a


def test_session_cookie_is_secure_http_only_same_site(app: FastAPI) -> None:
    with client(app) as c:
        page = c.get("/signin")
        pre = _cookies(page)["needsled_pre"]["needsled_pre"]
        assert pre["httponly"]
        assert pre["secure"]
        assert pre["samesite"].lower() == "lax"
        r = c.post(
            "/signin",
            data={"email": "admin@a.org", "password": PASSWORD, "csrf_token": csrf_of(page.text)},
            follow_redirects=False,
        )
        assert r.status_code == 303
        cookie = _cookies(r)[SESSION_COOKIE][SESSION_COOKIE]
        assert cookie["httponly"] is True
        assert cookie["secure"] is True
        assert cookie["samesite"].lower() == "lax"
        assert cookie["path"] == "/"
        assert int(cookie["max-age"]) == 12 * 3600
        assert c.get("/api/me").json()["email"] == "admin@a.org"
        # a script reusing the session finds its CSRF token, the one the pages carry
        assert c.get("/api/session").json()["csrf_token"] == csrf_of(c.get("/tokens").text)


def _request(scheme: str, host: str, client_host: str) -> Request:
    return Request(
        {
            "type": "http",
            "scheme": scheme,
            "server": (host, 443 if scheme == "https" else 80),
            "path": "/",
            "headers": [(b"host", host.encode())],
            "client": (client_host, 5000),
            "query_string": b"",
        }
    )


@pytest.mark.parametrize(
    ("scheme", "host", "client_host", "insecure", "secure"),
    [
        ("https", "needsled.example.org", "203.0.113.9", False, True),
        ("https", "127.0.0.1", "127.0.0.1", False, True),
        ("http", "needsled.example.org", "203.0.113.9", False, True),  # never plain on a network
        ("http", "needsled.example.org", "127.0.0.1", False, True),  # proxy passing its Host
        ("http", "127.0.0.1", "203.0.113.9", False, True),
        ("http", "127.0.0.1", "127.0.0.1", False, False),  # this computer, plain http
        ("http", "localhost", "::1", False, False),
        ("http", "192.168.1.20", "192.168.1.30", True, False),  # --insecure-cookies
    ],
)
def test_secure_flag_rule(
    scheme: str, host: str, client_host: str, insecure: bool, secure: bool
) -> None:
    assert cookie_secure(_request(scheme, host, client_host), insecure) is secure


def _me_with(app: FastAPI, cookie: str) -> int:
    """GET /api/me from a fresh client sending only this session cookie (in the header, so
    that it is certainly sent: a cookie set in the jar for the wrong domain never is)."""
    with client(app) as c:
        return c.get("/api/me", headers={"Cookie": f"{SESSION_COOKIE}={cookie}"}).status_code


def test_signing_out_ends_the_session_on_the_server(app: FastAPI) -> None:
    with client(app) as c:
        csrf = sign_in(c, "admin@a.org")
        stolen = c.cookies.get(SESSION_COOKIE) or ""
        assert _me_with(app, stolen) == 200  # the copy works while the session lasts
        assert (
            c.post("/signout", data={"csrf_token": csrf}, follow_redirects=False).status_code == 303
        )
    assert _me_with(app, stolen) == 401


def test_forged_and_expired_cookies_are_refused(app: FastAPI) -> None:
    with client(app) as c:
        sign_in(c, "admin@a.org")
        good = c.cookies.get(SESSION_COOKIE) or ""
    assert _me_with(app, good) == 200
    token, _, _sig = good.partition(".")
    for bad in (token, good[:-2] + "xx", "nonsense", ""):
        assert _me_with(app, bad) == 401, bad
    # a cookie signed with another secret is refused
    other = Signer("another-secret-" + "y" * 40, 3600).sign_session(token)
    assert _me_with(app, other) == 401
    # and one older than the session lifetime
    signer = app.state.needsled.signer
    signer.max_age_s = -1
    try:
        assert _me_with(app, good) == 401
    finally:
        signer.max_age_s = 12 * 3600
    assert _me_with(app, good) == 200


def test_csrf_is_required_on_forms_and_api_writes(app: FastAPI) -> None:
    with client(app) as c:
        csrf = sign_in(c, "admin@a.org")
        body = {"name": "script", "days": 1}
        assert c.post("/api/tokens", json=body).status_code == 403
        assert (
            c.post("/api/tokens", json=body, headers={"X-CSRF-Token": "wrong"}).status_code == 403
        )
        r = c.post("/api/tokens", json=body, headers={"X-CSRF-Token": csrf})
        assert r.status_code == 201
        # forms: missing, wrong, right
        assert c.post("/tokens", data={"name": "x"}).status_code == 403
        assert c.post("/tokens", data={"name": "x", "csrf_token": csrf + "x"}).status_code == 403
        assert c.post("/tokens", data={"name": "x", "csrf_token": csrf}).status_code == 200
        # the refusal page says what happened in plain words
        refused = c.post("/signout", data={})
        assert refused.status_code == 403
        assert "security token" in refused.text
    # another user's CSRF token does not work with this session
    with client(app) as c2:
        sign_in(c2, "view@a.org")
        assert c2.post("/signout", data={"csrf_token": csrf}).status_code == 403


def test_sign_in_form_needs_its_token(app: FastAPI) -> None:
    with client(app) as c:
        r = c.post("/signin", data={"email": "admin@a.org", "password": PASSWORD})
        assert r.status_code == 403
        c.get("/signin")  # sets the pre-session cookie
        r = c.post(
            "/signin",
            data={"email": "admin@a.org", "password": PASSWORD, "csrf_token": "made-up"},
        )
        assert r.status_code == 403
        assert SESSION_COOKIE not in c.cookies


def test_sign_in_is_rate_limited_per_email_and_address(app: FastAPI) -> None:
    with client(app) as c:
        form = {"email": "admin@a.org", "password": "wrong password!", "csrf_token": ""}
        form["csrf_token"] = csrf_of(c.get("/signin").text)
        for _ in range(5):
            r = c.post("/signin", data=form)
            assert r.status_code == 400
            assert "do not match" in r.text
        r = c.post("/signin", data=form | {"password": PASSWORD})  # right password, too late
        assert r.status_code == 429
        assert "Wait 15 minutes" in r.text
        assert SESSION_COOKIE not in c.cookies
        api = c.post("/api/session", json={"email": "admin@a.org", "password": PASSWORD})
        assert api.status_code == 429
        # another account from the same address is not locked by these failures
        r = c.post(
            "/signin",
            data=form | {"email": "view@a.org", "password": PASSWORD},
            follow_redirects=False,
        )
        assert r.status_code == 303
    outcomes = [(e.email, e.outcome) for e in _audit(app) if e.action == "sign-in"]
    assert outcomes.count(("admin@a.org", "failed: wrong email or password")) == 5
    assert outcomes.count(("admin@a.org", "refused: rate limit")) == 2
    assert ("view@a.org", "ok") in outcomes


def test_unknown_email_fails_like_a_wrong_password(app: FastAPI) -> None:
    with client(app) as c:
        token = csrf_of(c.get("/signin").text)
        a = c.post("/signin", data={"email": "nobody@a.org", "password": "x", "csrf_token": token})
        b = c.post("/signin", data={"email": "admin@a.org", "password": "x", "csrf_token": token})
    assert a.status_code == b.status_code == 400
    assert "do not match an active account" in a.text
    assert "do not match an active account" in b.text


def test_security_headers_on_pages_api_and_files(app: FastAPI) -> None:
    with client(app) as c:
        for path in ("/signin", "/api/me", "/static/app.css", "/api/openapi.json", "/nowhere"):
            r = c.get(path)
            h = r.headers
            assert h["content-security-policy"] == CSP, path
            assert "unsafe-inline" not in h["content-security-policy"]
            assert "unsafe-eval" not in h["content-security-policy"]
            assert "frame-ancestors 'none'" in h["content-security-policy"]
            assert h["x-frame-options"] == "DENY"
            assert h["referrer-policy"] == "no-referrer"
            assert h["x-content-type-options"] == "nosniff"
            assert h["strict-transport-security"].startswith("max-age=")
        assert c.get("/signin").headers["cache-control"] == "no-store"


def test_pages_have_no_inline_script_or_style(app: FastAPI) -> None:
    with client(app) as c:
        sign_in(c, "admin@a.org")
        for path in (
            "/",
            "/signin",
            "/models",
            "/scenarios",
            "/admin/users",
            "/admin/audit",
            "/tokens",
        ):
            html = c.get(path).text
            assert " style=" not in html, path
            assert "<style" not in html, path
            for tag in html.split("<script")[1:]:
                head = tag.split(">", 1)[0]
                assert 'src="' in head or 'type="application/json"' in head, (path, head)


def test_secret_file_is_made_once_with_mode_600(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(SECRET_ENV, raising=False)
    first = load_secret(tmp_path)
    path = tmp_path / "secret_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) >= 32
    assert load_secret(tmp_path) == first  # kept across restarts
    path.chmod(0o644)
    assert load_secret(tmp_path) == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # tightened again
    monkeypatch.setenv(SECRET_ENV, "s" * 40)
    assert load_secret(tmp_path) == "s" * 40
    monkeypatch.setenv(SECRET_ENV, "short")
    with pytest.raises(ValueError, match="at least 32"):
        load_secret(tmp_path)


def test_api_tokens_act_as_their_user_without_csrf(app: FastAPI) -> None:
    with client(app) as c:
        csrf = sign_in(c, "admin@a.org")
        made = c.post(
            "/api/tokens", json={"name": "nightly", "days": 2}, headers={"X-CSRF-Token": csrf}
        ).json()
    token = made["token"]
    assert token.startswith("nsl_")
    with client(app) as script:
        bearer = {"Authorization": f"Bearer {token}"}
        assert script.get("/api/me", headers=bearer).json()["email"] == "admin@a.org"
        # a write needs no CSRF header with a token (a browser never sends one by itself)
        r = script.post(
            "/api/users",
            headers=bearer,
            json={"email": "new@a.org", "password": PASSWORD, "role": "viewer"},
        )
        assert r.status_code == 201
        # a token cannot make more tokens
        assert script.post("/api/tokens", headers=bearer, json={"name": "x"}).status_code == 403
        assert (
            script.get("/api/me", headers={"Authorization": "Bearer nsl_wrong"}).status_code == 401
        )
        assert script.delete(f"/api/tokens/{made['id']}", headers=bearer).status_code == 204
        assert script.get("/api/me", headers=bearer).status_code == 401
    with app.state.needsled.store.session() as db:
        stored = db.scalars(select(AuditEntry.object)).all()
    assert not any(token in s for s in stored)  # the token itself is never written down


def test_permission_changes_and_sign_ins_are_audited(app: FastAPI) -> None:
    with client(app) as c:
        csrf = sign_in(c, "admin@a.org")
        r = c.post(
            "/admin/users",
            data={
                "csrf_token": csrf,
                "email": "p@a.org",
                "password": PASSWORD,
                "role": "provider",
                "services": "ISVA IDVA",
            },
            follow_redirects=False,
        )
        assert r.status_code == 303
        users = c.get("/api/users").json()
        pid = next(u["id"] for u in users if u["email"] == "p@a.org")
        r = c.patch(f"/api/users/{pid}", json={"role": "viewer"}, headers={"X-CSRF-Token": csrf})
        assert r.status_code == 200
        assert r.json()["services"] == []
        audit = c.get("/api/audit").json()
    got = [(e["action"], e["object"].split(" ", 2)[-1], e["outcome"]) for e in audit]
    assert ("permission change", "p@a.org", "added as provider of ISVA, IDVA") in got
    assert ("permission change", "p@a.org", "role provider -> viewer; services -> none") in got
    signin = [e for e in audit if e["action"] == "sign-in"]
    assert signin
    assert signin[0]["email"] == "admin@a.org"
    assert signin[0]["ip"] == "testclient"


def test_an_admin_cannot_lock_themselves_out(app: FastAPI) -> None:
    with client(app) as c:
        csrf = sign_in(c, "admin@a.org")
        me = c.get("/api/me").json()["id"]
        r = c.patch(f"/api/users/{me}", json={"role": "viewer"}, headers={"X-CSRF-Token": csrf})
        assert r.status_code == 422
        assert "own admin role" in r.json()["problems"][0]["message"]


def test_a_deactivated_user_is_signed_out_and_cannot_sign_in(app: FastAPI) -> None:
    with client(app) as admin, client(app) as viewer:
        csrf = sign_in(admin, "admin@a.org")
        sign_in(viewer, "view@a.org")
        vid = viewer.get("/api/me").json()["id"]
        r = admin.patch(f"/api/users/{vid}", json={"active": False}, headers={"X-CSRF-Token": csrf})
        assert r.status_code == 200
        assert viewer.get("/api/me").status_code == 401
        again = viewer.post("/api/session", json={"email": "view@a.org", "password": PASSWORD})
        assert again.status_code == 400


def test_the_secret_file_is_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SECRET_ENV, raising=False)
    old = os.umask(0)  # even with a permissive umask
    try:
        load_secret(tmp_path / "data")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "data" / "secret_key").stat().st_mode) == 0o600


def _failures(app: FastAPI, email: str) -> list[str]:
    return [e.outcome for e in _audit(app) if e.action == "sign-in" and e.email == email]


def test_changing_address_does_not_give_more_guesses(app: FastAPI) -> None:
    """The per-address limit alone would give every new address five more guesses at one
    account: the account's own limit (four times as many, from any addresses) stops that."""
    wrong = {"email": "admin@a.org", "password": "wrong password!"}
    statuses = []
    for i in range(30):  # a botnet: each address guesses once or twice
        with TestClient(app, base_url="https://testserver", client=(f"198.51.100.{i}", 1)) as c:
            statuses.append(c.post("/api/session", json=wrong).status_code)
    assert statuses[:20] == [400] * 20
    assert statuses[20:] == [429] * 10
    outcomes = _failures(app, "admin@a.org")
    assert outcomes.count("failed: wrong email or password") == 20
    # even the right password, from a fresh address, waits out the window
    with TestClient(app, base_url="https://testserver", client=("203.0.113.7", 1)) as c:
        right = c.post("/api/session", json={"email": "admin@a.org", "password": PASSWORD})
        assert right.status_code == 429
        # another account is not locked by this
        other = c.post("/api/session", json={"email": "view@a.org", "password": PASSWORD})
        assert other.status_code == 200
    # the refusals are in the organisation's audit log, for its admins to see
    with app.state.needsled.store.session() as db:
        refused = db.scalars(
            select(AuditEntry).where(AuditEntry.outcome == "refused: rate limit")
        ).all()
    assert refused
    assert all(e.organisation_id is not None for e in refused)


def test_concurrent_guesses_cannot_slip_past_the_limit(app: FastAPI) -> None:
    """Twelve guesses at once from one address: the count is checked for each in turn, so
    exactly five are tried and the rest refused (without the per-email lock, several read the
    count before any failure is written)."""
    from needsled.web import accounts
    from needsled.web.errors import BadRequest, RateLimited

    state = app.state.needsled
    start = threading.Barrier(12)
    answers: list[str] = []

    def guess() -> None:
        start.wait()
        try:
            accounts.authenticate(state, "admin@a.org", "wrong password!", "192.0.2.1")
        except BadRequest:
            answers.append("failed")
        except RateLimited:
            answers.append("refused")

    threads = [threading.Thread(target=guess) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(answers) == ["failed"] * 5 + ["refused"] * 7
    assert _failures(app, "admin@a.org").count("failed: wrong email or password") == 5


def test_signing_in_again_ends_the_earlier_session(app: FastAPI) -> None:
    """A new session at each sign-in (no fixation), and the one the browser had before is
    ended on the server, not only replaced in the browser."""
    with client(app) as c:
        sign_in(c, "admin@a.org")
        first = c.cookies.get(SESSION_COOKIE) or ""
        page = c.get("/tokens")
        r = c.post(
            "/signin",
            data={"email": "view@a.org", "password": PASSWORD, "csrf_token": csrf_of(page.text)},
            follow_redirects=False,
        )
        assert r.status_code == 303
        second = c.cookies.get(SESSION_COOKIE) or ""
        assert second
        assert second != first
        assert c.get("/api/me").json()["email"] == "view@a.org"
        api = c.post("/api/session", json={"email": "admin@a.org", "password": PASSWORD})
        assert api.status_code == 200
        third = c.cookies.get(SESSION_COOKIE) or ""
    assert _me_with(app, first) == _me_with(app, second) == 401
    assert _me_with(app, third) == 200


def test_deactivating_a_user_ends_their_api_tokens(app: FastAPI) -> None:
    with client(app) as viewer:
        csrf = sign_in(viewer, "view@a.org")
        made = viewer.post(
            "/api/tokens", json={"name": "script"}, headers={"X-CSRF-Token": csrf}
        ).json()
        vid = viewer.get("/api/me").json()["id"]
    bearer = {"Authorization": f"Bearer {made['token']}"}
    with client(app) as script:
        assert script.get("/api/me", headers=bearer).status_code == 200
    with client(app) as admin:
        csrf = sign_in(admin, "admin@a.org")
        h = {"X-CSRF-Token": csrf}
        off = admin.patch(f"/api/users/{vid}", json={"active": False}, headers=h)
        assert off.status_code == 200
        with client(app) as script:
            assert script.get("/api/me", headers=bearer).status_code == 401
        on = admin.patch(f"/api/users/{vid}", json={"active": True}, headers=h)
        assert on.status_code == 200
    with client(app) as script:  # reactivated: the old token stays dead
        assert script.get("/api/me", headers=bearer).status_code == 401
        sign_in(script, "view@a.org")  # (the account itself works again)


@pytest.mark.parametrize("signed_in", [False, True])
def test_a_body_over_the_upload_limit_is_refused_before_it_is_read(
    app_factory: Callable[..., FastAPI], signed_in: bool
) -> None:
    """The request body limit (the upload limit and 1 MB for the form) holds for everyone,
    signed in or not, before the multipart body is parsed or anything is checked."""
    small = app_factory(max_upload_bytes=1 << 20)
    add_user(small, "Org A", "c@a.org", "commissioner")
    with client(small) as c:
        csrf = sign_in(c, "c@a.org") if signed_in else csrf_of(c.get("/signin").text)
        big = b"x" * (3 << 20)
        r = c.post(
            "/api/models",
            files=[("files", ("model.zip", big))],
            headers={"X-CSRF-Token": csrf},
        )
        assert r.status_code == 413
        fits = c.post(
            "/api/models",
            files=[("files", ("model.zip", b"x" * 1000))],
            headers={"X-CSRF-Token": csrf},
        )
        assert fits.status_code == (422 if signed_in else 401)


def test_publishing_and_sharing_are_audited_as_permission_changes(app: FastAPI) -> None:
    from needsled.web.db import SavedScenario, StoredModel

    store = app.state.needsled.store
    with store.session() as db:
        admin = db.scalar(select(User).where(User.email == "admin@a.org"))
        assert admin is not None
        model = StoredModel(
            organisation_id=admin.organisation_id,
            name="m",
            filename="m.zip",
            archive=b"",
            sha256="0" * 64,
            size_bytes=0,
            services=["ISVA"],
            summary={},
        )
        db.add(model)
        db.flush()
        sc = SavedScenario(
            organisation_id=admin.organisation_id, model_id=model.id, name="s", settings={}
        )
        db.add(sc)
        db.flush()
        sid = sc.id
    with client(app) as viewer:
        sign_in(viewer, "view@a.org")
        assert viewer.get(f"/api/scenarios/{sid}").status_code == 404  # not yet published
    with client(app) as c:
        csrf = sign_in(c, "admin@a.org")
        r = c.patch(
            f"/api/scenarios/{sid}",
            json={"published": True, "shared_with_providers": True},
            headers={"X-CSRF-Token": csrf},
        )
        assert r.status_code == 200
        page = c.post(
            f"/scenarios/{sid}/sharing",
            data={"csrf_token": csrf, "published": "on"},  # no longer shared with providers
            follow_redirects=False,
        )
        assert page.status_code == 303
    with client(app) as viewer:
        sign_in(viewer, "view@a.org")
        assert viewer.get(f"/api/scenarios/{sid}").status_code == 200
    changes = [
        (e.email, e.object, e.outcome) for e in _audit(app) if e.action == "permission change"
    ]
    assert changes == [
        ("admin@a.org", f"scenario {sid}", "published; shared with providers"),
        ("admin@a.org", f"scenario {sid}", "not shared with providers"),
    ]
