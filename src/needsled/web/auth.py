"""Who is asking: the signed-in user from the session cookie or a personal API token, sign-in
and sign-out, and the CSRF check every state-changing request passes."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import delete, select
from starlette.datastructures import FormData

from needsled.web.db import ApiToken, Session, User, utcnow
from needsled.web.errors import CsrfRefused, NotSignedIn
from needsled.web.security import (
    CSRF_FIELD,
    CSRF_HEADER,
    PRE_COOKIE,
    SESSION_COOKIE,
    UNSAFE_METHODS,
    hash_token,
    new_token,
    tokens_match,
)
from needsled.web.state import AppState, state_of

__all__ = [
    "CurrentUser",
    "OptionalUser",
    "Principal",
    "check_csrf",
    "client_ip",
    "end_session",
    "principal",
    "require_user",
    "start_session",
]

SEEN_EVERY = dt.timedelta(minutes=1)
API_SIGN_IN = "/api/session"  # how often a session's last-seen time is written


@dataclass(frozen=True)
class Principal:
    """The signed-in user, with their session (None when a bearer token was used)."""

    user: User
    session_id: str | None
    csrf_token: str | None

    @property
    def role(self) -> str:
        return self.user.role

    @property
    def org(self) -> int:
        return self.user.organisation_id


def client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


def _from_cookie(app: AppState, request: Request) -> Principal | None:
    token = app.signer.session_token(request.cookies.get(SESSION_COOKIE))
    if token is None:
        return None
    now = utcnow()
    with app.store.session() as db:
        row = db.get(Session, hash_token(token))
        if row is None or row.expires_at <= now or not row.user.active:
            return None
        if now - row.last_seen_at > SEEN_EVERY:
            row.last_seen_at = now
        db.expunge(row.user)
        return Principal(row.user, row.id, row.csrf_token)


def _from_bearer(app: AppState, request: Request) -> Principal | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    now = utcnow()
    with app.store.session() as db:
        row = db.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token.strip())))
        if row is None or row.expires_at <= now or not row.user.active:
            return None
        row.last_used_at = now
        db.expunge(row.user)
        return Principal(row.user, None, None)


def principal(request: Request) -> Principal | None:
    """The user making this request, or None (resolved once per request)."""
    cached: Principal | bool | None = getattr(request.state, "principal", False)
    if cached is not False:
        return cached  # type: ignore[return-value]
    app = state_of(request)
    who = _from_bearer(app, request) or _from_cookie(app, request)
    request.state.principal = who
    return who


def require_user(request: Request) -> Principal:
    who = principal(request)
    if who is None:
        raise NotSignedIn()
    return who


OptionalUser = Annotated[Principal | None, Depends(principal)]
CurrentUser = Annotated[Principal, Depends(require_user)]


async def _form(request: Request) -> FormData | None:
    kind = request.headers.get("content-type", "")
    if kind.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        return await request.form()
    return None


async def check_csrf(request: Request) -> None:
    """Refuse a state-changing request without the right CSRF token (403).

    With a session: the session's token. Signed in by bearer token only (no cookie): none is
    needed, since a browser never sends that header by itself. Not signed in: the sign-in
    form's token bound to the pre-session cookie.
    """
    if request.method not in UNSAFE_METHODS:
        return
    if request.url.path == API_SIGN_IN and request.method == "POST":
        # JSON only: another site's page cannot send application/json without a CORS
        # preflight, which this application never allows; so no token is needed to sign in
        if request.headers.get("content-type", "").startswith("application/json"):
            return
        raise CsrfRefused("Sign in to the API with a JSON body (Content-Type: application/json).")
    given = request.headers.get(CSRF_HEADER)
    if given is None:
        form = await _form(request)
        value = form.get(CSRF_FIELD) if form is not None else None
        given = value if isinstance(value, str) else None
    has_cookie = SESSION_COOKIE in request.cookies
    who = principal(request)
    if who is not None and who.session_id is None and not has_cookie:
        return  # bearer token
    if who is not None and who.csrf_token is not None:
        if tokens_match(given, who.csrf_token):
            return
        raise CsrfRefused()
    pre = request.cookies.get(PRE_COOKIE)
    if pre and tokens_match(given, state_of(request).signer.pre_csrf(pre)):
        return
    raise CsrfRefused()


def start_session(app: AppState, request: Request, user_id: int) -> tuple[str, str]:
    """A new session for the user: (cookie value, CSRF token). A new token every time, so a
    session id planted before sign-in is worth nothing after it; and the session the request
    came with, if any (someone signing in again, or as another user), ends here."""
    token, csrf = new_token(), new_token()
    now = utcnow()
    earlier = app.signer.session_token(request.cookies.get(SESSION_COOKIE))
    with app.store.session() as db:
        if earlier is not None:
            db.execute(delete(Session).where(Session.id == hash_token(earlier)))
        db.add(
            Session(
                id=hash_token(token),
                user_id=user_id,
                csrf_token=csrf,
                created_at=now,
                last_seen_at=now,
                expires_at=now + dt.timedelta(hours=app.config.session_hours),
                ip=client_ip(request)[:64],
            )
        )
        db.execute(delete(Session).where(Session.expires_at <= now))
    return app.signer.sign_session(token), csrf


def end_session(app: AppState, who: Principal) -> None:
    if who.session_id is None:
        return
    with app.store.session() as db:
        db.execute(delete(Session).where(Session.id == who.session_id))
