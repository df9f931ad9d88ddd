"""Who sees what. Every page and API call asks here; nothing else decides.

- **admin**: everything of their organisation, and its users and audit log.
- **commissioner**: everything of their organisation (models, scenarios, reports, the
  optimiser); publishes scenarios and shares them with providers.
- **provider**: the models that hold only their own data (which they may upload), the
  scenarios on those models they saved, and the scenarios shared with providers. A provider
  with a **provider code** (their code in a model's directory table) owns the services *and
  areas* the directory lists for that code: they see a model when every service and area it
  serves is listed for them, and the returns pages of every model whose directory lists the
  code, showing only their own returns. A provider with services only (no code; as before
  codes existed) owns those services in every area: they see a model when all its services
  are theirs, and no returns (returns belong to a provider code).
- **viewer**: published scenarios only; no returns.

Nothing of another organisation is ever visible: asking for it by id answers 404, the same as
an id that does not exist, so ids are not confirmed. Within the organisation an object a role
may not see is also 404; an action a role may not take on something it can see is 403.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session as DbSession

from needsled.web.auth import Principal
from needsled.web.db import (
    AuditEntry,
    ProviderReturn,
    Report,
    SavedScenario,
    StoredModel,
    User,
)
from needsled.web.errors import Forbidden, NotFound

__all__ = [
    "MANAGERS",
    "MODEL_ROLES",
    "RETURNS_ROLES",
    "audit_entries",
    "can_manage_scenario",
    "get_model",
    "get_report",
    "get_return",
    "get_returns_model",
    "get_scenario",
    "get_user",
    "provider_may_see",
    "require_role",
    "returns_scope",
    "visible_models",
    "visible_returns_models",
    "visible_scenarios",
]

MANAGERS = ("admin", "commissioner")
MODEL_ROLES = ("admin", "commissioner", "provider")
RETURNS_ROLES = ("admin", "commissioner", "provider")
NO_PROVIDER_CODE = (
    "Returns belong to a provider code, and your account has none. Ask an admin of your "
    "organisation to set your provider code (the one in the model's directory table)."
)

Pairs = frozenset[tuple[str, str]]


def require_role(who: Principal, roles: Sequence[str]) -> None:
    if who.role not in roles:
        raise Forbidden()


def directory_pairs(summary: Mapping[str, Any], code: str) -> Pairs:
    """The (service, area) pairs a model's directory lists for a provider code (none when the
    model has no directory, or the code is not in it)."""
    entry = (summary.get("directory") or {}).get(code) or {}
    return frozenset((str(s), str(a)) for s, a in entry.get("pairs", []))


def provider_may_see(who: Principal, services: Sequence[str], summary: Mapping[str, Any]) -> bool:
    """Whether a model holds only a provider's own data. With a provider code: every service
    and area the model serves is one the model's directory lists for the code (a model
    uploaded before the summary held its directory is not shown: upload it again). Without
    one: every service in the model is one of the provider's services, in every area."""
    code = who.user.provider
    if code:
        served = frozenset((str(s), str(a)) for s, a in summary.get("served", []))
        return bool(served) and served <= directory_pairs(summary, code)
    return bool(services) and set(services) <= set(who.user.services)


def _model_visible(who: Principal, model: StoredModel) -> bool:
    if model.organisation_id != who.org:
        return False
    if who.role in MANAGERS:
        return True
    return who.role == "provider" and provider_may_see(who, model.services, model.summary)


def visible_models(db: DbSession, who: Principal) -> list[StoredModel]:
    if who.role not in MODEL_ROLES:
        return []
    rows = db.scalars(
        select(StoredModel)
        .where(StoredModel.organisation_id == who.org)
        .order_by(StoredModel.uploaded_at.desc(), StoredModel.id.desc())
    )
    return [m for m in rows if _model_visible(who, m)]


def get_model(db: DbSession, who: Principal, model_id: int) -> StoredModel:
    """A model the user may see (404 otherwise; 403 for a role that sees no models)."""
    require_role(who, MODEL_ROLES)
    model = db.get(StoredModel, model_id)
    if model is None or not _model_visible(who, model):
        raise NotFound()
    return model


def may_delete_model(who: Principal, model: StoredModel) -> bool:
    return who.role in MANAGERS or model.uploaded_by_id == who.user.id


def _scenario_visible(who: Principal, sc: SavedScenario) -> bool:
    if sc.organisation_id != who.org:
        return False
    if who.role in MANAGERS:
        return True
    if who.role == "provider":
        mine = sc.owner_id == who.user.id and _model_visible(who, sc.model)
        return sc.shared_with_providers or mine
    return who.role == "viewer" and sc.published


def visible_scenarios(
    db: DbSession, who: Principal, model_id: int | None = None
) -> list[SavedScenario]:
    q = select(SavedScenario).where(SavedScenario.organisation_id == who.org)
    if model_id is not None:
        q = q.where(SavedScenario.model_id == model_id)
    if who.role == "viewer":
        q = q.where(SavedScenario.published.is_(True))
    elif who.role == "provider":
        q = q.where(
            or_(
                SavedScenario.shared_with_providers.is_(True), SavedScenario.owner_id == who.user.id
            )
        )
    rows = db.scalars(q.order_by(SavedScenario.updated_at.desc(), SavedScenario.id.desc()))
    return [s for s in rows if _scenario_visible(who, s)]


def get_scenario(db: DbSession, who: Principal, scenario_id: int) -> SavedScenario:
    sc = db.get(SavedScenario, scenario_id)
    if sc is None or not _scenario_visible(who, sc):
        raise NotFound()
    return sc


def can_manage_scenario(who: Principal, sc: SavedScenario) -> bool:
    """Rename or delete: managers, and the provider who saved it."""
    return who.role in MANAGERS or (who.role == "provider" and sc.owner_id == who.user.id)


def get_report(db: DbSession, who: Principal, report_id: int) -> tuple[Report, StoredModel]:
    require_role(who, MODEL_ROLES)
    rep = db.get(Report, report_id)
    if rep is None or rep.organisation_id != who.org:
        raise NotFound()
    model = db.get(StoredModel, rep.model_id)
    if model is None or not _model_visible(who, model):
        raise NotFound()
    return rep, model


def get_user(db: DbSession, who: Principal, user_id: int) -> User:
    require_role(who, ("admin",))
    user = db.get(User, user_id)
    if user is None or user.organisation_id != who.org:
        raise NotFound()
    return user


def audit_entries(db: DbSession, who: Principal, limit: int = 500) -> list[AuditEntry]:
    """The organisation's audit log, newest first (admins only)."""
    require_role(who, ("admin",))
    rows = db.scalars(
        select(AuditEntry)
        .where(AuditEntry.organisation_id == who.org)
        .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
        .limit(limit)
    )
    return list(rows)


# provider returns ----------------------------------------------------------------------------


def _returns_role(who: Principal) -> None:
    require_role(who, RETURNS_ROLES)
    if who.role == "provider" and not who.user.provider:
        raise Forbidden(NO_PROVIDER_CODE)


def get_returns_model(db: DbSession, who: Principal, model_id: int) -> StoredModel:
    """A model of the organisation, for its returns pages (403 for a role without returns;
    404 for another organisation's model). Whether a provider's code is in the model's
    directory is :func:`returns_scope`'s to say, once the directory is known."""
    _returns_role(who)
    model = db.get(StoredModel, model_id)
    if model is None or model.organisation_id != who.org:
        raise NotFound()
    return model


def returns_scope(who: Principal, summary: Mapping[str, Any]) -> str | None:
    """Whose returns of a model the user sees: ``None`` for every provider's (admins and
    commissioners), else the provider's own code. A provider whose code the model's directory
    does not list gets 404: the model is nothing of theirs."""
    _returns_role(who)
    if who.role in MANAGERS:
        return None
    code = who.user.provider or ""
    if not directory_pairs(summary, code):
        raise NotFound()
    return code


def visible_returns_models(db: DbSession, who: Principal) -> list[StoredModel]:
    """The models whose returns the user may open: all the organisation's for managers; for a
    provider, those whose directory lists their code."""
    _returns_role(who)
    rows = db.scalars(
        select(StoredModel)
        .where(StoredModel.organisation_id == who.org)
        .order_by(StoredModel.uploaded_at.desc(), StoredModel.id.desc())
    )
    if who.role in MANAGERS:
        return list(rows)
    code = who.user.provider or ""
    return [m for m in rows if directory_pairs(m.summary, code)]


def get_return(db: DbSession, who: Principal, return_id: int) -> ProviderReturn:
    """One stored return: a manager's of the organisation; a provider's only when it is their
    own code's, for a model whose directory lists them (404 otherwise: another provider's
    return is not confirmed to exist)."""
    _returns_role(who)
    row = db.get(ProviderReturn, return_id)
    if row is None or row.organisation_id != who.org:
        raise NotFound()
    if who.role in MANAGERS:
        return row
    model = db.get(StoredModel, row.model_id)
    if model is None or row.provider != who.user.provider:
        raise NotFound()
    returns_scope(who, model.summary)
    return row
