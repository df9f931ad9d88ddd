"""Rendering pages: the Jinja templates (autoescaped), with what every page needs: who is
signed in, the CSRF token for its forms, the display size, the Vega script's address."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from needsled import __version__
from needsled.web.auth import principal
from needsled.web.security import DISPLAY_COOKIE, PRE_COOKIE, cookie_secure, new_token
from needsled.web.state import state_of

__all__ = ["local_path", "render", "render_error"]

TEMPLATES = Path(__file__).resolve().parent / "templates"
STATUS_TITLES = {
    400: "That cannot be done",
    401: "Please sign in",
    403: "Not allowed",
    404: "Not found",
    422: "Please correct the problems below",
    429: "Too many attempts",
    503: "Not available yet",
}


def _json_data(value: Any) -> Markup:
    """JSON for a ``<script type="application/json">`` block: safe inside HTML."""
    text = json.dumps(value, allow_nan=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)


def _money(x: float | None) -> str:
    if x is None:
        return ""
    return f"£{x / 1e6:,.2f}m" if abs(x) >= 1e6 else f"£{x:,.0f}"


def _plain(x: object) -> str:
    """A number as a person would type it: 20 not 20.0, 0.25 as it is."""
    if isinstance(x, float) and x.is_integer():
        return str(int(x))
    return str(x)


def _num(x: object) -> str:
    """A figure in a table: thousands separated; whole above 100, else one decimal."""
    if isinstance(x, bool) or not isinstance(x, int | float):
        return "" if x is None else str(x)
    if isinstance(x, int) or abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:,.1f}"


@cache
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["json_data"] = _json_data
    env.filters["money"] = _money
    env.filters["plain"] = _plain
    env.filters["num"] = _num
    return env


def local_path(target: str | None, default: str = "/") -> str:
    """A redirect target only within this site (no ``//host`` or scheme)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    app = state_of(request)
    who = principal(request)
    pre = None  # a new pre-session cookie to set, when there is no session
    if who is not None and who.csrf_token is not None:
        csrf = who.csrf_token
    else:
        existing = request.cookies.get(PRE_COOKIE, "")
        if not 20 <= len(existing) <= 100:
            pre = existing = new_token()
        csrf = app.signer.pre_csrf(existing)
    large = request.cookies.get(DISPLAY_COOKIE) == "large"
    html = (
        _env()
        .get_template(template)
        .render(
            request=request,
            user=who.user if who else None,
            csrf_token=csrf,
            large=large,
            vega_url=request.app.state.vega_url(),
            version=__version__,
            here=request.url.path,
            **context,
        )
    )
    response = HTMLResponse(html, status_code=status)
    if pre is not None:
        response.set_cookie(
            PRE_COOKIE,
            pre,
            max_age=2 * 3600,
            httponly=True,
            secure=cookie_secure(request, app.config.insecure_cookies),
            samesite="lax",
            path="/",
        )
    return response


def render_error(
    request: Request, status: int, message: str, problems: list[dict[str, Any]]
) -> HTMLResponse:
    return render(
        request,
        "error.html.j2",
        status=status,
        title=STATUS_TITLES.get(status, "Something went wrong"),
        message=message,
        problems=problems,
    )
