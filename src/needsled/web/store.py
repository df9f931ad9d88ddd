"""Opening the store (SQLite or PostgreSQL), and the few writes shared by the command line and
the application: organisations, users, the audit log."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from pwdlib import PasswordHash
from sqlalchemy import Engine, create_engine, event, func, select
from sqlalchemy.orm import Session as DbSession
from sqlalchemy.orm import sessionmaker

from needsled.web.db import ROLES, AuditEntry, Organisation, User, utcnow
from needsled.web.migrate import upgrade

__all__ = ["Store", "UserError", "clean_text", "normalise_email"]

EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
SERVICE_CODE = re.compile(r"^[A-Za-z0-9_\-]{1,40}$")
PROVIDER_CODE = re.compile(r"^[A-Za-z0-9_.\-]{1,40}$")
MIN_PASSWORD = 12


class UserError(ValueError):
    """A request about users that cannot be done as asked; the message says why and the fix."""


CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def clean_text(text: str, limit: int = 200) -> str:
    """Text as it may be stored: no control characters (PostgreSQL refuses NUL), spaces
    collapsed, at most ``limit`` characters."""
    return " ".join(CONTROL.sub(" ", text).split())[:limit]


def normalise_email(email: str) -> str:
    return clean_text(email, 320).replace(" ", "").lower()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")  # readers do not wait for the writer
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


class Store:
    """The database: an engine, a session factory, and the schema brought up to date."""

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.url = url
        kwargs: dict[str, Any] = {"pool_pre_ping": True}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 10}
        self.engine: Engine = create_engine(url, **kwargs)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        if migrate:
            upgrade(self.engine)

    @contextmanager
    def session(self) -> Iterator[DbSession]:
        """A unit of work: committed when the block ends, rolled back if it raises."""
        with self.sessions() as db, db.begin():
            yield db

    def close(self) -> None:
        self.engine.dispose()

    # users and organisations -------------------------------------------------------------

    def user_count(self) -> int:
        with self.session() as db:
            return int(db.scalar(select(func.count(User.id))) or 0)

    def organisation(self, db: DbSession, name: str, *, create: bool = False) -> Organisation:
        name = " ".join(name.split())
        if not name or len(name) > 200:
            raise UserError("an organisation needs a name of 1 to 200 characters")
        org = db.scalar(select(Organisation).where(Organisation.name == name))
        if org is None:
            if not create:
                raise UserError(f"there is no organisation called {name!r}")
            org = Organisation(name=name)
            db.add(org)
            db.flush()
        return org

    def add_user(
        self,
        db: DbSession,
        *,
        organisation: Organisation,
        email: str,
        password: str,
        role: str,
        services: Sequence[str],
        hasher: PasswordHash,
        provider: str | None = None,
    ) -> User:
        """A new user; every problem with the request is said at once. ``provider``: a
        provider's code in the models' directory tables."""
        email = normalise_email(email)
        provider = provider or None
        problems = check_user(email, role, services, provider)
        if len(password) < MIN_PASSWORD:
            problems.append(
                f"the password is {len(password)} characters; use at least {MIN_PASSWORD} "
                "(a few unrelated words is easiest to remember)"
            )
        if db.scalar(select(User.id).where(User.email == email)) is not None:
            problems.append(f"a user with the email {email} already exists")
        if problems:
            raise UserError("; ".join(problems))
        user = User(
            email=email,
            password_hash=hasher.hash(password),
            role=role,
            organisation_id=organisation.id,
            services=sorted(set(services)) if role == "provider" else [],
            provider=provider if role == "provider" else None,
            active=True,
        )
        db.add(user)
        db.flush()
        return user

    def audit(
        self,
        db: DbSession,
        action: str,
        *,
        user: User | None = None,
        email: str = "",
        obj: str = "",
        outcome: str = "ok",
        ip: str = "",
        organisation_id: int | None = None,
    ) -> None:
        db.add(
            AuditEntry(
                at=utcnow(),
                user_id=user.id if user else None,
                organisation_id=user.organisation_id if user else organisation_id,
                email=(user.email if user else email)[:320],
                action=action[:40],
                object=obj[:200],
                outcome=outcome[:200],
                ip=ip[:64],
            )
        )

    def recent_failures(
        self, db: DbSession, email: str, ip: str, minutes: int
    ) -> tuple[int, int, int]:
        """Failed sign-ins in the last ``minutes``: for this email from this address, for this
        email from any address, and from this address for any email (the rate limit's three
        counts). Refusals by the limit itself count too, so hammering keeps it shut."""
        since = utcnow() - dt.timedelta(minutes=minutes)
        base = select(func.count(AuditEntry.id)).where(
            AuditEntry.action == "sign-in",
            AuditEntry.outcome != "ok",
            AuditEntry.at >= since,
        )
        email = normalise_email(email)
        pair = int(db.scalar(base.where(AuditEntry.email == email, AuditEntry.ip == ip)) or 0)
        account = int(db.scalar(base.where(AuditEntry.email == email)) or 0)
        from_ip = int(db.scalar(base.where(AuditEntry.ip == ip)) or 0)
        return pair, account, from_ip


def check_user(
    email: str, role: str, services: Sequence[str], provider: str | None = None
) -> list[str]:
    """What is wrong with a user's email, role, services and provider code (empty when
    nothing). A provider needs services, or a provider code, or both."""
    problems = []
    if not EMAIL.match(email) or len(email) > 320:
        problems.append(f"{email!r} is not an email address (write it as name@example.org)")
    if role not in ROLES:
        problems.append(f"the role {role!r} is not one of: {', '.join(ROLES)}")
    bad = [s for s in services if not SERVICE_CODE.match(s)]
    if bad:
        problems.append(
            f"service codes {', '.join(map(repr, bad))} are not codes (letters, digits, _ and -)"
        )
    if provider and not PROVIDER_CODE.match(provider):
        problems.append(
            f"the provider code {provider!r} is not a code (letters, digits, '.', _ and -, at "
            "most 40)"
        )
    if role == "provider" and not services and not provider:
        problems.append(
            "a provider needs the codes of the services they deliver (--service ISVA) or their "
            "provider code from the model's directory table (--provider RCC-NORTH)"
        )
    if role != "provider" and services:
        problems.append("only providers have services; leave them out for this role")
    if role != "provider" and provider:
        problems.append("only providers have a provider code; leave it out for this role")
    return problems
