"""Operations: each handler declares its route, required role and documentation in one place.

``op`` registers a handler; ``create_app`` adds every registered operation to the router and
``openapi_document`` describes exactly those, so a route cannot exist undocumented.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ROLES = ("viewer", "organiser", "admin")


@dataclass(frozen=True)
class Param:
    name: str
    schema: dict[str, Any]
    description: str = ""
    required: bool = False


@dataclass
class Operation:
    method: str
    path: str
    handler: Handler
    summary: str
    role: str | None  # None: public; else the least role an API token needs
    principals: frozenset[str] = frozenset({"token"})
    body: type[BaseModel] | None = None
    uploads: tuple[str, ...] = ()  # streamed upload media types
    query: tuple[Param, ...] = ()
    produces: str = "application/json"
    tag: str = "misc"
    ok_status: int = 200
    extra: dict[str, Any] = field(default_factory=dict)


OPERATIONS: list[Operation] = []
_OP_ATTR = "_tessera_op"


def op(method: str, path: str, summary: str, role: str | None = "viewer", **kw: Any) -> Callable:
    """Decorator: register ``handler`` as the operation ``method path``."""

    def register(handler: Handler) -> Handler:
        if role is not None and role not in ROLES:
            raise ValueError(f"unknown role {role}")
        operation = Operation(method, path, handler, summary, role, **kw)
        OPERATIONS.append(operation)
        setattr(handler, _OP_ATTR + method, operation)
        return handler

    return register


def operation_of(request: web.Request) -> Operation | None:
    return getattr(request.match_info.handler, _OP_ATTR + request.method, None)


def add_routes(app: web.Application) -> None:
    for operation in OPERATIONS:
        app.router.add_route(operation.method, operation.path, operation.handler)
