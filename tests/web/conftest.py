"""Fixtures for the web application's tests.

``db_url`` is parametrised over SQLite and a real PostgreSQL server, so every test that uses
it runs on both. The PostgreSQL server is a throwaway one started here: ``initdb`` into a
temporary folder, ``pg_ctl start`` listening only on a Unix socket in that folder (on a free
port number), a fresh database per test, stopped and deleted at the end of the session. As
root (CI, this machine), initdb refuses to run, so the server runs as the ``postgres`` user
when it exists (Debian's package makes it) or else ``nobody``. When no PostgreSQL binaries
are installed the PostgreSQL cases are skipped with the reason, unless
``NEEDSLED_REQUIRE_POSTGRES=1`` (CI), when they fail.

Browser tests (Playwright) use Debian's Chromium: ``browser_type_launch_args`` below.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from web_helpers import free_port, make_config

from needsled.web.app import create_app

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


# PostgreSQL ---------------------------------------------------------------------------------


def _pg_bin() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    return Path(versions[0]).parent if versions else None


@dataclass
class PgServer:
    bindir: Path
    root: Path
    port: int
    run_as: pwd.struct_passwd | None
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.root / "server.log"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        kwargs: dict[str, Any] = {}
        if self.run_as is not None:
            kwargs = {"user": self.run_as.pw_uid, "group": self.run_as.pw_gid}
        return subprocess.run(
            [str(self.bindir / args[0]), *args[1:]],
            check=True,
            capture_output=True,
            text=True,
            cwd=self.root,
            env={**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"},
            timeout=120,
            **kwargs,
        )

    def start(self) -> None:
        if self.run_as is not None:
            os.chown(self.root, self.run_as.pw_uid, self.run_as.pw_gid)
        data = self.root / "data"
        self._run("initdb", "-D", str(data), "-U", "needsled", "--auth=trust", "-E", "UTF8",
                  "--no-sync")  # fmt: skip
        options = (
            f"-k {self.root} -p {self.port} -c listen_addresses='' -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off"
        )
        self._run("pg_ctl", "-D", str(data), "-o", options, "-l", str(self.log), "-w", "start")

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://needsled@/{database}?host={self.root}&port={self.port}"

    def admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(
            host=str(self.root), port=self.port, user="needsled", dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(sql)  # type: ignore[arg-type]


def _run_as() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("running as root, and there is no postgres or nobody user to run initdb")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    bindir = _pg_bin()
    if bindir is None or not (bindir / "pg_ctl").exists():
        reason = "no PostgreSQL server binaries (initdb, pg_ctl): apt-get install postgresql"
        if os.environ.get("NEEDSLED_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"NEEDSLED_REQUIRE_POSTGRES=1 but {reason}")
        pytest.skip(reason)
    root = Path(tempfile.mkdtemp(prefix="needsled-pg-"))
    server = PgServer(bindir, root, free_port(), _run_as())
    try:
        server.start()
    except subprocess.CalledProcessError as exc:
        log = server.log.read_text() if server.log.exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"could not start PostgreSQL: {exc.stderr}\n{log}")
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a new database on the PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.sqlite3'}"
        return
    server: PgServer = request.getfixturevalue("pg_server")
    name = "t_" + uuid.uuid4().hex[:16]
    server.admin(f"CREATE DATABASE {name}")
    yield server.url(name)
    server.admin(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture
def app_factory(tmp_path: Path) -> Iterator[Callable[..., FastAPI]]:
    made: list[FastAPI] = []

    def make(url: str | None = None, **kw: Any) -> FastAPI:
        app = create_app(make_config(tmp_path / f"data{len(made)}", url, **kw))
        made.append(app)
        return app

    yield make
    for app in made:
        app.state.needsled.jobs.shutdown()
        app.state.needsled.models.shutdown()
        app.state.needsled.store.close()


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium")
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: $NEEDSLED_ARTIFACTS (CI keeps it), else a pytest temp folder."""
    given = os.environ.get("NEEDSLED_ARTIFACTS")
    folder = Path(given) if given else tmp_path_factory.mktemp("artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
