"""Reading a request: the JSON body into a model, path and query parameters, and the JSON answer.

What does not parse or is out of range is an ``ApiError`` (4xx), never an exception that escapes.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

import pydantic_core
from aiohttp import web
from pydantic import BaseModel, ValidationError

from syncd.web.errors import ApiError, not_found, validation_error

M = TypeVar("M", bound=BaseModel)
UINT32 = 0xFFFFFFFF
UINT64 = 0xFFFFFFFFFFFFFFFF


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda o: json.dumps(o, default=str))


async def read_model(request: web.Request, model: type[M]) -> M:
    """Parse a JSON body into ``model``: 415 wrong type, 413 too big, 400 not JSON (also: nested
    deeper than the parser's limit of a few hundred levels, a lone UTF-16 surrogate such as
    ``\\ud800``, invalid UTF-8), 422 invalid. The parser is pydantic-core's (in Rust, with its
    own depth limit), never Python's recursive ``json``, so no body can raise RecursionError."""
    if request.content_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    limit = request.client_max_size
    if (request.content_length or 0) > limit:  # announced too big: answered before it arrives
        raise ApiError(413, "too_large", f"the body may have at most {limit} bytes")
    raw = await request.read()
    # A NUL can only reach a string as the escape \u0000 (raw control characters are not JSON),
    # so the walk over the parsed value runs only for the rare body that has one.
    if b"\\u0000" in raw:
        try:
            data = pydantic_core.from_json(raw)
        except ValueError as exc:
            raise _bad_json(str(exc)) from None
        if _has_nul(data):
            raise ApiError(422, "invalid", "text may not contain NUL characters")
    try:
        return model.model_validate_json(raw)  # parsed and validated in one pass, in Rust
    except ValidationError as exc:
        bad = next((e for e in exc.errors() if e["type"] == "json_invalid"), None)
        if bad is not None:
            raise _bad_json(bad["ctx"].get("error", bad["msg"])) from None
        raise validation_error(exc) from None


def _bad_json(problem: str) -> ApiError:
    # The parser's message names the problem and its position, never the input text.
    return ApiError(400, "bad_json", f"body is not valid JSON: {problem}")


def _has_nul(value: Any) -> bool:
    """Recursive, but only over parsed values, whose depth pydantic-core bounds."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def path_int(request: web.Request, name: str, maximum: int) -> int:
    """An integer path parameter; anything else is a 404 (no such resource can exist)."""
    text = request.match_info[name]
    if not text.isascii() or not text.isdigit() or not 0 < int(text) <= maximum:
        raise not_found(name.removesuffix("_id").replace("_", " "))
    return int(text)


def query_int(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    text = request.query.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ApiError(400, "bad_query", f"{name} must be an integer") from None
    if not lo <= value <= hi:
        raise ApiError(400, "bad_query", f"{name} must be between {lo} and {hi}")
    return value


def query_text(request: web.Request, name: str, max_length: int = 200) -> str | None:
    text = request.query.get(name)
    if text is not None and ("\x00" in text or len(text) > max_length):
        raise ApiError(400, "bad_query", f"{name} is not a valid value")
    return text


def query_flag(request: web.Request, name: str) -> bool:
    text = request.query.get(name, "0").lower()
    if text not in ("0", "1", "true", "false", "yes", "no", ""):
        raise ApiError(400, "bad_query", f"{name} must be 0 or 1")
    return text in ("1", "true", "yes")
