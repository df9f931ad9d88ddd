"""Accounts: signing in (with the rate limit), users of an organisation, personal API tokens
(for the pages and the API, like :mod:`needsled.web.actions`)."""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from collections.abc import Sequence

from sqlalchemy import delete, select

from needsled.web import access
from needsled.web.auth import Principal
from needsled.web.db import ApiToken, Organisation, Session, User, utcnow
from needsled.web.errors import BadRequest, NotFound, RateLimited, ValidationFailed
from needsled.web.security import hash_token, new_token
from needsled.web.state import AppState
from needsled.web.store import UserError, check_user, clean_text, normalise_email

__all__ = [
    "add_user",
    "authenticate",
    "create_token",
    "delete_token",
    "tokens_of",
    "update_user",
    "users_of",
]

DUMMY_HASH: dict[int, str] = {}
#: the account limit and the address limit, as multiples of ``login_failures_allowed`` (the
#: limit for one email from one address)
ACCOUNT_FACTOR, ADDRESS_FACTOR = 4, 10
# sign-ins for one email are checked one at a time (in this process), so that a burst of
# concurrent guesses cannot all pass the count before any failure is written
_EMAIL_LOCKS = tuple(threading.Lock() for _ in range(64))


def _email_lock(email: str) -> threading.Lock:
    return _EMAIL_LOCKS[hashlib.sha256(email.encode("utf-8")).digest()[0] % len(_EMAIL_LOCKS)]


# signing in -------------------------------------------------------------------------------


def authenticate(app: AppState, email: str, password: str, ip: str) -> User:
    """The user with this email and password, or a refusal; every attempt is audited.

    Refused with 429, without even checking the password, after ``login_failures_allowed``
    failures (n) within ``login_window_minutes`` for the email from this address, or 4n for
    the email from any addresses (so that changing address does not give more guesses at one
    account), or 10n from this address for any emails. Attempts for one email are checked one
    at a time, so concurrent guesses cannot slip past the count. A wrong email costs the same
    time as a wrong password.
    """
    email = normalise_email(email)[:320]
    with _email_lock(email):
        return _authenticate(app, email, password, ip)


def _authenticate(app: AppState, email: str, password: str, ip: str) -> User:
    cfg = app.config
    n = cfg.login_failures_allowed
    with app.store.session() as db:  # each write commits, even when the answer is a refusal
        pair, account, from_ip = app.store.recent_failures(db, email, ip, cfg.login_window_minutes)
        limited = pair >= n or account >= ACCOUNT_FACTOR * n or from_ip >= ADDRESS_FACTOR * n
        user = None if limited else db.scalar(select(User).where(User.email == email))
        if limited:
            known = db.scalar(select(User.organisation_id).where(User.email == email))
            app.store.audit(
                db,
                "sign-in",
                email=email,
                outcome="refused: rate limit",
                ip=ip,
                organisation_id=known,
            )
        elif user is not None:
            db.expunge(user)
    if limited:
        raise RateLimited(
            f"Too many failed sign-ins. Wait {cfg.login_window_minutes} minutes, then try again."
        )
    if user is None:
        if id(cfg.hasher) not in DUMMY_HASH:
            DUMMY_HASH[id(cfg.hasher)] = cfg.hasher.hash("not a real password")
        cfg.hasher.verify(password, DUMMY_HASH[id(cfg.hasher)])
        ok, new_hash = False, None
    else:
        ok, new_hash = cfg.hasher.verify_and_update(password, user.password_hash)
    with app.store.session() as db:
        if not ok or user is None or not user.active:
            why = "inactive user" if ok and user is not None else "wrong email or password"
            app.store.audit(
                db,
                "sign-in",
                email=email,
                outcome=f"failed: {why}",
                ip=ip,
                organisation_id=user.organisation_id if user else None,
            )
            user = None
        else:
            if new_hash is not None:  # pwdlib's costs went up since: store the new hash
                row = db.get(User, user.id)
                if row is not None:
                    row.password_hash = new_hash
            app.store.audit(db, "sign-in", user=user, obj=f"user {user.id}", ip=ip)
    if user is None:
        raise BadRequest("That email and password do not match an active account.")
    return user


# users and tokens -------------------------------------------------------------------------


def add_user(
    app: AppState,
    who: Principal,
    email: str,
    password: str,
    role: str,
    services: Sequence[str],
    ip: str,
    provider: str | None = None,
) -> User:
    access.require_role(who, ("admin",))
    provider = clean_text(provider or "", 40) or None
    try:
        with app.store.session() as db:
            org = db.get(Organisation, who.org)
            if org is None:
                raise NotFound()
            user = app.store.add_user(
                db,
                organisation=org,
                email=email,
                password=password,
                role=role,
                services=services,
                hasher=app.config.hasher,
                provider=provider,
            )
            app.store.audit(
                db,
                "permission change",
                user=who.user,
                obj=f"user {user.id} {user.email}",
                outcome=f"added as {role}"
                + (f" of {', '.join(services)}" if services else "")
                + (f", provider code {provider}" if provider else ""),
                ip=ip,
            )
            db.expunge(user)
            return user
    except UserError as exc:
        raise ValidationFailed(
            "The user cannot be added.",
            [{"file": "user", "message": str(exc), "fix": "correct the form and try again"}],
        ) from None


def update_user(
    app: AppState,
    who: Principal,
    user_id: int,
    *,
    role: str | None,
    services: Sequence[str] | None,
    active: bool | None,
    ip: str,
    provider: str | None = None,
) -> User:
    """Change a user's role, services, provider code (``""`` removes it; ``None`` keeps it)
    or activation."""
    with app.store.session() as db:
        user = access.get_user(db, who, user_id)
        new_role = role if role is not None else user.role
        new_services = list(services) if services is not None else list(user.services)
        new_provider = user.provider if provider is None else clean_text(provider, 40) or None
        if new_role != "provider":
            new_services, new_provider = [], None
        problems = check_user(user.email, new_role, new_services, new_provider)
        if user.id == who.user.id and (new_role != "admin" or active is False):
            problems.append("you cannot take away your own admin role or deactivate yourself")
        if problems:
            raise ValidationFailed(
                "The user cannot be changed.",
                [{"file": "user", "message": p, "fix": "correct the form"} for p in problems],
            )
        changes = []
        if new_role != user.role:
            changes.append(f"role {user.role} -> {new_role}")
        if sorted(new_services) != sorted(user.services):
            changes.append(f"services -> {', '.join(new_services) or 'none'}")
        if new_provider != user.provider:
            changes.append(f"provider code -> {new_provider or 'none'}")
        if active is not None and active != user.active:
            changes.append("activated" if active else "deactivated")
            user.active = active
        user.role, user.services = new_role, sorted(set(new_services))
        user.provider = new_provider
        if changes:
            app.store.audit(
                db,
                "permission change",
                user=who.user,
                obj=f"user {user.id} {user.email}",
                outcome="; ".join(changes),
                ip=ip,
            )
            if active is False or role is not None:  # signed out everywhere: new rights apply
                db.execute(delete(Session).where(Session.user_id == user.id))
            if active is False:  # and their API tokens end: reactivating does not revive them
                db.execute(delete(ApiToken).where(ApiToken.user_id == user.id))
        db.flush()
        db.expunge(user)
        return user


def users_of(app: AppState, who: Principal) -> list[User]:
    access.require_role(who, ("admin",))
    with app.store.session() as db:
        rows = list(
            db.scalars(select(User).where(User.organisation_id == who.org).order_by(User.email))
        )
        for r in rows:
            db.expunge(r)
        return rows


def create_token(app: AppState, who: Principal, name: str, days: int, ip: str) -> tuple[int, str]:
    """A new personal API token (shown once); it acts with the user's own role."""
    name = clean_text(name, 100)
    if not name:
        raise BadRequest("Give the token a name (what script uses it).")
    if not 1 <= days <= 366:
        raise BadRequest("A token lasts from 1 to 366 days.")
    token = "nsl_" + new_token()
    with app.store.session() as db:
        row = ApiToken(
            user_id=who.user.id,
            name=name,
            token_hash=hash_token(token),
            created_at=utcnow(),
            expires_at=utcnow() + dt.timedelta(days=days),
        )
        db.add(row)
        db.flush()
        app.store.audit(db, "create token", user=who.user, obj=f"token {row.id} {name}", ip=ip)
        return row.id, token


def tokens_of(app: AppState, who: Principal) -> list[ApiToken]:
    with app.store.session() as db:
        rows = list(
            db.scalars(
                select(ApiToken).where(ApiToken.user_id == who.user.id).order_by(ApiToken.id)
            )
        )
        for r in rows:
            db.expunge(r)
        return rows


def delete_token(app: AppState, who: Principal, token_id: int, ip: str) -> None:
    with app.store.session() as db:
        row = db.get(ApiToken, token_id)
        if row is None or row.user_id != who.user.id:
            raise NotFound()
        db.delete(row)
        app.store.audit(db, "delete token", user=who.user, obj=f"token {token_id}", ip=ip)
