"""``/openapi.json``: an OpenAPI 3.1 document generated from the registered operations.

Generated, not hand-written: the route table, the roles and the request body models are the
same objects the server runs, and ``tests/syncd/test_openapi.py`` walks the document against the
running app to keep the rest (status codes, error bodies) true.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from syncd.routing import OPERATIONS, Operation, op

PATH_PARAMS: dict[str, dict[str, Any]] = {
    "event_id": {"type": "integer", "minimum": 1, "maximum": 0xFFFFFFFF},
    "ticket_id": {"type": "integer", "minimum": 1, "maximum": (1 << 63) - 1},
    "token_id": {"type": "integer", "minimum": 1},
    "kid": {"type": "string", "pattern": "^[0-9a-f]{8}$"},
}
ERROR = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string"},
        "message": {"type": "string"},
        "request_id": {"type": "string"},
    },
}
_ERRORS = {
    "400": "Bad request",
    "401": "No or invalid token",
    "403": "Role too low",
    "404": "Not found (or another organisation's)",
    "409": "Conflict with current state",
    "413": "Body too large",
    "415": "Wrong content type",
    "422": "Invalid body",
}


def _operation(o: Operation, components: dict[str, Any]) -> dict[str, Any]:
    params = [
        {"name": n, "in": "path", "required": True, "schema": PATH_PARAMS[n]}
        for n in re.findall(r"{(\w+)}", o.path)
    ]
    params += [
        {
            "name": p.name,
            "in": "query",
            "required": p.required,
            "schema": p.schema,
            "description": p.description,
        }
        for p in o.query
    ]
    responses: dict[str, Any] = {
        str(o.ok_status): {"description": "OK", "content": {o.produces: {}}}
    }
    for code, text in _ERRORS.items():
        if o.role is not None or code in ("400", "404"):
            responses[code] = {
                "description": text,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            }
    doc: dict[str, Any] = {
        "summary": o.summary,
        "operationId": o.handler.__name__,
        "tags": [o.tag],
        "parameters": params,
        "responses": responses,
    }
    if o.role is not None:
        doc["security"] = [{"bearer": []}]
        doc["x-tessera-role"] = o.role
    if o.body is not None:
        schema = o.body.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(schema.pop("$defs", {}))
        components[o.body.__name__] = schema
        doc["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{o.body.__name__}"}}
            },
        }
    if o.uploads:
        doc["requestBody"] = {
            "required": True,
            "content": {t: {"schema": {"type": "string"}} for t in o.uploads},
        }
    return doc


def openapi_document() -> dict[str, Any]:
    components: dict[str, Any] = {"Error": ERROR}
    paths: dict[str, dict[str, Any]] = {}
    for o in OPERATIONS:
        paths.setdefault(o.path, {})[o.method.lower()] = _operation(o, components)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Tessera syncd",
            "version": "1",
            "description": "Organisers' API: events, keys, attendee lists, tickets.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


@op("GET", "/openapi.json", "This document.", role=None, tag="ops")
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())
