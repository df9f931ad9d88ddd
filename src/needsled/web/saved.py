"""Saved scenarios: save, see, share and publish, delete, and their results through the
explorer (for the pages and the API, like :mod:`needsled.web.actions`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.exc import IntegrityError

from needsled.web import access
from needsled.web.actions import base_scenario, clean_settings, evaluate, levers, model_for
from needsled.web.auth import Principal
from needsled.web.db import SavedScenario, StoredModel, utcnow
from needsled.web.errors import BadRequest, Forbidden, NotFound, Unavailable, ValidationFailed
from needsled.web.state import AppState
from needsled.web.store import clean_text

__all__ = [
    "delete_scenario",
    "lever_labels",
    "parse_ids",
    "save_scenario",
    "scenario_for",
    "scenario_results",
    "share_scenario",
]


# scenarios --------------------------------------------------------------------------------


def _scenario_problem(message: str, fix: str) -> ValidationFailed:
    return ValidationFailed(
        "The scenario cannot be saved.", [{"file": "scenario", "message": message, "fix": fix}]
    )


def save_scenario(
    app: AppState,
    who: Principal,
    model_id: int,
    name: str,
    base: str | None,
    settings: Mapping[str, Any],
    ip: str,
) -> SavedScenario:
    access.require_role(who, ("admin", "commissioner", "provider"))
    stored = model_for(app, who, model_id)
    name = clean_text(name, 121)
    if not 1 <= len(name) <= 120:
        raise _scenario_problem("a scenario needs a name", "give it a name of 1 to 120 characters")
    lever_list = levers(app, stored)
    clean = clean_settings(lever_list, settings)
    evaluate(app, stored, base, clean, preview=True)  # the explorer's own checks, all at once
    defaults = {str(lv["name"]): float(lv["default"]) for lv in lever_list}
    clean = {k: v for k, v in clean.items() if v != defaults.get(k)}  # only what was moved
    now = utcnow()
    try:
        with app.store.session() as db:
            row = SavedScenario(
                organisation_id=who.org,
                model_id=model_id,
                name=name,
                base=base_scenario(stored, base),
                settings=clean,
                owner_id=who.user.id,
                shared_with_providers=False,
                published=False,
                created_at=now,
                updated_at=now,
            )
            db.add(row)
            db.flush()
            app.store.audit(db, "save scenario", user=who.user, obj=f"scenario {row.id}", ip=ip)
            db.expunge(row)
    except IntegrityError:
        raise _scenario_problem(
            f"this model already has a scenario called {name!r}", "choose another name"
        ) from None
    return row


def scenario_for(app: AppState, who: Principal, scenario_id: int) -> SavedScenario:
    with app.store.session() as db:
        sc = access.get_scenario(db, who, scenario_id)
        db.expunge(sc)
        return sc


def share_scenario(
    app: AppState,
    who: Principal,
    scenario_id: int,
    *,
    published: bool | None,
    shared: bool | None,
    ip: str,
) -> SavedScenario:
    """Publish to viewers and/or share with providers: a permission change (audited)."""
    with app.store.session() as db:
        sc = access.get_scenario(db, who, scenario_id)
        access.require_role(who, access.MANAGERS)
        changes = []
        if published is not None and published != sc.published:
            sc.published = published
            changes.append("published" if published else "unpublished")
        if shared is not None and shared != sc.shared_with_providers:
            sc.shared_with_providers = shared
            changes.append("shared with providers" if shared else "not shared with providers")
        if changes:
            sc.updated_at = utcnow()
            app.store.audit(
                db,
                "permission change",
                user=who.user,
                obj=f"scenario {sc.id}",
                outcome="; ".join(changes),
                ip=ip,
            )
        db.flush()
        db.expunge(sc)
        return sc


def delete_scenario(app: AppState, who: Principal, scenario_id: int, ip: str) -> None:
    with app.store.session() as db:
        sc = access.get_scenario(db, who, scenario_id)
        if not access.can_manage_scenario(who, sc):
            raise Forbidden()
        db.delete(sc)
        app.store.audit(db, "delete", user=who.user, obj=f"scenario {scenario_id}", ip=ip)


def lever_labels(app: AppState, model_id: int) -> dict[str, str]:
    """Each lever's label with its unit, for showing saved settings in words (empty when the
    explorer is not installed: the pages then show the settings' names)."""
    with app.store.session() as db:
        stored = db.get(StoredModel, model_id)
        if stored is None:
            return {}
        db.expunge(stored)
    try:
        found = levers(app, stored)
    except Unavailable:
        return {}
    return {
        str(lv["name"]): str(lv.get("label", lv["name"]))
        + (f" ({lv['unit']})" if lv.get("unit") else "")
        for lv in found
    }


def scenario_results(app: AppState, who: Principal, scenario_id: int) -> dict[str, Any]:
    """A saved scenario through the explorer (its model is loaded on the server; a viewer
    sees the scenario's results, never the model itself)."""
    sc = scenario_for(app, who, scenario_id)
    with app.store.session() as db:
        stored = db.get(StoredModel, sc.model_id)
        if stored is None:
            raise NotFound()
        db.expunge(stored)
    return evaluate(app, stored, sc.base, sc.settings)


def parse_ids(text: Sequence[str]) -> list[int]:
    ids: list[int] = []
    for part in text:
        for piece in str(part).split(","):
            if piece.strip():
                digits = piece.strip()
                if not (digits.isascii() and digits.isdigit()) or len(digits) > 9:
                    raise BadRequest(f"{piece.strip()!r} is not a scenario number")
                ids.append(int(piece))
    ids = list(dict.fromkeys(ids))
    if not 1 <= len(ids) <= 4:
        raise BadRequest("Choose from one to four scenarios to compare.")
    return ids
