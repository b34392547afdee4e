"""Attendee list push: received whole, parsed off the loop, then applied whole or not at all.

The order is the defence (docs/design.md section 7): size announced (413), media type (415), the
event (404, one short query), an upload slot of the organisation (429), the body under a
deadline into a temp file (408/413/400), parsing in a worker process (422/400/413), and only
then one pooled connection and transaction for the apply.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import asyncpg
from aiohttp import web

from syncd import signing
from syncd.api.common import load_event, pool
from syncd.keys import METRICS, SETTINGS, UPLOADS
from syncd.lists import parse, push, spool, worker
from syncd.lists.apply import Phases, PushResult
from syncd.lists.rows import RowChecker
from syncd.settings import SyncdSettings
from syncd.web.auth import principal_of
from syncd.web.errors import ApiError
from syncd.web.logs import request_id
from syncd.web.operations import Param, op
from syncd.web.params import json_response, query_flag

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
    uploads=parse.MEDIA_TYPES,
    tag="lists",
    query=(
        Param("complete", FLAG, "revoke the event's tickets missing from this list"),
        Param("dry_run", FLAG, "check and count, change nothing"),
    ),
)
async def push_list(request: web.Request) -> web.StreamResponse:
    try:
        return await _push_list(request)
    except spool.UploadRefusedError as exc:
        return _refusal(exc)


async def _push_list(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    complete, dry_run = query_flag(request, "complete"), query_flag(request, "dry_run")
    spool.refuse_announced_size(request, settings.max_list_bytes)
    if request.content_type not in parse.MEDIA_TYPES:
        raise ApiError(415, "unsupported_media_type", parse.UNSUPPORTED)
    event = await load_event(pool(request), request)
    checker = RowChecker(event["zones"], event["timezone"], settings.max_list_errors)
    with (
        request.app[UPLOADS].hold(principal_of(request).org_id),
        tempfile.TemporaryDirectory(prefix="syncd-list-", dir=settings.list_spool_dir) as tmp,
    ):
        body, copy_file = Path(tmp, "body"), Path(tmp, "copy.csv")
        phases = Phases()
        size = await spool.receive(request, body, settings.max_list_bytes, settings.upload_timeout)
        phases.mark("receive")
        rows = await worker.check_off_loop(
            body, copy_file, request.content_type, checker, _limits(settings)
        )
        phases.mark("parse")
        _raise_problems(checker)
        job, result = await _apply(
            request, event, push.Checked(rows, copy_file, phases), complete, dry_run
        )
    outcome = {**result.to_json(), "complete": complete, "dry_run": dry_run}
    extra = {"event_id": event["event_id"], "bytes": size, "phases": job.phases.seconds}
    log.info("list pushed", extra={**extra, **outcome})
    if not dry_run:
        for key in ("added", "reissued", "updated", "same", "revoked"):
            request.app[METRICS].list_rows.labels(key).inc(outcome[key])
    return json_response(outcome)


async def _apply(
    request: web.Request,
    event: asyncpg.Record,
    checked: push.Checked,
    complete: bool,
    dry_run: bool,
) -> tuple[push.PushJob, PushResult]:
    """One transaction; a dry run rolls it back after counting."""
    settings = request.app[SETTINGS]
    result = PushResult()
    try:
        async with pool(request).acquire() as conn, conn.transaction():

            async def lock() -> bytes:
                await load_event(conn, request, lock=True)
                return await signing.signer(conn, event["event_id"])

            job = push.PushJob(
                conn,
                event["event_id"],
                complete,
                checked,
                lock,
                settings.list_statement_timeout,
                settings.list_batch_rows,
            )
            result = await push.run(job)
            if dry_run:
                raise _Rollback
    except _Rollback:
        pass
    except asyncpg.QueryCanceledError:
        raise spool.UploadRefusedError(
            503,
            "list_apply_timeout",
            "applying the list took longer than SYNCD_LIST_STATEMENT_TIMEOUT allows;"
            " nothing was changed",
            headers={"Retry-After": str(spool.RETRY_AFTER_SECONDS * 12)},
        ) from None
    return job, result


def _limits(settings: SyncdSettings) -> parse.Limits:
    return parse.Limits(settings.list_max_record_chars, settings.list_max_rows)


def _raise_problems(checker: RowChecker) -> None:
    if checker.problem_count:
        problems = sorted(checker.problems, key=lambda p: (p.row, p.column))
        raise ApiError(
            422,
            "invalid_list",
            f"the list has {checker.problem_count} problem(s); nothing was changed",
            problem_count=checker.problem_count,
            problems=[p.to_json() for p in problems[: checker.max_problems]],
        )


def _refusal(exc: spool.UploadRefusedError) -> web.Response:
    """The error body every failure has (``middleware.errors``), plus the refusal's headers."""
    rid = request_id.get()
    response = web.json_response(
        {**exc.body(), "request_id": rid},
        status=exc.status,
        headers={**(exc.headers or {}), "X-Request-Id": rid},
    )
    if exc.close:
        response.force_close()
    return response
