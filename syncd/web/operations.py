"""Operations: each handler declares its route, required role and documentation in one place.

``op`` attaches an ``Operation`` to its handler (nothing is registered globally); ``syncd.app``
lists the handlers it serves, ``add_routes`` puts exactly their operations on the router and
``web.docs`` describes exactly those, so a route cannot exist undocumented.
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


_OP_ATTR = "_tessera_op"
_OPS_ATTR = "_tessera_ops"


def op(method: str, path: str, summary: str, role: str | None = "viewer", **kw: Any) -> Callable:
    """Decorator: declare ``handler`` as the operation ``method path``."""

    def declare(handler: Handler) -> Handler:
        if role is not None and role not in ROLES:
            raise ValueError(f"unknown role {role}")
        operation = Operation(method, path, handler, summary, role, **kw)
        setattr(handler, _OP_ATTR + method, operation)
        setattr(handler, _OPS_ATTR, (*operations_of(handler), operation))
        return handler

    return declare


def operations_of(handler: Handler) -> tuple[Operation, ...]:
    """The operations ``handler`` was declared as (in declaration order)."""
    ops: tuple[Operation, ...] = getattr(handler, _OPS_ATTR, ())
    return ops


def operation_of(request: web.Request) -> Operation | None:
    return getattr(request.match_info.handler, _OP_ATTR + request.method, None)


def add_routes(app: web.Application, operations: tuple[Operation, ...]) -> None:
    for operation in operations:
        app.router.add_route(operation.method, operation.path, operation.handler)
