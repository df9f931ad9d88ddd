"""Cookies, CSRF tokens and security headers.

**Sessions.** Signing in makes a random 256-bit token; the cookie holds it signed with the
application's secret (itsdangerous, with a timestamp), the store keeps only its SHA-256 with the
user, the expiry and the session's CSRF token. Signing out deletes the row, so a stolen cookie
stops working at once. The cookie is HTTP-only, SameSite=Lax, Path=/, and Secure (see
:func:`cookie_secure`).

**CSRF.** Every state-changing request (POST, PUT, PATCH, DELETE) must carry the session's CSRF
token, in a form field ``csrf_token`` or a header ``X-CSRF-Token``, compared in constant time.
Before signing in there is no session, so the sign-in form is protected by a signed double
submit: a random value in a short-lived cookie, and in the form an HMAC of it under the
secret, which another site can neither read nor forge. Not needed: with a personal API token
(``Authorization: Bearer``, which a browser never sends by itself), and for ``POST
/api/session`` with a JSON body (another site cannot send ``application/json`` without a
CORS preflight, which is never granted).

**Headers.** A Content Security Policy with scripts from this origin only (no inline script,
no eval: the charts use Vega's expression interpreter), no framing, no referrer, no MIME
sniffing.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from itsdangerous import BadSignature, TimestampSigner
from starlette.requests import Request

__all__ = [
    "CSP",
    "CSRF_FIELD",
    "CSRF_HEADER",
    "PRE_COOKIE",
    "SESSION_COOKIE",
    "SecurityHeaders",
    "Signer",
    "cookie_secure",
    "hash_token",
    "new_token",
    "tokens_match",
]

SESSION_COOKIE = "needsled_session"
PRE_COOKIE = "needsled_pre"
DISPLAY_COOKIE = "needsled_display"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
HEADERS = (
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), interest-cohort=()"),
)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def tokens_match(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


class Signer:
    """Signs session cookies and the pre-session CSRF value with the application's secret."""

    def __init__(self, secret: str, max_age_s: int) -> None:
        self._secret = secret.encode("utf-8")
        self._session = TimestampSigner(secret, salt="needsled-session")
        self.max_age_s = max_age_s

    def sign_session(self, token: str) -> str:
        return self._session.sign(token).decode("ascii")

    def session_token(self, cookie: str | None) -> str | None:
        """The token in a session cookie, or None if it is missing, forged or too old."""
        if not cookie:
            return None
        try:
            return self._session.unsign(cookie, max_age=self.max_age_s).decode("ascii")
        except (BadSignature, UnicodeDecodeError):
            return None

    def pre_csrf(self, pre: str) -> str:
        """The sign-in form's CSRF token for a pre-session cookie value."""
        return hmac.new(self._secret, b"csrf:" + pre.encode(), hashlib.sha256).hexdigest()


def _is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def cookie_secure(request: Request, insecure: bool) -> bool:
    """Whether cookies get the Secure flag: always, unless ``--insecure-cookies``, or the
    request is plain http to a loopback address (Host header) from a loopback client, where
    nothing crosses a network and the flag would only stop browsers such as Safari from
    keeping the cookie. Behind a reverse proxy that passes on the public Host name, or says
    ``X-Forwarded-Proto: https``, the flag is set."""
    if insecure:
        return False
    if request.url.scheme == "https":
        return True
    host = (request.url.hostname or "").lower()
    client = request.client.host if request.client else ""
    return not (_is_loopback(host) and _is_loopback(client))


ASGIApp = Callable[
    [MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
    Awaitable[None],
]


class SecurityHeaders:
    """Adds the security headers to every HTTP response; pages that depend on who is signed
    in are not to be cached (``Cache-Control: no-store``) unless the route set its own."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[Any], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = scope.get("scheme") == "https"

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                headers += [h for h in HEADERS if h[0] not in names]
                if b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-store"))
                if https:
                    headers.append((b"strict-transport-security", b"max-age=31536000"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
