"""Models and the explorer, for both the pages and the JSON API: each function takes the
signed-in user, asks :mod:`needsled.web.access` whether they may, does it, and writes the
audit log. Routes only parse requests and render answers. (Saved scenarios are in
:mod:`~needsled.web.saved`, reports and plans in :mod:`~needsled.web.runs`, users and tokens in
:mod:`~needsled.web.accounts`.)"""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any

from sqlalchemy import select

from needsled.model import Model
from needsled.web import access
from needsled.web.auth import Principal
from needsled.web.db import Report, StoredModel, utcnow
from needsled.web.errors import Forbidden, NotFound, ValidationFailed
from needsled.web.state import AppState
from needsled.web.uploads import model_summary, pack, safe_name, validate_archive

__all__ = [
    "base_scenario",
    "clean_settings",
    "delete_model",
    "evaluate",
    "explorer_for",
    "levers",
    "loaded_model",
    "model_for",
    "queue_evaluation",
    "upload_model",
    "warm",
]


# models -----------------------------------------------------------------------------------


def loaded_model(app: AppState, stored: StoredModel) -> Model:
    return app.models.model(stored.id, stored.sha256, stored.name, _archive(app, stored.id))


@contextmanager
def audit_refusal(app: AppState, who: Principal, obj: str, ip: str) -> Iterator[None]:
    """Audit an upload the block refuses (ValidationFailed: "refused: N problem(s)"), then
    let the refusal go on."""
    try:
        yield
    except ValidationFailed as exc:
        with app.store.session() as db:
            app.store.audit(
                db,
                "upload",
                user=who.user,
                obj=obj,
                outcome=f"refused: {len(exc.problems)} problem(s)",
                ip=ip,
            )
        raise


def upload_model(
    app: AppState, who: Principal, name: str, files: Sequence[tuple[str, bytes]], ip: str
) -> StoredModel:
    """Validate and store an upload; ValidationFailed lists every problem (nothing stored)."""
    access.require_role(who, ("admin", "commissioner", "provider"))
    total = sum(len(b) for _, b in files)
    limit = app.config.max_upload_bytes
    with audit_refusal(app, who, f"model {safe_name(name, 'upload')}", ip):
        if total > limit:
            raise ValidationFailed(
                "The upload is too large.",
                [
                    {
                        "file": "upload",
                        "message": f"the files come to {total / 1e6:.1f} MB, more than "
                        f"{limit / 1e6:.0f} MB",
                        "fix": "upload only the model's tables (counts, not records)",
                    }
                ],
            )
        packed = pack(files)
        model = validate_archive(packed.archive, app.config.data_dir / "cache" / "uploads")
        services = list(model.services.codes)
        summary = model_summary(model)
        if who.role == "provider" and not access.provider_may_see(who, services, summary):
            raise ValidationFailed(
                "This model holds data that is not yours; nothing was stored.",
                [_not_yours(who, services, summary)],
            )
    display = safe_name(name or model.name, "model")
    with app.store.session() as db:
        row = StoredModel(
            organisation_id=who.org,
            name=display,
            filename=safe_name(packed.filename, "upload")[:255],
            archive=packed.archive,
            sha256=packed.sha256,
            size_bytes=len(packed.archive),
            services=services,
            summary=summary,
            uploaded_by_id=who.user.id,
            uploaded_at=utcnow(),
        )
        db.add(row)
        db.flush()
        app.store.audit(db, "upload", user=who.user, obj=f"model {row.id} {display}", ip=ip)
        db.expunge(row)
    warm(app, row)
    return row


def _not_yours(
    who: Principal, services: Sequence[str], summary: Mapping[str, Any]
) -> dict[str, str]:
    """Why a provider may not upload a model: which of its services (and areas) are not theirs."""
    code = who.user.provider
    if not code:
        others = sorted(set(services) - set(who.user.services))
        return {
            "file": "services table",
            "message": f"services {', '.join(others)} are not yours (you deliver "
            f"{', '.join(who.user.services)})",
            "fix": "upload a model with only your own services' rows",
        }
    mine = access.directory_pairs(summary, code)
    others = [f"{s} in {a}" for s, a in summary.get("served", []) if (s, a) not in mine]
    if not mine:
        return {
            "file": "directory table",
            "message": f"the model's directory table does not list your provider code {code}",
            "fix": "add your rows to the directory table, or ask your commissioner to upload "
            "the model",
        }
    return {
        "file": "directory table",
        "message": f"the directory lists other providers for {', '.join(others[:10])}"
        + (f" and {len(others) - 10} more" if len(others) > 10 else ""),
        "fix": f"upload a model with only the services and areas the directory lists for {code}",
    }


def delete_model(app: AppState, who: Principal, model_id: int, ip: str) -> None:
    with app.store.session() as db:
        model = access.get_model(db, who, model_id)
        if not access.may_delete_model(who, model):
            raise Forbidden()
        reports = list(db.scalars(select(Report.id).where(Report.model_id == model_id)))
        sha = model.sha256
        db.delete(model)
        app.store.audit(db, "delete", user=who.user, obj=f"model {model_id}", ip=ip)
    app.models.forget(model_id)
    shutil.rmtree(app.models.folder(model_id, sha), ignore_errors=True)
    for rid in reports:
        shutil.rmtree(app.jobs.folder(rid), ignore_errors=True)


def model_for(app: AppState, who: Principal, model_id: int) -> StoredModel:
    with app.store.session() as db:
        model = access.get_model(db, who, model_id)
        db.expunge(model)
        return model


def _archive(app: AppState, model_id: int) -> Callable[[], bytes]:
    def archive() -> bytes:
        with app.store.session() as db:
            row = db.get(StoredModel, model_id)
            if row is None:
                raise NotFound()
            return row.archive

    return archive


def explorer_for(app: AppState, stored: StoredModel) -> Any:
    return app.models.explorer(stored.id, stored.sha256, stored.name, _archive(app, stored.id))


def warm(app: AppState, stored: StoredModel) -> None:
    if app.config.warm_explorers:
        app.models.warm(stored.id, stored.sha256, stored.name, _archive(app, stored.id))


def levers(app: AppState, stored: StoredModel) -> list[dict[str, Any]]:
    return app.models.levers(stored.id, stored.sha256, stored.name, _archive(app, stored.id))


def clean_settings(
    lever_list: Sequence[Mapping[str, Any]], settings: Mapping[str, Any]
) -> dict[str, float]:
    """The settings as numbers within each lever's range; 422 naming every bad one."""
    known = {str(lv["name"]): lv for lv in lever_list}
    problems = []
    out: dict[str, float] = {}
    for key, raw in settings.items():
        lv = known.get(str(key))
        if lv is None:
            problems.append(
                {
                    "file": "settings",
                    "column": str(key)[:60],
                    "message": "is not a lever of this model",
                    "fix": f"use one of: {', '.join(known)}",
                }
            )
            continue
        try:
            value = float(raw)
        except (TypeError, ValueError):
            value = math.nan
        lo, hi = float(lv["min"]), float(lv["max"])
        if not math.isfinite(value) or not lo <= value <= hi:
            problems.append(
                {
                    "file": "settings",
                    "column": str(key),
                    "value": str(raw)[:40],
                    "message": f"is not a number from {lo:g} to {hi:g}",
                    "fix": f"give {lv.get('label', key)} between {lo:g} and {hi:g}",
                }
            )
            continue
        out[str(key)] = value
    if problems:
        raise ValidationFailed("Some settings cannot be used.", problems)
    return out


def base_scenario(stored: StoredModel, scenario: str | None) -> str | None:
    if scenario in (None, ""):
        return None
    names = [s[0] for s in stored.summary.get("scenarios", [])]
    if scenario not in names:
        raise ValidationFailed(
            "No such scenario in this model.",
            [
                {
                    "file": "scenario",
                    "value": str(scenario)[:60],
                    "message": "is not a scenario of this model",
                    "fix": f"use one of: {', '.join(names)}",
                }
            ],
        )
    return scenario


def _explain(exc: ValueError) -> ValidationFailed:
    lines = [ln.strip("- ").strip() for ln in str(exc).splitlines() if ln.strip()]
    head, rest = (lines[0], lines[1:]) if len(lines) > 1 else ("", lines)
    return ValidationFailed(
        head or "The explorer cannot use these settings.",
        [{"file": "settings", "message": m, "fix": "change this setting"} for m in rest],
    )


def evaluate(
    app: AppState,
    stored: StoredModel,
    scenario: str | None,
    settings: Mapping[str, Any],
    *,
    preview: bool = False,
) -> dict[str, Any]:
    """The explorer's result for these settings; ``preview``: its fast deterministic-only
    result (no 80% band), for the page to show while the full one is worked out."""
    ex = explorer_for(app, stored)
    clean = clean_settings(ex.levers(), settings)
    base = base_scenario(stored, scenario)
    run = ex.preview if preview and hasattr(ex, "preview") else ex.evaluate
    try:
        result: dict[str, Any] = run(base, clean)
    except ValueError as exc:
        raise _explain(exc) from None
    return result


def queue_evaluation(
    app: AppState,
    who: Principal,
    stored: StoredModel,
    scenario: str | None,
    settings: Mapping[str, Any],
    *,
    preview: bool = False,
) -> Future[dict[str, Any]]:
    """:func:`evaluate` through the slider lanes (:mod:`needsled.web.sliders`): settings and
    scenario are checked now (422 at once), the explorer is built now if it is not yet (so
    that building one model's explorer never holds up another's lane); then the computation
    waits its turn, shared with identical requests, and is dropped if a newer request from
    the same browser session supersedes it before it starts."""
    explorer = explorer_for(app, stored)
    lever_list = explorer.levers()
    clean = clean_settings(lever_list, settings)
    base = base_scenario(stored, scenario)
    try:
        heavy = not preview and explorer.heavy(base, clean)
    except ValueError as exc:
        raise _explain(exc) from None
    filled = {str(lv["name"]): float(lv["default"]) for lv in lever_list} | clean
    every = tuple(sorted(filled.items()))
    key = (stored.id, stored.sha256, base, preview, every)
    owner = None if who.session_id is None else (who.session_id, stored.id)
    return app.sliders.submit(
        key,
        preview=preview,
        owner=owner,
        settings=(base, every),
        compute=lambda: evaluate(app, stored, base, clean, preview=preview),
        heavy=heavy,
    )
