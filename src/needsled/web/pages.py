"""The pages: server-rendered HTML forms; each POST answers with a redirect (or the form again
with its problems). The work is done in :mod:`needsled.web.actions`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from needsled.web import access, accounts, actions, provider_returns, runs, saved
from needsled.web.auth import CurrentUser, OptionalUser, client_ip, end_session, start_session
from needsled.web.errors import BadRequest, RateLimited, ValidationFailed
from needsled.web.planning import PlanSettings
from needsled.web.render import local_path, render
from needsled.web.security import DISPLAY_COOKIE, PRE_COOKIE, SESSION_COOKIE, cookie_secure
from needsled.web.state import state_of

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
Id = Annotated[int, Path(ge=1, le=2_147_483_647)]
LEVER_PREFIX = "lever:"


def _see(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


@router.get("/", response_class=HTMLResponse)
def home(who: OptionalUser, request: Request) -> Response:
    if who is None:
        return _see("/signin")
    app = state_of(request)
    with app.store.session() as db:
        models = access.visible_models(db, who)
        scenarios = access.visible_scenarios(db, who)
    return render(request, "home.html.j2", models=models, scenarios=scenarios)


# signing in and out, display size ---------------------------------------------------------


@router.get("/signin", response_class=HTMLResponse)
def signin_form(who: OptionalUser, request: Request, next: str = "/") -> Response:
    if who is not None:
        return _see(local_path(next))
    return render(request, "signin.html.j2", next=local_path(next), message="", email="")


@router.post("/signin", response_class=HTMLResponse)
def signin(
    request: Request,
    email: Annotated[str, Form(max_length=320)],
    password: Annotated[str, Form(max_length=1024)],
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    app = state_of(request)
    ip = client_ip(request)
    try:
        user = accounts.authenticate(app, email, password, ip)
    except (BadRequest, RateLimited) as exc:
        return render(
            request,
            "signin.html.j2",
            status=exc.status,
            next=local_path(next),
            message=exc.message,
            email=email[:320],
        )
    cookie, _csrf = start_session(app, request, user.id)
    response = _see(local_path(next))
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        max_age=int(app.config.session_hours * 3600),
        httponly=True,
        secure=cookie_secure(request, app.config.insecure_cookies),
        samesite="lax",
        path="/",
    )
    response.delete_cookie(PRE_COOKIE, path="/")
    return response


@router.post("/signout")
def signout(who: CurrentUser, request: Request) -> Response:
    app = state_of(request)
    end_session(app, who)
    with app.store.session() as db:
        app.store.audit(db, "sign-out", user=who.user, ip=client_ip(request))
    response = _see("/signin")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.post("/display")
def display(
    request: Request,
    size: Annotated[str, Form(max_length=10)] = "normal",
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    """Large type for a projector, or normal type; kept in a cookie for a year."""
    response = _see(local_path(next))
    response.set_cookie(
        DISPLAY_COOKIE,
        "large" if size == "large" else "normal",
        max_age=365 * 86400,
        httponly=True,
        secure=cookie_secure(request, state_of(request).config.insecure_cookies),
        samesite="lax",
        path="/",
    )
    return response


# models -----------------------------------------------------------------------------------


def _models_page(request: Request, who: Any, status: int = 200, **extra: Any) -> HTMLResponse:
    app = state_of(request)
    access.require_role(who, ("admin", "commissioner", "provider"))
    with app.store.session() as db:
        models = access.visible_models(db, who)
    context: dict[str, Any] = {"problems": [], "message": "", "name": ""} | extra
    return render(request, "models.html.j2", status=status, models=models, **context)


@router.get("/models", response_class=HTMLResponse)
def models_page(who: CurrentUser, request: Request) -> Response:
    return _models_page(request, who)


@router.post("/models", response_class=HTMLResponse)
async def upload_model(
    who: CurrentUser,
    request: Request,
    files: Annotated[list[UploadFile], File()],
    name: Annotated[str, Form(max_length=120)] = "",
) -> Response:
    app = state_of(request)
    limit = app.config.max_upload_bytes
    got = [(f.filename or "", await f.read(limit + 1)) for f in files[:200]]
    try:
        stored = await run_in_threadpool(
            actions.upload_model, app, who, name, got, client_ip(request)
        )
    except ValidationFailed as exc:
        return _models_page(
            request, who, status=422, problems=exc.problems, message=exc.message, name=name
        )
    return _see(f"/models/{stored.id}")


@router.get("/models/{model_id}", response_class=HTMLResponse)
def model_page(model_id: Id, who: CurrentUser, request: Request) -> Response:
    app = state_of(request)
    stored = actions.model_for(app, who, model_id)
    with app.store.session() as db:
        scenarios = access.visible_scenarios(db, who, model_id)
    reports = runs.reports_of(app, who, model_id)
    actions.warm(app, stored)
    return render(
        request,
        "model.html.j2",
        model=stored,
        scenarios=scenarios,
        reports=reports,
        may_delete=access.may_delete_model(who, stored),
    )


@router.post("/models/{model_id}/delete")
def delete_model(
    model_id: Id,
    who: CurrentUser,
    request: Request,
    confirm: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    if confirm != "on":
        raise BadRequest("Tick the box to say you mean to delete the model, then press Delete.")
    actions.delete_model(state_of(request), who, model_id, client_ip(request))
    return _see("/models")


# the explorer and scenarios ---------------------------------------------------------------


@router.get("/models/{model_id}/explore", response_class=HTMLResponse)
def explore(
    model_id: Id,
    who: CurrentUser,
    request: Request,
    scenario: Annotated[str | None, Query(max_length=200)] = None,
    start: Annotated[int | None, Query(alias="from", ge=1, le=2_147_483_647)] = None,
) -> Response:
    app = state_of(request)
    stored = actions.model_for(app, who, model_id)
    earlier = None if start is None else saved.scenario_for(app, who, start)
    if earlier is not None and earlier.model_id != model_id:
        raise BadRequest("That saved scenario belongs to another model.")
    lever_list = actions.levers(app, stored)
    values = {str(lv["name"]): lv["default"] for lv in lever_list}
    base = scenario
    if earlier is not None:
        values |= earlier.settings
        base = earlier.base
    with app.store.session() as db:
        app.store.audit(
            db, "explore", user=who.user, obj=f"model {model_id}", ip=client_ip(request)
        )
    ready = app.models.ready(stored.id, stored.sha256)
    actions.warm(app, stored)
    return render(
        request,
        "explore.html.j2",
        model=stored,
        ready=ready,
        levers=lever_list,
        values=values,
        base=base or "",
        base_scenarios=stored.summary.get("scenarios", []),
    )


def _lever_fields(form: Any) -> dict[str, str]:
    return {
        str(k)[len(LEVER_PREFIX) :]: str(v)
        for k, v in form.multi_items()
        if str(k).startswith(LEVER_PREFIX) and isinstance(v, str)
    }


@router.post("/models/{model_id}/scenarios")
async def save_scenario(
    model_id: Id,
    who: CurrentUser,
    request: Request,
    name: Annotated[str, Form(max_length=120)],
    base: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Save the explorer's settings under a name (fields ``lever:<name>``)."""
    form = await request.form()
    settings = _lever_fields(form)
    made = await run_in_threadpool(
        saved.save_scenario,
        state_of(request),
        who,
        model_id,
        name,
        base or None,
        settings,
        client_ip(request),
    )
    return _see(f"/scenarios/{made.id}")


@router.get("/scenarios", response_class=HTMLResponse)
def scenarios_page(who: CurrentUser, request: Request) -> Response:
    with state_of(request).store.session() as db:
        scenarios = access.visible_scenarios(db, who)
    return render(request, "scenarios.html.j2", scenarios=scenarios)


@router.get("/scenarios/{scenario_id}", response_class=HTMLResponse)
def scenario_page(scenario_id: Id, who: CurrentUser, request: Request) -> Response:
    app = state_of(request)
    sc = saved.scenario_for(app, who, scenario_id)
    return render(
        request,
        "scenario.html.j2",
        scenario=sc,
        labels=saved.lever_labels(app, sc.model_id),
        may_share=who.role in access.MANAGERS,
        may_delete=access.can_manage_scenario(who, sc),
        may_explore=who.role in ("admin", "commissioner", "provider")
        and (
            who.role != "provider"
            or access.provider_may_see(who, sc.model.services, sc.model.summary)
        ),
    )


@router.post("/scenarios/{scenario_id}/sharing")
async def share_scenario(scenario_id: Id, who: CurrentUser, request: Request) -> Response:
    form = await request.form()
    saved.share_scenario(
        state_of(request),
        who,
        scenario_id,
        published=form.get("published") == "on",
        shared=form.get("shared_with_providers") == "on",
        ip=client_ip(request),
    )
    return _see(f"/scenarios/{scenario_id}")


@router.post("/scenarios/{scenario_id}/delete")
def delete_scenario(scenario_id: Id, who: CurrentUser, request: Request) -> Response:
    saved.delete_scenario(state_of(request), who, scenario_id, client_ip(request))
    return _see("/scenarios")


@router.get("/compare", response_class=HTMLResponse)
def compare(
    who: CurrentUser,
    request: Request,
    ids: Annotated[list[str] | None, Query(max_length=4)] = None,
) -> Response:
    app = state_of(request)
    chosen = [saved.scenario_for(app, who, i) for i in saved.parse_ids(ids or [])]
    labels: dict[str, str] = {}
    for model_id in {sc.model_id for sc in chosen}:
        labels |= saved.lever_labels(app, model_id)
    return render(request, "compare.html.j2", scenarios=chosen, labels=labels)


# the optimiser ----------------------------------------------------------------------------


@router.get("/models/{model_id}/optimise", response_class=HTMLResponse)
def optimise_page(model_id: Id, who: CurrentUser, request: Request) -> Response:
    stored = actions.model_for(state_of(request), who, model_id)
    return render(
        request,
        "optimise.html.j2",
        model=stored,
        base_scenarios=stored.summary.get("scenarios", []),
        defaults=PlanSettings(),
    )


def _number(form: Any, key: str, lo: float, hi: float, default: float | None) -> float | None:
    raw = str(form.get(key) or "").strip().replace(",", "").replace("£", "")
    if not raw:
        return default
    scale = 1.0
    if raw[-1:].lower() in ("k", "m"):
        scale = 1e3 if raw[-1].lower() == "k" else 1e6
        raw = raw[:-1]
    try:
        value = float(raw) * scale
    except ValueError:
        value = float("nan")
    if not lo <= value <= hi:
        raise ValidationFailed(
            "The optimiser settings cannot be used.",
            [
                {
                    "file": "form",
                    "column": key,
                    "value": str(form.get(key))[:40],
                    "message": f"is not a number from {lo:g} to {hi:g}",
                    "fix": "correct it and run again",
                }
            ],
        )
    return value


@router.post("/models/{model_id}/optimise")
async def start_plan(model_id: Id, who: CurrentUser, request: Request) -> Response:
    form = await request.form()
    budget_m = _number(form, "budget_m", 0.001, 1e5, None)
    floor_pc = _number(form, "equity_floor_pc", 0, 100, 0.0) or 0.0
    steps = _number(form, "curve_steps", 0, 8, 3.0) or 0.0
    years = _number(form, "years", 1, 10, 3.0) or 3.0
    scenario = str(form.get("scenario") or "") or None
    settings = PlanSettings(
        scenario=scenario,
        budget=None if budget_m is None else budget_m * 1e6,
        equity_floor=floor_pc / 100.0,
        years=int(years),
        curve_steps=int(steps),
    )
    row = runs.start_plan(state_of(request), who, model_id, settings, client_ip(request))
    return _see(f"/plans/{row.id}")


@router.get("/plans/{plan_id}", response_class=HTMLResponse)
def plan_page(plan_id: Id, who: CurrentUser, request: Request) -> Response:
    app = state_of(request)
    row = runs.plan_for(app, who, plan_id)
    stored = actions.model_for(app, who, row.model_id)
    return render(request, "plan.html.j2", plan=row, model=stored)


# reports ----------------------------------------------------------------------------------


@router.post("/models/{model_id}/reports")
def start_report(model_id: Id, who: CurrentUser, request: Request) -> Response:
    row = runs.start_report(state_of(request), who, model_id, client_ip(request))
    return _see(f"/reports/{row.id}")


@router.get("/reports/{report_id}", response_class=HTMLResponse)
def report_page(report_id: Id, who: CurrentUser, request: Request) -> Response:
    app = state_of(request)
    rep = runs.report_for(app, who, report_id)
    stored = actions.model_for(app, who, rep.model_id)
    return render(request, "report.html.j2", report=rep, model=stored)


@router.get("/reports/{report_id}/files/{name:path}")
def report_file(
    report_id: Id,
    name: Annotated[str, Path(max_length=200)],
    who: CurrentUser,
    request: Request,
) -> Response:
    path = runs.report_file(state_of(request), who, report_id, name, client_ip(request))
    return FileResponse(path, filename=path.name)


# provider returns ---------------------------------------------------------------------------


@router.get("/returns", response_class=HTMLResponse)
def returns_index(who: CurrentUser, request: Request) -> Response:
    models = provider_returns.returns_models(state_of(request), who)
    return render(request, "returns_index.html.j2", models=models)


def _returns_page(
    request: Request, who: Any, model_id: int, status: int = 200, **extra: Any
) -> HTMLResponse:
    app = state_of(request)
    view = provider_returns.returns_view(app, who, model_id)
    tables = provider_returns.tables_of(view.returns)
    context: dict[str, Any] = {"problems": [], "message": "", "done": ""} | extra
    return render(
        request,
        "returns.html.j2",
        status=status,
        view=view,
        tables=provider_returns.page_tables(tables),
        **context,
    )


@router.get("/models/{model_id}/returns", response_class=HTMLResponse)
def returns_page(
    model_id: Id,
    who: CurrentUser,
    request: Request,
    done: Annotated[int | None, Query(ge=0, le=100_000)] = None,
) -> Response:
    shown = "" if done is None else f"{done} return(s) stored."
    return _returns_page(request, who, model_id, done=shown)


@router.post("/models/{model_id}/returns", response_class=HTMLResponse)
async def upload_returns(
    model_id: Id,
    who: CurrentUser,
    request: Request,
    files: Annotated[list[UploadFile], File()],
) -> Response:
    app = state_of(request)
    limit = app.config.max_upload_bytes
    most = provider_returns.MAX_RETURN_FILES + 1  # one more, to be refused
    got = [(f.filename or "", await f.read(limit + 1)) for f in files[:most]]
    try:
        rows = await run_in_threadpool(
            provider_returns.upload_returns, app, who, model_id, got, client_ip(request)
        )
    except ValidationFailed as exc:
        return _returns_page(
            request, who, model_id, status=422, problems=exc.problems, message=exc.message
        )
    return _see(f"/models/{model_id}/returns?done={len(rows)}")


@router.get("/models/{model_id}/returns/template")
def return_template(
    model_id: Id,
    who: CurrentUser,
    request: Request,
    quarter: Annotated[str, Query(max_length=10)],
    provider: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    try:
        data, name = provider_returns.template(
            state_of(request), who, model_id, quarter, provider, client_ip(request)
        )
    except ValidationFailed as exc:
        return _returns_page(
            request, who, model_id, status=422, problems=exc.problems, message=exc.message
        )
    return Response(
        data,
        media_type=provider_returns.XLSX,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/models/{model_id}/returns/outcomes/{name}")
def return_outcome_csv(
    model_id: Id,
    who: CurrentUser,
    request: Request,
    name: Annotated[str, Path(max_length=60)],
) -> Response:
    stem = name.removesuffix(".csv")
    text = provider_returns.outcome_csv(state_of(request), who, model_id, stem, client_ip(request))
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{stem}.csv"'},
    )


@router.get("/returns/{return_id}", response_class=HTMLResponse)
def return_page(return_id: Id, who: CurrentUser, request: Request) -> Response:
    app = state_of(request)
    row = provider_returns.return_for(app, who, return_id)
    tables = provider_returns.tables_of([row])
    return render(request, "return.html.j2", ret=row, tables=provider_returns.page_tables(tables))


# admin: users, audit; API tokens ----------------------------------------------------------


def _users_page(request: Request, who: Any, status: int = 200, **extra: Any) -> HTMLResponse:
    users = accounts.users_of(state_of(request), who)
    context: dict[str, Any] = {"problems": [], "message": ""} | extra
    return render(request, "users.html.j2", status=status, users=users, **context)


@router.get("/admin/users", response_class=HTMLResponse)
def users_page(who: CurrentUser, request: Request) -> Response:
    return _users_page(request, who)


def _services(text: str) -> list[str]:
    return [s for s in text.replace(",", " ").split() if s]


@router.post("/admin/users", response_class=HTMLResponse)
def add_user(
    who: CurrentUser,
    request: Request,
    email: Annotated[str, Form(max_length=320)],
    password: Annotated[str, Form(max_length=1024)],
    role: Annotated[str, Form(max_length=20)],
    services: Annotated[str, Form(max_length=500)] = "",
    provider: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    try:
        accounts.add_user(
            state_of(request),
            who,
            email,
            password,
            role,
            _services(services),
            client_ip(request),
            provider=provider.strip() or None,
        )
    except ValidationFailed as exc:
        return _users_page(request, who, status=422, problems=exc.problems, message=exc.message)
    return _see("/admin/users")


@router.post("/admin/users/{user_id}", response_class=HTMLResponse)
def update_user(
    user_id: Id,
    who: CurrentUser,
    request: Request,
    role: Annotated[str, Form(max_length=20)],
    services: Annotated[str, Form(max_length=500)] = "",
    provider: Annotated[str, Form(max_length=40)] = "",
    active: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    try:
        accounts.update_user(
            state_of(request),
            who,
            user_id,
            role=role,
            services=_services(services),
            provider=provider.strip(),
            active=active == "on",
            ip=client_ip(request),
        )
    except ValidationFailed as exc:
        return _users_page(request, who, status=422, problems=exc.problems, message=exc.message)
    return _see("/admin/users")


@router.get("/admin/audit", response_class=HTMLResponse)
def audit_page(who: CurrentUser, request: Request) -> Response:
    with state_of(request).store.session() as db:
        entries = access.audit_entries(db, who)
    return render(request, "audit.html.j2", entries=entries)


@router.get("/tokens", response_class=HTMLResponse)
def tokens_page(who: CurrentUser, request: Request) -> Response:
    tokens = accounts.tokens_of(state_of(request), who)
    return render(request, "tokens.html.j2", tokens=tokens, new_token="")


@router.post("/tokens", response_class=HTMLResponse)
def create_token(
    who: CurrentUser,
    request: Request,
    name: Annotated[str, Form(max_length=100)],
    days: Annotated[int, Form(ge=1, le=366)] = 90,
) -> Response:
    app = state_of(request)
    _id, token = accounts.create_token(app, who, name, days, client_ip(request))
    return render(request, "tokens.html.j2", tokens=accounts.tokens_of(app, who), new_token=token)


@router.post("/tokens/{token_id}/delete")
def delete_token(token_id: Id, who: CurrentUser, request: Request) -> Response:
    accounts.delete_token(state_of(request), who, token_id, client_ip(request))
    return _see("/tokens")
