"""Property-based fuzzing of the JSON API from its own OpenAPI document (schemathesis): for
every operation, generated requests (valid and invalid) never get a server error.

Bounded: a few examples per operation, no shrinking past a few seconds. Requests are made as
an admin with a personal API token (so writes need no CSRF header and every operation is
reached); the token is made again if a generated request deletes it. Background runs are
recorded, not run. A model is uploaded first so that some generated ids find real objects.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from web_helpers import add_user, make_config
from web_models import small_model, zipped

from needsled.web import actions
from needsled.web.app import create_app
from needsled.web.auth import Principal
from needsled.web.db import ApiToken, StoredModel, User, utcnow
from needsled.web.security import hash_token

ROOT = Path(tempfile.mkdtemp(prefix="needsled-fuzz-"))
atexit.register(shutil.rmtree, ROOT, True)
SEEN: Counter[tuple[str, int]] = Counter()
APP = create_app(make_config(ROOT / "data", warm_explorers=False))
STATE = APP.state.needsled
ADMIN = add_user(APP, "Fuzz org", "admin@fuzz.org", "admin")
add_user(APP, "Other org", "admin@other.org", "admin")
STATE.jobs.submit = lambda *_, **__: None  # type: ignore[method-assign]
STATE.jobs.submit_plan = lambda *_, **__: None  # type: ignore[method-assign]
TOKEN = "nsl_fuzzing-token"

schema = schemathesis.openapi.from_asgi("/api/openapi.json", APP)


def _ensure_token() -> None:
    """The admin's token, made again if a generated request deleted it."""
    with STATE.store.session() as db:
        user = db.get(User, ADMIN)
        assert user is not None
        if not user.active or user.role != "admin":  # a generated PATCH may change a user,
            user.active, user.role, user.services = True, "admin", []  # never oneself though
        if db.query(ApiToken).filter(ApiToken.token_hash == hash_token(TOKEN)).first() is None:
            db.add(
                ApiToken(
                    user_id=ADMIN,
                    name="fuzz",
                    token_hash=hash_token(TOKEN),
                    expires_at=utcnow().replace(year=utcnow().year + 1),
                )
            )


MODEL = zipped(small_model(ROOT / "model"))


def _ensure_model() -> None:
    """A model of the admin's organisation, uploaded again if a generated DELETE took it."""
    with STATE.store.session() as db:
        user = db.get(User, ADMIN)
        assert user is not None
        db.expunge(user)
        if (
            db.query(StoredModel)
            .filter(StoredModel.organisation_id == user.organisation_id)
            .count()
        ):
            return
    actions.upload_model(STATE, Principal(user, None, None), "fuzz", [("m.zip", MODEL)], "t")


@schema.parametrize()
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_server_errors(case: Any) -> None:
    _ensure_token()
    _ensure_model()
    response = case.call(headers={"Authorization": f"Bearer {TOKEN}"})
    SEEN[(f"{case.method} {case.path}", response.status_code)] += 1
    where = f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:300]}"
    assert response.status_code < 500 or (
        response.status_code == 503 and "explorer is not installed" in response.text
    ), where
    # every refusal is said in words
    if response.status_code >= 400:
        assert response.json().get("detail"), where


def test_the_fuzzing_reached_the_handlers() -> None:
    """Not only refusals: many operations answered with success to generated requests."""
    ok = {op for (op, status), n in SEEN.items() if status < 300 and n}
    assert len(ok) >= 12, sorted(SEEN)
    assert any(status == 422 for _, status in SEEN)  # and invalid input was generated
