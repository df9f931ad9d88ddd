"""Report runs and optimiser plans: start them in the background, see them, download a
report's files (for the pages and the API, like :mod:`needsled.web.actions`)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from needsled.web import access
from needsled.web.actions import base_scenario, loaded_model, model_for
from needsled.web.auth import Principal
from needsled.web.db import PlanRun, Report, utcnow
from needsled.web.errors import NotFound
from needsled.web.planning import PlanSettings
from needsled.web.state import AppState

__all__ = ["plan_for", "report_file", "report_for", "reports_of", "start_plan", "start_report"]


# reports and plans ------------------------------------------------------------------------


def start_report(app: AppState, who: Principal, model_id: int, ip: str) -> Report:
    stored = model_for(app, who, model_id)
    reps = app.config.report_replicates
    with app.store.session() as db:
        row = Report(
            organisation_id=who.org,
            model_id=model_id,
            requested_by_id=who.user.id,
            status="queued",
            replicates=reps,
            files=[],
            message="",
            created_at=utcnow(),
        )
        db.add(row)
        db.flush()
        app.store.audit(db, "run", user=who.user, obj=f"report {row.id} of model {model_id}", ip=ip)
        db.expunge(row)
    app.jobs.submit(row.id, lambda: loaded_model(app, stored), reps, app.config.seed)
    return row


def report_for(app: AppState, who: Principal, report_id: int) -> Report:
    with app.store.session() as db:
        rep, _model = access.get_report(db, who, report_id)
        db.expunge(rep)
        return rep


def report_file(app: AppState, who: Principal, report_id: int, name: str, ip: str) -> Path:
    """A file of a finished report (only names the run listed: no path from the request)."""
    with app.store.session() as db:
        rep, _model = access.get_report(db, who, report_id)
        if rep.status != "done" or name not in rep.files:
            raise NotFound()
        app.store.audit(db, "download", user=who.user, obj=f"report {report_id} {name}", ip=ip)
    path = app.jobs.folder(report_id) / name
    if not path.is_file():
        raise NotFound("The file is no longer on the server; make the report again.")
    return path


def reports_of(app: AppState, who: Principal, model_id: int) -> list[Report]:
    with app.store.session() as db:
        access.get_model(db, who, model_id)
        rows = list(
            db.scalars(
                select(Report)
                .where(Report.model_id == model_id, Report.organisation_id == who.org)
                .order_by(Report.id.desc())
                .limit(20)
            )
        )
        for r in rows:
            db.expunge(r)
        return rows


def start_plan(
    app: AppState, who: Principal, model_id: int, settings: PlanSettings, ip: str
) -> PlanRun:
    stored = model_for(app, who, model_id)
    names = [s[0] for s in stored.summary.get("scenarios", [])]
    if settings.scenario is not None and settings.scenario not in names:
        base_scenario(stored, settings.scenario)
    with app.store.session() as db:
        row = PlanRun(
            organisation_id=who.org,
            model_id=model_id,
            requested_by_id=who.user.id,
            settings=settings.__dict__.copy(),
            status="queued",
            message="",
            result={},
            created_at=utcnow(),
        )
        db.add(row)
        db.flush()
        app.store.audit(db, "run", user=who.user, obj=f"plan {row.id} of model {model_id}", ip=ip)
        db.expunge(row)
    key = (stored.id, stored.sha256)
    app.jobs.submit_plan(row.id, key, lambda: loaded_model(app, stored), settings, app.config.seed)
    return row


def plan_for(app: AppState, who: Principal, plan_id: int) -> PlanRun:
    with app.store.session() as db:
        row = db.get(PlanRun, plan_id)
        if row is None or row.organisation_id != who.org:
            raise NotFound()
        access.get_model(db, who, row.model_id)
        db.expunge(row)
        return row
