"""Attendee list push: one streamed upload, applied whole or not at all."""

from __future__ import annotations

import logging

from aiohttp import web

from syncd import signing
from syncd.api.common import load_event, pool
from syncd.app import SETTINGS
from syncd.http import ApiError, json_response, query_flag
from syncd.lists import push
from syncd.lists.parse import MEDIA_TYPES, Limited, reader_for
from syncd.lists.rows import Problem, RowChecker
from syncd.middleware import METRICS
from syncd.routing import Param, op

log = logging.getLogger("syncd.lists")
FLAG = {"type": "string", "enum": ["0", "1", "true", "false"]}


class _Rollback(Exception):
    """Leaves the transaction of a dry run."""


@op(
    "POST",
    "/api/v1/events/{event_id}/list",
    "Push an attendee list (CSV with header, JSON array or NDJSON), upserting by external_ref. "
    "A bad list is rejected whole with every row problem (422).",
    role="organiser",
    uploads=MEDIA_TYPES,
    tag="lists",
    query=(
        Param("complete", FLAG, "revoke the event's tickets missing from this list"),
        Param("dry_run", FLAG, "check and count, change nothing"),
    ),
)
async def push_list(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    complete, dry_run = query_flag(request, "complete"), query_flag(request, "dry_run")
    event = await load_event(pool(request), request)
    checker = RowChecker(event["zones"], event["timezone"], settings.max_list_errors)
    reader = reader_for(request.content_type, checker)
    body = Limited(request.content.iter_chunked(1 << 18), settings.max_list_bytes)
    try:
        async with pool(request).acquire() as conn, conn.transaction():

            async def lock() -> bytes:
                await load_event(conn, request, lock=True)
                return await signing.signer(conn, event["event_id"])

            job = push.PushJob(
                conn, event["event_id"], complete, checker, lock, settings.list_batch_rows
            )
            result = await push.run(job, reader.records(body.texts()))
            _raise_problems(checker, await push.problems(job))
            if dry_run:
                raise _Rollback
    except _Rollback:
        pass
    outcome = {**result.to_json(), "complete": complete, "dry_run": dry_run}
    log.info(
        "list pushed",
        extra={
            "event_id": event["event_id"],
            "bytes": body.size,
            "phases": job.phases.seconds,
            **outcome,
        },
    )
    if not dry_run:
        for key in ("added", "reissued", "updated", "same", "revoked"):
            request.app[METRICS].list_rows.labels(key).inc(outcome[key])
    return json_response(outcome)


def _raise_problems(checker: RowChecker, problems: list[Problem]) -> None:
    if checker.problem_count:
        raise ApiError(
            422,
            "invalid_list",
            f"the list has {checker.problem_count} problem(s); nothing was changed",
            problem_count=checker.problem_count,
            problems=[p.to_json() for p in problems[: checker.max_problems]],
        )
