"""The store on SQLite and on a real PostgreSQL server: the same tests pass on both."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError
from web_helpers import CHEAP_HASHER, PASSWORD

from needsled.web import access
from needsled.web.auth import Principal
from needsled.web.db import (
    AuditEntry,
    Base,
    Report,
    SavedScenario,
    StoredModel,
    User,
    utcnow,
)
from needsled.web.migrate import current_revision, downgrade, head_revision, upgrade
from needsled.web.store import Store, UserError

TABLES = {
    "organisations",
    "users",
    "sessions",
    "api_tokens",
    "models",
    "scenarios",
    "reports",
    "plans",
    "audit",
    "provider_returns",
}


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url)
    yield s
    s.close()


def test_migrations_make_the_schema_of_the_code_and_can_be_undone(db_url: str) -> None:
    s = Store(db_url, migrate=False)
    try:
        assert current_revision(s.engine) is None
        upgrade(s.engine)
        assert current_revision(s.engine) == head_revision()
        assert set(inspect(s.engine).get_table_names()) >= TABLES
        with s.engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(ctx, Base.metadata) == []  # migrations == ORM classes
        upgrade(s.engine)  # again at start: nothing to do, nothing breaks
        downgrade(s.engine)
        assert current_revision(s.engine) is None
        assert not TABLES & set(inspect(s.engine).get_table_names())
        upgrade(s.engine)
        assert set(inspect(s.engine).get_table_names()) >= TABLES
    finally:
        s.close()


def _user(s: Store, org: str, email: str, role: str, services: tuple[str, ...] = ()) -> User:
    with s.session() as db:
        o = s.organisation(db, org, create=True)
        u = s.add_user(
            db,
            organisation=o,
            email=email,
            password=PASSWORD,
            role=role,
            services=services,
            hasher=CHEAP_HASHER,
        )
        db.expunge(u)
        return u


def test_users_have_argon2_hashes_and_unique_emails(store: Store) -> None:
    u = _user(store, "Org A", "  Ann@Example.ORG ", "commissioner")
    assert u.email == "ann@example.org"
    assert u.password_hash.startswith("$argon2id$")
    assert PASSWORD not in u.password_hash
    assert CHEAP_HASHER.verify(PASSWORD, u.password_hash)
    assert not CHEAP_HASHER.verify(PASSWORD + "x", u.password_hash)
    with pytest.raises(UserError, match="already exists"):
        _user(store, "Org B", "ann@example.org", "viewer")
    # the database itself refuses a duplicate, whatever the code above it does
    with pytest.raises(IntegrityError), store.session() as db:
        db.add(
            User(
                email="ann@example.org",
                password_hash="x",
                role="viewer",
                organisation_id=u.organisation_id,
                services=[],
                active=True,
            )
        )
    # and a role that is not one of the four
    with pytest.raises(IntegrityError), store.session() as db:
        db.add(
            User(
                email="bob@example.org",
                password_hash="x",
                role="superuser",
                organisation_id=u.organisation_id,
                services=[],
                active=True,
            )
        )


def test_user_problems_are_all_said_at_once(store: Store) -> None:
    with store.session() as db:
        o = store.organisation(db, "Org A", create=True)
        with pytest.raises(UserError) as err:
            store.add_user(
                db,
                organisation=o,
                email="not-an-email",
                password="short",
                role="provider",
                services=[],
                hasher=CHEAP_HASHER,
            )
    text = str(err.value)
    assert "not an email address" in text
    assert "at least 12" in text
    assert "a provider needs the codes" in text


def test_times_come_back_in_utc(store: Store) -> None:
    u = _user(store, "Org A", "a@example.org", "admin")
    when = dt.datetime(2025, 3, 30, 1, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    with store.session() as db:
        store.audit(db, "sign-in", user=u, ip="10.0.0.1")
        entry = db.scalar(select(AuditEntry))
        assert entry is not None
        entry.at = when
    with store.session() as db:
        back = db.scalar(select(AuditEntry.at))
    assert back == when
    assert back is not None
    assert back.utcoffset() == dt.timedelta(0)


def _model(s: Store, org_id: int, services: list[str], blob: bytes = b"PK\x03\x04x") -> int:
    with s.session() as db:
        m = StoredModel(
            organisation_id=org_id,
            name="m",
            filename="m.zip",
            archive=blob,
            sha256=hashlib.sha256(blob).hexdigest(),
            size_bytes=len(blob),
            services=services,
            summary={"scenarios": [["baseline", ""]]},
        )
        db.add(m)
        db.flush()
        return m.id


def _scenario(s: Store, model_id: int, org_id: int, name: str, **flags: object) -> int:
    with s.session() as db:
        sc = SavedScenario(
            organisation_id=org_id,
            model_id=model_id,
            name=name,
            settings={"police_reports": 20.0},
            **flags,
        )
        db.add(sc)
        db.flush()
        return sc.id


def test_uploads_are_kept_byte_for_byte(store: Store) -> None:
    u = _user(store, "Org A", "a@example.org", "admin")
    blob = bytes(range(256)) * 4096  # 1 MiB with every byte value, NUL included
    mid = _model(store, u.organisation_id, ["ISVA"], blob)
    with store.session() as db:
        row = db.get(StoredModel, mid)
        assert row is not None
        assert row.archive == blob
        assert hashlib.sha256(row.archive).hexdigest() == row.sha256


def _who(u: User) -> Principal:
    return Principal(u, "s", "c")


def test_each_role_sees_what_it_should_and_nothing_of_another_organisation(store: Store) -> None:
    admin = _user(store, "Org A", "admin@a.org", "admin")
    comm = _user(store, "Org A", "comm@a.org", "commissioner")
    prov = _user(store, "Org A", "prov@a.org", "provider", ("ISVA",))
    view = _user(store, "Org A", "view@a.org", "viewer")
    other = _user(store, "Org B", "comm@b.org", "commissioner")
    a_all = _model(store, admin.organisation_id, ["ISVA", "IDVA"])
    a_isva = _model(store, admin.organisation_id, ["ISVA"])
    b_isva = _model(store, other.organisation_id, ["ISVA"])
    plain = _scenario(store, a_all, admin.organisation_id, "plain")
    shared = _scenario(store, a_all, admin.organisation_id, "shared", shared_with_providers=True)
    public = _scenario(store, a_all, admin.organisation_id, "public", published=True)
    own = _scenario(store, a_isva, admin.organisation_id, "own", owner_id=prov.id)
    b_pub = _scenario(store, b_isva, other.organisation_id, "b", published=True)
    with store.session() as db:
        models = {u.email: {m.id for m in access.visible_models(db, _who(u))} for u in
                  (admin, comm, prov, view, other)}  # fmt: skip
        scen = {u.email: {s.id for s in access.visible_scenarios(db, _who(u))} for u in
                (admin, comm, prov, view, other)}  # fmt: skip
    assert models == {
        "admin@a.org": {a_all, a_isva},
        "comm@a.org": {a_all, a_isva},
        "prov@a.org": {a_isva},  # only the model whose services are all theirs
        "view@a.org": set(),
        "comm@b.org": {b_isva},
    }
    assert scen == {
        "admin@a.org": {plain, shared, public, own},
        "comm@a.org": {plain, shared, public, own},
        "prov@a.org": {shared, own},
        "view@a.org": {public},
        "comm@b.org": {b_pub},
    }
    with store.session() as db:
        for u, model_id in ((comm, b_isva), (other, a_all), (prov, a_all)):
            with pytest.raises(access.NotFound):
                access.get_model(db, _who(u), model_id)
        for u, sid in ((comm, b_pub), (other, public), (view, plain), (prov, plain)):
            with pytest.raises(access.NotFound):
                access.get_scenario(db, _who(u), sid)
        with pytest.raises(access.Forbidden):
            access.get_model(db, _who(view), a_all)


def test_deleting_a_model_deletes_its_scenarios_and_reports(store: Store) -> None:
    u = _user(store, "Org A", "a@example.org", "admin")
    mid = _model(store, u.organisation_id, ["ISVA"])
    sid = _scenario(store, mid, u.organisation_id, "s1")
    with store.session() as db:
        db.add(Report(organisation_id=u.organisation_id, model_id=mid, replicates=10))
    with store.session() as db:
        row = db.get(StoredModel, mid)
        assert row is not None
        db.delete(row)
    with store.session() as db:
        assert db.get(SavedScenario, sid) is None
        assert db.scalars(select(Report)).all() == []


def test_a_scenario_name_is_unique_within_its_model(store: Store) -> None:
    u = _user(store, "Org A", "a@example.org", "admin")
    mid = _model(store, u.organisation_id, ["ISVA"])
    _scenario(store, mid, u.organisation_id, "same")
    with pytest.raises(IntegrityError):
        _scenario(store, mid, u.organisation_id, "same")
    other = _model(store, u.organisation_id, ["ISVA"])
    _scenario(store, other, u.organisation_id, "same")  # another model may reuse it


def test_failed_sign_ins_are_counted_in_their_window(store: Store) -> None:
    u = _user(store, "Org A", "a@example.org", "admin")
    with store.session() as db:
        for _ in range(3):
            store.audit(db, "sign-in", email=u.email, outcome="failed: x", ip="10.0.0.1")
        store.audit(db, "sign-in", email=u.email, outcome="failed: x", ip="10.0.0.2")
        store.audit(db, "sign-in", email="b@example.org", outcome="failed: x", ip="10.0.0.1")
        store.audit(db, "sign-in", user=u, ip="10.0.0.1")  # a success is not a failure
        old = AuditEntry(
            at=utcnow() - dt.timedelta(minutes=16),
            email=u.email,
            action="sign-in",
            outcome="failed: x",
            ip="10.0.0.1",
        )
        db.add(old)
    with store.session() as db:
        # (this email from this address, this email from any, this address for any email)
        assert store.recent_failures(db, "A@example.org", "10.0.0.1", 15) == (3, 4, 4)
        assert store.recent_failures(db, u.email, "10.0.0.1", 20) == (4, 5, 5)
        assert store.recent_failures(db, u.email, "10.0.0.3", 15) == (0, 4, 0)
