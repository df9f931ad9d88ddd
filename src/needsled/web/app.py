"""The ASGI application: ``create_app(WebConfig(...))``.

At start the store's schema is brought up to date (Alembic), the cookie secret is read or
made, and report or plan runs that a previous process left unfinished are marked failed.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import update
from starlette.exceptions import HTTPException as StarletteHTTPException

from needsled import __version__
from needsled.web import api, pages
from needsled.web.auth import check_csrf
from needsled.web.cache import ModelCache
from needsled.web.config import WebConfig
from needsled.web.db import PlanRun, Report, utcnow
from needsled.web.errors import NotSignedIn, Refused, ValidationFailed
from needsled.web.jobs import Jobs
from needsled.web.render import render_error
from needsled.web.security import SecurityHeaders, Signer
from needsled.web.state import AppState
from needsled.web.store import Store

__all__ = ["create_app"]

log = logging.getLogger("needsled.web")
STATIC = Path(__file__).resolve().parent / "static"


@cache
def _vega() -> tuple[bytes, str]:
    from needsled.report import vega_bundle

    body = vega_bundle().encode("utf-8")
    return body, hashlib.sha256(body).hexdigest()[:20]


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path == "/api"


def _install_handlers(app: FastAPI) -> None:
    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused) -> Response:
        if isinstance(exc, NotSignedIn) and not _is_api(request):
            target = request.url.path
            if request.method == "GET" and request.url.query:
                target += "?" + request.url.query
            return RedirectResponse(f"/signin?next={_quote(target)}", status_code=303)
        problems = exc.problems if isinstance(exc, ValidationFailed) else []
        if _is_api(request):
            body: dict[str, object] = {"detail": exc.message}
            if problems:
                body["problems"] = problems
            return JSONResponse(body, status_code=exc.status)
        return render_error(request, exc.status, exc.message, problems)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        message = "There is nothing here." if exc.status_code == 404 else str(exc.detail)
        if _is_api(request):
            return JSONResponse(
                {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
            )
        return render_error(request, exc.status_code, message, [])

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        problems = [
            {
                "file": "request",
                "column": ".".join(str(p) for p in e.get("loc", ())),
                "message": str(e.get("msg", "")),
                "fix": "correct this value",
            }
            for e in exc.errors()
        ]
        if _is_api(request):
            return JSONResponse(
                {"detail": "The request has values that cannot be used.", "problems": problems},
                status_code=422,
            )
        return render_error(request, 422, "Some values in the form cannot be used.", problems)


def _quote(path: str) -> str:
    from urllib.parse import quote

    return quote(path if path.startswith("/") and not path.startswith("//") else "/", safe="")


def _recover(store: Store) -> None:
    """Runs left queued or running by a stopped server will never finish: say so."""
    with store.session() as db:
        for table in (Report, PlanRun):
            db.execute(
                update(table)
                .where(table.status.in_(("queued", "running")))
                .values(
                    status="failed",
                    message="The server stopped before this finished; start it again.",
                    finished_at=utcnow(),
                )
            )


def create_app(config: WebConfig) -> FastAPI:
    config.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(config.url)
    _recover(store)
    state = AppState(
        config=config,
        store=store,
        signer=Signer(config.secret(), int(config.session_hours * 3600)),
        models=ModelCache(
            config.data_dir, config.explorer_cache_size, config.replicates, config.seed
        ),
        jobs=Jobs(store, config.data_dir / "reports"),
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        state.sliders.shutdown()
        state.jobs.shutdown()
        state.models.shutdown()
        store.close()

    app = FastAPI(
        title="needsled",
        version=__version__,
        description=(api.__doc__ or "").strip(),
        openapi_url="/api/openapi.json",
        docs_url=None,  # FastAPI's docs pages load JavaScript from a CDN: not here
        redoc_url=None,
        lifespan=lifespan,
        max_body_size=config.max_upload_bytes + (1 << 20),
        dependencies=[Depends(check_csrf)],
    )
    app.state.needsled = state
    app.add_middleware(SecurityHeaders)
    _install_handlers(app)
    app.include_router(api.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/vendor/vega-{digest}.js", include_in_schema=False)
    def vega_script(digest: str) -> Response:
        """Vega, Vega-Lite and Vega-Embed from the installed vl-convert (no CDN)."""
        body, current = _vega()
        return Response(
            body,
            media_type="text/javascript",
            headers={
                "cache-control": "public, max-age=31536000, immutable"
                if digest == current
                else "no-cache"
            },
        )

    app.state.vega_url = lambda: f"/vendor/vega-{_vega()[1]}.js"
    return app
