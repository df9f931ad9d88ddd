"""`needsled serve` and `needsled users ...` (registered in cli.py by the lead; here in a small
Typer app of their own)."""

from __future__ import annotations

import importlib
import stat
from pathlib import Path
from typing import Any

import pytest
import typer
from pwdlib import PasswordHash
from sqlalchemy import select
from typer.testing import CliRunner

from needsled.cli_web import serve, users_app
from needsled.web.db import ApiToken, AuditEntry, Session, User, utcnow
from needsled.web.store import Store

cli = typer.Typer()
cli.command("serve")(serve)
cli.add_typer(users_app)
runner = CliRunner()
GOOD = "a long enough password"


def _password_file(tmp_path: Path, text: str = GOOD) -> Path:
    path = tmp_path / "pw.txt"
    path.write_text(text + "\n", encoding="utf-8")
    return path


def test_serve_starts_on_sqlite_in_the_data_dir_and_says_how_to_add_an_admin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    seen: dict[str, Any] = {}
    monkeypatch.delenv("NEEDSLED_SECRET_KEY", raising=False)
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app, **kw))
    data = tmp_path / "data"
    r = runner.invoke(cli, ["serve", "--data-dir", str(data), "--port", "8123"])
    assert r.exit_code == 0, r.output
    assert "There are no users yet" in r.output
    assert f"needsled users add --data-dir {data}" in r.output
    assert seen["host"] == "127.0.0.1"
    assert seen["port"] == 8123
    assert (data / "needsled.sqlite3").is_file()
    assert stat.S_IMODE((data / "secret_key").stat().st_mode) == 0o600
    assert seen["app"].state.needsled.config.insecure_cookies is False


def test_insecure_cookies_come_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda *_, **__: None)
    r = runner.invoke(cli, ["serve", "--data-dir", str(tmp_path), "--insecure-cookies"])
    assert r.exit_code == 0
    assert "Warning" in r.output
    assert "plain http" in r.output


def test_users_add_list_and_sign_in(tmp_path: Path) -> None:
    data = tmp_path / "data"
    pw = _password_file(tmp_path)
    r = runner.invoke(
        cli,
        [
            "users",
            "add",
            "--data-dir",
            str(data),
            "--org",
            "MOPAC",
            "--email",
            "Lead@Example.org",
            "--role",
            "admin",
            "--password-file",
            str(pw),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "Added lead@example.org as admin of MOPAC." in r.output
    r = runner.invoke(
        cli,
        [
            "users",
            "add",
            "--data-dir",
            str(data),
            "--org",
            "MOPAC",
            "--email",
            "p@example.org",
            "--role",
            "provider",
            "--service",
            "ISVA",
            "--service",
            "IDVA",
            "--password-file",
            str(pw),
        ],
    )
    assert r.exit_code == 0, r.output
    listed = runner.invoke(cli, ["users", "list", "--data-dir", str(data)])
    assert "MOPAC\tlead@example.org\tadmin" in listed.output
    assert "p@example.org\tprovider (IDVA, ISVA)" in listed.output
    store = Store(f"sqlite:///{data / 'needsled.sqlite3'}")
    try:
        with store.session() as db:
            user = db.scalar(select(User).where(User.email == "lead@example.org"))
            assert user is not None
            assert PasswordHash.recommended().verify(GOOD, user.password_hash)
            outcomes = list(db.scalars(select(AuditEntry.outcome)))
        assert "added as provider of ISVA, IDVA" in outcomes
    finally:
        store.close()


def test_the_password_is_asked_for_when_no_file_is_given(tmp_path: Path) -> None:
    r = runner.invoke(
        cli,
        [
            "users",
            "add",
            "--data-dir",
            str(tmp_path),
            "--org",
            "O",
            "--email",
            "a@b.org",
            "--role",
            "viewer",
        ],
        input=f"{GOOD}\n{GOOD}\n",
    )
    assert r.exit_code == 0, r.output
    assert GOOD not in r.output  # not echoed


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--role", "boss"], "is not one of: admin, commissioner, provider, viewer"),
        (["--role", "provider"], "a provider needs the codes"),
        (["--role", "viewer", "--service", "ISVA"], "only providers have services"),
    ],
)
def test_bad_users_are_refused_plainly(tmp_path: Path, args: list[str], says: str) -> None:
    r = runner.invoke(
        cli,
        [
            "users",
            "add",
            "--data-dir",
            str(tmp_path),
            "--org",
            "O",
            "--email",
            "a@b.org",
            "--password-file",
            str(_password_file(tmp_path)),
            *args,
        ],
    )
    assert r.exit_code == 1
    assert says in r.output


def test_short_passwords_and_duplicates_are_refused(tmp_path: Path) -> None:
    base = [
        "users",
        "add",
        "--data-dir",
        str(tmp_path),
        "--org",
        "O",
        "--email",
        "a@b.org",
        "--role",
        "viewer",
        "--password-file",
    ]
    r = runner.invoke(cli, [*base, str(_password_file(tmp_path, "short"))])
    assert r.exit_code == 1
    assert "at least 12" in r.output
    assert runner.invoke(cli, [*base, str(_password_file(tmp_path))]).exit_code == 0
    again = runner.invoke(cli, [*base, str(_password_file(tmp_path))])
    assert again.exit_code == 1
    assert "already exists" in again.output


def test_users_list_on_an_empty_store_says_how_to_begin(tmp_path: Path) -> None:
    r = runner.invoke(cli, ["users", "list", "--data-dir", str(tmp_path)])
    assert r.exit_code == 0
    assert "There are no users yet" in r.output


def test_a_new_password_signs_the_user_out(tmp_path: Path) -> None:
    pw = _password_file(tmp_path)
    add = [
        "users",
        "add",
        "--data-dir",
        str(tmp_path),
        "--org",
        "O",
        "--email",
        "a@b.org",
        "--role",
        "viewer",
        "--password-file",
        str(pw),
    ]
    assert runner.invoke(cli, add).exit_code == 0
    store = Store(f"sqlite:///{tmp_path / 'needsled.sqlite3'}")
    try:  # signed in in a browser, and a script with a personal API token
        with store.session() as db:
            uid = db.scalar(select(User.id))
            later = utcnow().replace(year=utcnow().year + 1)
            db.add(Session(id="s" * 64, user_id=uid, csrf_token="c", expires_at=later))
            db.add(ApiToken(user_id=uid, name="script", token_hash="t" * 64, expires_at=later))
    finally:
        store.close()
    new = tmp_path / "new.txt"
    new.write_text("another long password\n", encoding="utf-8")
    r = runner.invoke(
        cli,
        [
            "users",
            "password",
            "--data-dir",
            str(tmp_path),
            "--email",
            "a@b.org",
            "--password-file",
            str(new),
        ],
    )
    assert r.exit_code == 0, r.output
    store = Store(f"sqlite:///{tmp_path / 'needsled.sqlite3'}")
    try:
        with store.session() as db:
            user = db.scalar(select(User))
            assert user is not None
            assert PasswordHash.recommended().verify("another long password", user.password_hash)
            # signed out everywhere: neither the session nor the token works any more
            assert db.scalars(select(Session)).all() == []
            assert db.scalars(select(ApiToken)).all() == []
    finally:
        store.close()


def test_users_on_postgresql_too(db_url: str, tmp_path: Path) -> None:
    r = runner.invoke(
        cli,
        [
            "users",
            "add",
            "--database-url",
            db_url,
            "--org",
            "O",
            "--email",
            "a@b.org",
            "--role",
            "commissioner",
            "--password-file",
            str(_password_file(tmp_path)),
        ],
    )
    assert r.exit_code == 0, r.output
    listed = runner.invoke(cli, ["users", "list", "--database-url", db_url])
    assert "O\ta@b.org\tcommissioner" in listed.output


@pytest.mark.parametrize("env", [None, "1"])
def test_the_server_does_without_numpys_huge_pages_unless_told(
    monkeypatch: pytest.MonkeyPatch, env: str | None
) -> None:
    """``needsled serve`` turns NumPy's huge pages off for its process (see
    ``cli_web._plain_pages``), unless NUMPY_MADVISE_HUGEPAGE says what to do."""
    from needsled.cli_web import _plain_pages

    multiarray: Any = importlib.import_module("numpy._core.multiarray")
    before = multiarray._get_madvise_hugepage()
    if env is None:
        monkeypatch.delenv("NUMPY_MADVISE_HUGEPAGE", raising=False)
    else:
        monkeypatch.setenv("NUMPY_MADVISE_HUGEPAGE", env)
    try:
        multiarray._set_madvise_hugepage(True)
        _plain_pages()
        assert multiarray._get_madvise_hugepage() is (env is not None)
    finally:
        multiarray._set_madvise_hugepage(before)
