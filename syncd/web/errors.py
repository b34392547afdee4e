"""Client-visible failures: every error a client can cause leaves syncd as JSON
``{"error": code, "message": text, ...}`` with a 4xx status (``web.middleware.errors`` maps
them); a 500 means a bug, never bad input.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError


class ApiError(Exception):
    """A client-visible failure: HTTP status, stable code, English message, optional details."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
        **details: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers  # e.g. Retry-After of a 429 or 503
        self.details = details

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, **self.details}


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} not found")


def validation_error(exc: ValidationError) -> ApiError:
    problems = [
        {"field": ".".join(str(p) for p in e["loc"]) or "(body)", "problem": e["msg"]}
        for e in exc.errors(include_input=False, include_url=False)
    ]
    return ApiError(422, "invalid", "request body is invalid", problems=problems)
