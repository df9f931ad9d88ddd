"""Who sees what. Every page and API call asks here; nothing else decides.

- **admin**: everything of their organisation, and its users and audit log.
- **commissioner**: everything of their organisation (models, scenarios, reports, the
  optimiser); publishes scenarios and shares them with providers.
- **provider**: the models whose services are all services they deliver (their own data,
  which they may upload), the scenarios on those models they saved, and the scenarios shared
  with providers.
- **viewer**: published scenarios only.

Nothing of another organisation is ever visible: asking for it by id answers 404, the same as
an id that does not exist, so ids are not confirmed. Within the organisation an object a role
may not see is also 404; an action a role may not take on something it can see is 403.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import or_, select
from sqlalchemy.orm import Session as DbSession

from needsled.web.auth import Principal
from needsled.web.db import AuditEntry, Report, SavedScenario, StoredModel, User
from needsled.web.errors import Forbidden, NotFound

__all__ = [
    "MANAGERS",
    "MODEL_ROLES",
    "audit_entries",
    "can_manage_scenario",
    "get_model",
    "get_report",
    "get_scenario",
    "get_user",
    "require_role",
    "visible_models",
    "visible_scenarios",
]

MANAGERS = ("admin", "commissioner")
MODEL_ROLES = ("admin", "commissioner", "provider")


def require_role(who: Principal, roles: Sequence[str]) -> None:
    if who.role not in roles:
        raise Forbidden()


def provider_may_see(who: Principal, services: Sequence[str]) -> bool:
    """A provider sees a model only when every service in it is one they deliver."""
    return bool(services) and set(services) <= set(who.user.services)


def _model_visible(who: Principal, model: StoredModel) -> bool:
    if model.organisation_id != who.org:
        return False
    if who.role in MANAGERS:
        return True
    return who.role == "provider" and provider_may_see(who, model.services)


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
