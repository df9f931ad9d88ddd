"""The JSON API under ``/api``: the same operations as the pages, for scripts.

Authenticate by the session cookie (sign in with ``POST /api/session``; send the returned
``csrf_token`` in an ``X-CSRF-Token`` header on every write) or by a personal API token
(``Authorization: Bearer nsl_...``, made at ``POST /api/tokens``; no CSRF header needed).
The OpenAPI document is at ``/api/openapi.json``.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, File, Form, Path, Query, Request, Response, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from needsled.web import access, accounts, actions, provider_returns, runs, saved
from needsled.web.auth import CurrentUser, client_ip, end_session, start_session
from needsled.web.db import ApiToken, AuditEntry, PlanRun, Report, SavedScenario, StoredModel, User
from needsled.web.errors import Forbidden
from needsled.web.planning import PlanSettings
from needsled.web.security import SESSION_COOKIE, cookie_secure
from needsled.web.sliders import Superseded
from needsled.web.state import state_of

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["api"])
Id = Annotated[int, Path(ge=1, le=2_147_483_647)]
Text = Annotated[str, Field(max_length=200)]


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class UserOut(Out):
    id: int
    email: str
    role: str
    organisation_id: int
    services: list[str]
    provider: str | None
    active: bool


class SessionOut(BaseModel):
    user: UserOut
    csrf_token: str | None = Field(
        description="send as X-CSRF-Token on writes (none when signed in by an API token)"
    )


class LoginIn(BaseModel):
    email: Annotated[str, Field(max_length=320)]
    password: Annotated[str, Field(max_length=1024)]


class ModelOut(Out):
    id: int
    name: str
    filename: str
    sha256: str
    size_bytes: int
    services: list[str]
    summary: dict[str, Any]
    uploaded_by_id: int | None


class EvaluateIn(BaseModel):
    scenario: Annotated[str | None, Field(max_length=200)] = None
    settings: dict[str, float] = Field(default_factory=dict)
    mode: Literal["full", "preview"] = Field(
        "full", description="preview: the deterministic run only, quicker, with no 80% ranges"
    )


class ScenarioIn(BaseModel):
    model_id: Annotated[int, Field(ge=1, le=2_147_483_647)]
    name: Annotated[str, Field(max_length=120)]
    base: Annotated[str | None, Field(max_length=200)] = None
    settings: dict[str, float] = Field(default_factory=dict)


class ScenarioPatch(BaseModel):
    published: bool | None = None
    shared_with_providers: bool | None = None


class ScenarioOut(Out):
    id: int
    model_id: int
    name: str
    base: str | None
    settings: dict[str, float]
    owner_id: int | None
    shared_with_providers: bool
    published: bool


class PlanIn(BaseModel):
    scenario: Annotated[str | None, Field(max_length=200)] = None
    budget: Annotated[float | None, Field(gt=0, le=1e11)] = None
    equity_floor: Annotated[float, Field(ge=0, le=1)] = 0.0
    max_growth: Annotated[float, Field(ge=0, le=10)] = 0.3
    max_shrink: Annotated[float, Field(ge=0, le=1)] = 0.2
    years: Annotated[int, Field(ge=1, le=10)] = 3
    curve_steps: Annotated[int, Field(ge=0, le=8)] = 3


class PlanOut(Out):
    id: int
    model_id: int
    status: str
    message: str
    settings: dict[str, Any]
    result: dict[str, Any]


class ReportOut(Out):
    id: int
    model_id: int
    status: str
    replicates: int
    message: str
    files: list[str]


class UserIn(BaseModel):
    email: Annotated[str, Field(max_length=320)]
    password: Annotated[str, Field(min_length=1, max_length=1024)]
    role: Literal["admin", "commissioner", "provider", "viewer"]
    services: list[Annotated[str, Field(max_length=40)]] = Field(default_factory=list)
    provider: Annotated[str | None, Field(max_length=40)] = Field(
        None, description="a provider's code in the models' directory tables"
    )


class UserPatch(BaseModel):
    role: Literal["admin", "commissioner", "provider", "viewer"] | None = None
    services: list[Annotated[str, Field(max_length=40)]] | None = None
    provider: Annotated[str | None, Field(max_length=40)] = Field(
        None, description='a provider code; "" removes it'
    )
    active: bool | None = None


class ReturnOut(Out):
    id: int
    model_id: int
    provider: str
    service: str
    area: str
    quarter: str
    filename: str
    sha256: str
    uploaded_by_id: int | None
    uploaded_at: Any
    replaced: int


class AuditOut(Out):
    id: int
    at: Any
    user_id: int | None
    email: str
    action: str
    object: str
    outcome: str
    ip: str


class TokenIn(BaseModel):
    name: Annotated[str, Field(max_length=100)]
    days: Annotated[int, Field(ge=1, le=366)] = 90


class TokenOut(Out):
    id: int
    name: str
    created_at: Any
    expires_at: Any
    last_used_at: Any


class NewToken(BaseModel):
    id: int
    token: str


# session ----------------------------------------------------------------------------------


@router.post("/session", response_model=SessionOut)
def sign_in(body: LoginIn, request: Request, response: Response) -> SessionOut:
    """Sign in; the answer's ``csrf_token`` goes in an ``X-CSRF-Token`` header on writes."""
    app = state_of(request)
    user = accounts.authenticate(app, body.email, body.password, client_ip(request))
    cookie, csrf = start_session(app, request, user.id)
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        max_age=int(app.config.session_hours * 3600),
        httponly=True,
        secure=cookie_secure(request, app.config.insecure_cookies),
        samesite="lax",
        path="/",
    )
    return SessionOut(user=UserOut.model_validate(user), csrf_token=csrf)


@router.get("/session", response_model=SessionOut)
def current_session(who: CurrentUser) -> SessionOut:
    """Who is signed in, and the session's CSRF token (for a script reusing a session)."""
    return SessionOut(user=UserOut.model_validate(who.user), csrf_token=who.csrf_token)


@router.delete("/session", status_code=204)
def sign_out(who: CurrentUser, request: Request, response: Response) -> None:
    app = state_of(request)
    end_session(app, who)
    with app.store.session() as db:
        app.store.audit(db, "sign-out", user=who.user, ip=client_ip(request))
    response.delete_cookie(SESSION_COOKIE, path="/")


@router.get("/me", response_model=UserOut)
def me(who: CurrentUser) -> User:
    return who.user


# models -----------------------------------------------------------------------------------


@router.get("/models", response_model=list[ModelOut])
def list_models(who: CurrentUser, request: Request) -> list[StoredModel]:
    access.require_role(who, access.MODEL_ROLES)
    with state_of(request).store.session() as db:
        return access.visible_models(db, who)


@router.post("/models", response_model=ModelOut, status_code=201)
async def upload(
    who: CurrentUser,
    request: Request,
    files: Annotated[
        list[UploadFile], File(description="workbook, CSVs + scenarios.yaml, or .zip")
    ],
    name: Annotated[str, Form(max_length=120)] = "",
) -> StoredModel:
    """Upload a model; 422 lists every problem (file, sheet, cell, message, fix)."""
    limit = state_of(request).config.max_upload_bytes
    got = [(f.filename or "", await f.read(limit + 1)) for f in files[:200]]
    return await run_in_threadpool(
        actions.upload_model, state_of(request), who, name, got, client_ip(request)
    )


@router.get("/models/{model_id}", response_model=ModelOut)
def get_model(model_id: Id, who: CurrentUser, request: Request) -> StoredModel:
    return actions.model_for(state_of(request), who, model_id)


@router.delete("/models/{model_id}", status_code=204)
def delete_model(model_id: Id, who: CurrentUser, request: Request) -> None:
    actions.delete_model(state_of(request), who, model_id, client_ip(request))


@router.get("/models/{model_id}/levers")
def levers(model_id: Id, who: CurrentUser, request: Request) -> list[dict[str, Any]]:
    """The levers the explorer can move: name, label, unit, min, max, step, default."""
    app = state_of(request)
    return actions.levers(app, actions.model_for(app, who, model_id))


@router.post(
    "/models/{model_id}/evaluate",
    response_model=dict[str, Any],
    responses={409: {"description": "a newer request from this browser session replaced it"}},
)
async def evaluate(model_id: Id, body: EvaluateIn, who: CurrentUser, request: Request) -> Response:
    """The scenario with these lever settings: headline, summary rows, Vega-Lite charts.

    Identical requests share one computation. With a browser session, a request still
    waiting its turn when the same session asks for other settings on the model is answered
    409 and never computed (the page has moved on); with an API token, never. A request whose
    connection closes while it waits is withdrawn, and not computed unless another waits for
    the same settings."""
    app = state_of(request)
    stored = await run_in_threadpool(actions.model_for, app, who, model_id)
    answer = await run_in_threadpool(
        actions.queue_evaluation,
        app,
        who,
        stored,
        body.scenario,
        body.settings,
        preview=body.mode == "preview",
    )
    waiting: asyncio.Future[Any] = asyncio.wrap_future(answer)
    gone: asyncio.Future[Any] = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait((waiting, gone), return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
    if not waiting.done():  # the client went away: nothing to compute for it
        app.sliders.withdraw(answer)
        waiting.cancel()
        raise Superseded("The request was closed before it was worked out.")
    result: dict[str, Any] = waiting.result()
    return Response(await run_in_threadpool(json_bytes, result), media_type="application/json")


def json_bytes(content: Any) -> bytes:
    """JSON as orjson writes it, NumPy numbers and arrays included. An explorer answer is
    some 350 kB of chart rows: FastAPI's ``jsonable_encoder`` walks every value in Python (85
    ms for a full answer, on the event loop's thread, where every other request waits for
    it), the standard library's encoder took 9 ms, holding the interpreter lock that every
    other thread waits for; this takes about 1 ms, on a worker thread. A number that is not
    finite would be written null (the explorer writes its own as None: ``explore._floats``)."""
    return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


async def _disconnected(request: Request) -> None:
    """Returns when the client closes the connection (the request's body is read already,
    so the server's next message is the disconnect)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


# scenarios --------------------------------------------------------------------------------


@router.get("/scenarios", response_model=list[ScenarioOut])
def list_scenarios(
    who: CurrentUser,
    request: Request,
    model_id: Annotated[int | None, Query(ge=1, le=2_147_483_647)] = None,
) -> list[SavedScenario]:
    with state_of(request).store.session() as db:
        return access.visible_scenarios(db, who, model_id)


@router.post("/scenarios", response_model=ScenarioOut, status_code=201)
def save_scenario(body: ScenarioIn, who: CurrentUser, request: Request) -> SavedScenario:
    return saved.save_scenario(
        state_of(request),
        who,
        body.model_id,
        body.name,
        body.base,
        body.settings,
        client_ip(request),
    )


@router.get("/scenarios/{scenario_id}", response_model=ScenarioOut)
def get_scenario(scenario_id: Id, who: CurrentUser, request: Request) -> SavedScenario:
    return saved.scenario_for(state_of(request), who, scenario_id)


@router.patch("/scenarios/{scenario_id}", response_model=ScenarioOut)
def patch_scenario(
    scenario_id: Id, body: ScenarioPatch, who: CurrentUser, request: Request
) -> SavedScenario:
    """Publish to viewers or share with providers (admins and commissioners)."""
    return saved.share_scenario(
        state_of(request),
        who,
        scenario_id,
        published=body.published,
        shared=body.shared_with_providers,
        ip=client_ip(request),
    )


@router.delete("/scenarios/{scenario_id}", status_code=204)
def delete_scenario(scenario_id: Id, who: CurrentUser, request: Request) -> None:
    saved.delete_scenario(state_of(request), who, scenario_id, client_ip(request))


@router.get("/scenarios/{scenario_id}/results")
def scenario_results(scenario_id: Id, who: CurrentUser, request: Request) -> dict[str, Any]:
    return saved.scenario_results(state_of(request), who, scenario_id)


@router.get("/compare")
def compare(
    who: CurrentUser,
    request: Request,
    ids: Annotated[list[Annotated[str, Field(max_length=60)]], Query(max_length=4)],
) -> list[dict[str, Any]]:
    """Up to four saved scenarios side by side: each one's settings and results."""
    app = state_of(request)
    chosen = [saved.scenario_for(app, who, sid) for sid in saved.parse_ids(ids)]  # all, first
    return [
        {
            "scenario": ScenarioOut.model_validate(sc).model_dump(),
            "results": saved.scenario_results(app, who, sc.id),
        }
        for sc in chosen
    ]


# plans and reports ------------------------------------------------------------------------


@router.post("/models/{model_id}/plans", response_model=PlanOut, status_code=202)
def start_plan(model_id: Id, body: PlanIn, who: CurrentUser, request: Request) -> PlanRun:
    """Start the optimiser; poll ``GET /api/plans/{id}`` until ``status`` is not running."""
    settings = PlanSettings(**body.model_dump())
    return runs.start_plan(state_of(request), who, model_id, settings, client_ip(request))


@router.get("/plans/{plan_id}", response_model=PlanOut)
def get_plan(plan_id: Id, who: CurrentUser, request: Request) -> PlanRun:
    return runs.plan_for(state_of(request), who, plan_id)


@router.post("/models/{model_id}/reports", response_model=ReportOut, status_code=202)
def start_report(model_id: Id, who: CurrentUser, request: Request) -> Report:
    """Run the model and make its report files; poll ``GET /api/reports/{id}``."""
    return runs.start_report(state_of(request), who, model_id, client_ip(request))


@router.get("/models/{model_id}/reports", response_model=list[ReportOut])
def list_reports(model_id: Id, who: CurrentUser, request: Request) -> list[Report]:
    return runs.reports_of(state_of(request), who, model_id)


@router.get("/reports/{report_id}", response_model=ReportOut)
def get_report(report_id: Id, who: CurrentUser, request: Request) -> Report:
    return runs.report_for(state_of(request), who, report_id)


@router.get("/reports/{report_id}/files/{name:path}")
def report_file(
    report_id: Id,
    name: Annotated[str, Path(max_length=200)],
    who: CurrentUser,
    request: Request,
) -> FileResponse:
    path = runs.report_file(state_of(request), who, report_id, name, client_ip(request))
    return FileResponse(path, filename=path.name)


# provider returns -------------------------------------------------------------------------

XLSX = provider_returns.XLSX
Quarter = Annotated[str, Query(max_length=10, description="calendar quarter YYYY-Qn")]
ProviderCode = Annotated[
    str | None, Query(max_length=40, description="the provider (admins and commissioners)")
]


@router.get("/models/{model_id}/returns", response_model=list[ReturnOut])
def list_returns(model_id: Id, who: CurrentUser, request: Request) -> list[Any]:
    """The model's stored returns you may see (a provider: their own). No counts: those are
    only in the suppressed outcome tables."""
    return provider_returns.returns_view(state_of(request), who, model_id).returns


@router.post("/models/{model_id}/returns", response_model=list[ReturnOut], status_code=201)
async def upload_returns(
    model_id: Id,
    who: CurrentUser,
    request: Request,
    files: Annotated[list[UploadFile], File(description="filled-in Excel returns")],
) -> list[Any]:
    """Upload filled-in returns; 422 lists every problem (file, sheet, cell); nothing is
    stored unless every file is clean."""
    limit = state_of(request).config.max_upload_bytes
    most = provider_returns.MAX_RETURN_FILES + 1  # one more, to be refused
    got = [(f.filename or "", await f.read(limit + 1)) for f in files[:most]]
    return await run_in_threadpool(
        provider_returns.upload_returns, state_of(request), who, model_id, got, client_ip(request)
    )


@router.get(
    "/models/{model_id}/returns/template",
    response_class=Response,
    responses={200: {"content": {XLSX: {}}, "description": "the Excel return"}},
)
def return_template(
    model_id: Id,
    who: CurrentUser,
    request: Request,
    quarter: Quarter,
    provider: ProviderCode = None,
) -> Response:
    """The Excel return of a provider (a provider: their own) for a quarter."""
    data, name = provider_returns.template(
        state_of(request), who, model_id, quarter, provider, client_ip(request)
    )
    return Response(
        data, media_type=XLSX, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


@router.get("/models/{model_id}/returns/outcomes")
def return_outcomes(model_id: Id, who: CurrentUser, request: Request) -> dict[str, Any]:
    """The outcome and journey tables of the returns you may see, small counts suppressed
    ("<5", "[c]"); each ``{"columns", "rows"}`` of text."""
    app = state_of(request)
    tables = provider_returns.outcomes(app, who, model_id)
    with app.store.session() as db:
        app.store.audit(
            db,
            "download",
            user=who.user,
            obj=f"model {model_id} returns outcomes (API)",
            ip=client_ip(request),
        )
    return {name: provider_returns.table_json(t) for name, t in tables.items()}


@router.get("/returns/{return_id}", response_model=ReturnOut)
def get_return(return_id: Id, who: CurrentUser, request: Request) -> Any:
    return provider_returns.return_for(state_of(request), who, return_id)


# users, audit, tokens ---------------------------------------------------------------------


@router.get("/users", response_model=list[UserOut])
def list_users(who: CurrentUser, request: Request) -> list[User]:
    return accounts.users_of(state_of(request), who)


@router.post("/users", response_model=UserOut, status_code=201)
def add_user(body: UserIn, who: CurrentUser, request: Request) -> User:
    return accounts.add_user(
        state_of(request),
        who,
        body.email,
        body.password,
        body.role,
        body.services,
        client_ip(request),
        provider=body.provider,
    )


@router.patch("/users/{user_id}", response_model=UserOut)
def patch_user(user_id: Id, body: UserPatch, who: CurrentUser, request: Request) -> User:
    return accounts.update_user(
        state_of(request),
        who,
        user_id,
        role=body.role,
        services=body.services,
        provider=body.provider,
        active=body.active,
        ip=client_ip(request),
    )


@router.get("/audit", response_model=list[AuditOut])
def audit(
    who: CurrentUser,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> list[AuditEntry]:
    with state_of(request).store.session() as db:
        return access.audit_entries(db, who, limit)


@router.get("/tokens", response_model=list[TokenOut])
def list_tokens(who: CurrentUser, request: Request) -> list[ApiToken]:
    return accounts.tokens_of(state_of(request), who)


@router.post("/tokens", response_model=NewToken, status_code=201)
def create_token(body: TokenIn, who: CurrentUser, request: Request) -> NewToken:
    """A personal API token, shown once. Only a signed-in browser session can make one."""
    if who.session_id is None:
        raise Forbidden("Make API tokens from a signed-in session, not with another token.")
    app = state_of(request)
    token_id, token = accounts.create_token(app, who, body.name, body.days, client_ip(request))
    return NewToken(id=token_id, token=token)


@router.delete("/tokens/{token_id}", status_code=204)
def delete_token(token_id: Id, who: CurrentUser, request: Request) -> None:
    accounts.delete_token(state_of(request), who, token_id, client_ip(request))
