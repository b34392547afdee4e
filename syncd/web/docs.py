"""``/openapi.json``: an OpenAPI 3.1 document generated from the operations the app serves.

Generated, not hand-written: the route table, the roles and the request body models are the
same objects the server runs, and ``tests/syncd/web/test_openapi.py`` walks the document against the
running app to keep the rest (status codes, error bodies) true. The statuses follow from each
operation's declaration (auth: 401/403/503, path ids: 404, a body: 413/415/422, an upload also
408, every request: 400/429); ``CONFLICTS``, ``NEEDS_DATABASE`` and ``PRODUCES`` add what a
declaration cannot say.
``tests/syncd/web/test_contract_fuzz.py`` fuzzes the whole document with schemathesis.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from syncd.keys import OPERATIONS
from syncd.web.operations import Operation, op

PATH_PARAMS: dict[str, dict[str, Any]] = {
    "event_id": {"type": "integer", "minimum": 1, "maximum": 0xFFFFFFFF},
    "ticket_id": {"type": "integer", "minimum": 1, "maximum": (1 << 63) - 1},
    "token_id": {"type": "integer", "minimum": 1},
    "kid": {"type": "string", "pattern": "^[0-9a-f]{8}$"},
    "name": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"},  # a page's file
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
INT64_MAX = (1 << 63) - 1
_ERRORS = {
    "400": "Malformed request, query or JSON",
    "401": "No or invalid credential (or enrolment code)",
    "403": "Credential of the wrong kind, or role too low",
    "404": "Not found (or another organisation's)",
    "408": "The upload did not arrive within SYNCD_UPLOAD_TIMEOUT",
    "409": "Conflict with current state",
    "413": "Body too large",
    "415": "Wrong content type",
    "422": "Invalid body",
    "429": "Too many failed attempts from this address (or, for a list upload, too many uploads"
    " of this organisation at once); wait Retry-After seconds",
    "503": "Postgres (or RabbitMQ) unavailable; retry after Retry-After seconds",
}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
    }
}
# What the route table cannot say: domain errors of particular operations (by operationId), and
# answers in more than one media type. tests/syncd/web/test_contract_fuzz.py holds these true.
CONFLICTS = {
    "update_event",  # zones_in_use
    "retire_key",  # key_is_signer
    "new_gate_code",  # gate_revoked
    "push",  # journal_clash
    "ticket_qr",  # key_unavailable
    "sheet",
    "revoke_ticket",  # bad_status
    "block_ticket",
    "unblock_ticket",
    "reissue_ticket",  # no_signer
    "wallet_link",  # bad_status
    "claim",  # bad_status, key_unavailable
    "current_pass",  # claimed_elsewhere
}
# public operations that answer 503 without Postgres
NEEDS_DATABASE = {"enroll", "readyz", "claim", "current_pass"}
PRODUCES = {"ticket_qr": ("text/plain", "image/png", "image/svg+xml")}
TEXT = {"type": "string"}
UPLOAD_SCHEMAS = {"application/json": {"type": "array", "items": {"type": "object"}}}
SCHEMES = {
    "token": {
        "type": "http",
        "scheme": "bearer",
        "description": "An organiser API token (tsr_...), from `syncd create-token` or"
        " POST /api/v1/tokens.",
    },
    "gate": {
        "type": "http",
        "scheme": "bearer",
        "description": "A gate credential (tsg_...), from POST /api/v1/gate/enroll; it acts on"
        " its gate's event only.",
    },
}


def _bounded(schema: dict[str, Any]) -> dict[str, Any]:
    """Integer query parameters are read as int64 (``http.query_int``), whatever their upper
    bound; say so where the operation does not say less."""
    if schema.get("type") == "integer" and "maximum" not in schema:
        return {**schema, "maximum": INT64_MAX}
    return schema


def _statuses(o: Operation) -> list[str]:
    """Every status ``o`` can answer besides its success (see the module docstring)."""
    codes = {"400", "429"}
    if o.role is not None:
        codes |= {"401", "403", "503"}
    if "{" in o.path:
        codes.add("404")
    if o.body is not None or o.uploads:
        codes |= {"413", "415", "422"}
    if o.uploads:
        codes.add("408")  # a streamed upload has a deadline (syncd/lists/spool.py)
    name = o.handler.__name__
    if name in CONFLICTS:
        codes.add("409")
    if name in NEEDS_DATABASE:
        codes |= {"503"} | ({"401"} if o.body is not None else set())
    return sorted(codes)


def _responses(o: Operation) -> dict[str, Any]:
    media = PRODUCES.get(o.handler.__name__, (o.produces,))
    responses: dict[str, Any] = {
        str(o.ok_status): {"description": "OK", "content": {m: {} for m in media}}
    }
    for code in _statuses(o):
        responses[code] = {
            "description": _ERRORS[code],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        if code in ("429", "503"):
            responses[code]["headers"] = _RETRY_AFTER
    return responses


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
            "schema": _bounded(p.schema),
            "description": p.description,
        }
        for p in o.query
    ]
    doc: dict[str, Any] = {
        "summary": o.summary,
        "operationId": o.handler.__name__,
        "tags": [o.tag],
        "parameters": params,
        "responses": _responses(o),
    }
    if o.role is not None:
        doc["security"] = [{kind: []} for kind in sorted(o.principals)]
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
            "content": {t: {"schema": UPLOAD_SCHEMAS.get(t, TEXT)} for t in o.uploads},
        }
    return doc


def openapi_for(operations: Iterable[Operation]) -> dict[str, Any]:
    """The OpenAPI document of exactly ``operations`` (``syncd.app.openapi_document`` is the
    served app's)."""
    components: dict[str, Any] = {"Error": ERROR}
    paths: dict[str, dict[str, Any]] = {}
    for o in operations:
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
            "securitySchemes": SCHEMES,
        },
    }


@op("GET", "/openapi.json", "This document.", role=None, tag="ops")
async def openapi(request: web.Request) -> web.Response:
    operations: tuple[Operation, ...] = request.app[OPERATIONS]
    return web.json_response(openapi_for(operations))
