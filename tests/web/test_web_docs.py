"""The API example in docs/web.md runs, against a live server, as written (only the address
and the account are put in)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi import FastAPI
from web_helpers import PASSWORD, add_user, client, serve_in_thread, sign_in
from web_models import small_model, zipped

DOC = Path(__file__).resolve().parents[2] / "docs" / "web.md"


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def test_the_api_example_runs(
    app_factory: Callable[..., FastAPI], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = app_factory(warm_explorers=False)
    add_user(app, "Org", "me@example.org", "commissioner")
    with client(app) as c:
        csrf = sign_in(c, "me@example.org")
        r = c.post(
            "/models",
            data={"csrf_token": csrf, "name": "Docs"},
            files=[("files", ("m.zip", zipped(small_model(tmp_path / "m"))))],
            follow_redirects=False,
        )
        assert r.status_code == 303
    live = serve_in_thread(app)
    try:
        (block,) = _python_blocks(DOC.read_text(encoding="utf-8"))
        code = block.replace("https://needsled.example.org", live.url).replace(
            '"password": "..."', f'"password": "{PASSWORD}"'
        )
        exec(compile(code, str(DOC), "exec"), {})
    finally:
        live.server.should_exit = True
        live.thread.join(10)
    printed = capsys.readouterr().out
    assert "waiting list" in printed  # the headline, in words
