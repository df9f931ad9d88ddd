"""The application's refusals, each with its HTTP status and a plain message. Pages show them
as an HTML page, the API as JSON ``{"detail": ...}``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "BadRequest",
    "CsrfRefused",
    "Forbidden",
    "NotFound",
    "NotSignedIn",
    "RateLimited",
    "Refused",
    "Unavailable",
    "ValidationFailed",
]


class Refused(Exception):  # noqa: N818 (reads as "errors.Refused")
    """Base of every refusal: ``status`` and a message meant for the person asking."""

    status = 400
    default = "That request cannot be done."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default)
        self.message = message or self.default


class BadRequest(Refused):
    status = 400


class NotSignedIn(Refused):
    status = 401
    default = "Please sign in first."


class Forbidden(Refused):
    status = 403
    default = "Your role does not allow this. Ask an admin of your organisation if you need it."


class CsrfRefused(Refused):
    status = 403
    default = (
        "This form has expired or did not come from this site (its security token is missing "
        "or wrong). Go back, reload the page and try again."
    )


class NotFound(Refused):
    status = 404
    default = "There is nothing here, or you do not have access to it."


class RateLimited(Refused):
    status = 429
    default = "Too many failed sign-ins. Wait 15 minutes, then try again."


class Unavailable(Refused):
    status = 503
    default = "This part of the application is not available on this server yet."


class ValidationFailed(Refused):
    """An upload or form with problems: every one of them, with where it is."""

    status = 422

    FIELDS = ("file", "sheet", "cell", "row", "column", "value", "message", "fix")

    def __init__(self, message: str, problems: Sequence[dict[str, Any]] = ()) -> None:
        super().__init__(message)
        # every problem has every field (None where it does not apply), for pages and API
        self.problems = [{k: p.get(k) for k in self.FIELDS} for p in problems]
