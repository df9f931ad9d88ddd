"""Helpers shared by the web tests (imported by the test modules and conftest)."""

from __future__ import annotations

import re
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from needsled.web.config import WebConfig

PASSWORD = "correct horse battery staple"
# Real argon2id, with small costs so that the many sign-ins of the tests take milliseconds
# (the application uses pwdlib's recommended costs).
CHEAP_HASHER = PasswordHash((Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1),))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# the application ----------------------------------------------------------------------------


def make_config(data_dir: Path, url: str | None = None, **kw: Any) -> WebConfig:
    defaults: dict[str, Any] = {
        "replicates": 20,
        "report_replicates": 20,
        "hasher": CHEAP_HASHER,
        "secret_key": "test-secret-" + "x" * 40,
    }
    return WebConfig(data_dir=data_dir, database_url=url, **(defaults | kw))


def add_user(
    app: FastAPI,
    org: str,
    email: str,
    role: str,
    services: tuple[str, ...] = (),
    provider: str | None = None,
) -> int:
    st = app.state.needsled
    with st.store.session() as db:
        organisation = st.store.organisation(db, org, create=True)
        user = st.store.add_user(
            db,
            organisation=organisation,
            email=email,
            password=PASSWORD,
            role=role,
            services=list(services),
            hasher=st.config.hasher,
            provider=provider,
        )
        return user.id


CSRF_META = re.compile(r'name="csrf-token" content="([^"]+)"')
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    m = CSRF_META.search(html) or CSRF_FIELD.search(html)
    assert m is not None, "no CSRF token on the page"
    return m.group(1)


def sign_in(client: TestClient, email: str, password: str = PASSWORD) -> str:
    """Sign in through the form; the session's CSRF token."""
    page = client.get("/signin")
    r = client.post(
        "/signin",
        data={"email": email, "password": password, "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text[:500]
    return csrf_of(client.get("/tokens").text)


def client(app: FastAPI) -> TestClient:
    """A client on https://testserver, so that Secure cookies are sent back."""
    return TestClient(app, base_url="https://testserver")


# a live server for the browser --------------------------------------------------------------


@dataclass
class LiveServer:
    url: str
    app: FastAPI
    thread: threading.Thread
    server: Any


def serve_in_thread(app: FastAPI) -> LiveServer:
    import uvicorn

    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start in 30 s")
        time.sleep(0.05)
    return LiveServer(f"http://127.0.0.1:{port}", app, thread, server)
