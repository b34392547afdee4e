"""Ticket issuance: each ticket's T1 QR (text, PNG, SVG), a printable HTML sheet, and a CSV
export for mail-merge. QR codes are signed on demand with the key recorded on the ticket, so
they are the same every time until the ticket is reissued (Ed25519 signatures are deterministic).

The export is opened in spreadsheets, and its text comes from organisers' lists (holder names,
references, categories, zone names): a cell a spreadsheet would run as a formula is neutralised
as OWASP's CSV-injection advice says (``csv_cell``), and every text cell is quoted.
"""

from __future__ import annotations

import asyncio
import csv
import html
import io
from collections.abc import Iterable
from datetime import UTC, datetime

import asyncpg
import segno
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.ticket import sign_ticket
from syncd import signing
from syncd.api.common import load_event, pool, vault
from syncd.api.queries import issuance as q
from syncd.api.queries.tickets import ticket_total
from syncd.api.tickets import load_ticket
from syncd.web.errors import ApiError
from syncd.web.operations import Param, op
from syncd.web.params import UINT64, query_int, query_text

EXPORT_COLUMNS = (
    "ticket_id",
    "external_ref",
    "holder_name",
    "email",
    "category",
    "zones",
    "valid_from",
    "valid_until",
    "status",
    "qr_text",
)
FORMAT = {"type": "string", "enum": ["text", "png", "svg"]}


def qr_text(keys: dict[bytes, Ed25519PrivateKey], row: asyncpg.Record | dict) -> str:
    key = keys.get(bytes(row["kid"]))
    if key is None:
        raise ApiError(409, "key_unavailable", "the ticket's signing key is retired; reissue it")
    return sign_ticket(
        key,
        event_id=row["event_id"],
        ticket_id=row["ticket_id"],
        nonce=row["nonce"],
        zone=row["zone"],
        valid_from=row["valid_from"],
        valid_until=row["valid_until"],
    )


def _qr(text: str) -> segno.QRCode:
    return segno.make_qr(text, error="m")


@op(
    "GET",
    "/api/v1/events/{event_id}/tickets/{ticket_id}/qr",
    "The ticket's T1 QR code as text, PNG or SVG.",
    role="organiser",
    tag="issuance",
    produces="image/png",
    query=(
        Param("format", FORMAT, "text (default), png or svg"),
        Param("scale", {"type": "integer", "minimum": 1, "maximum": 40}, "pixels per module"),
    ),
)
async def ticket_qr(request: web.Request) -> web.Response:
    fmt = request.query.get("format", "text")
    if fmt not in FORMAT["enum"]:
        raise ApiError(400, "bad_query", "format must be text, png or svg")
    scale = query_int(request, "scale", 8, 1, 40)
    ticket = await load_ticket(pool(request), request)
    keys = await signing.private_keys(pool(request), vault(request), ticket["event_id"])
    text = qr_text(keys, ticket)
    if fmt == "text":
        return web.Response(text=text, content_type="text/plain")
    buf = io.BytesIO()
    _qr(text).save(buf, kind=fmt, scale=scale, border=4)
    content_type = "image/png" if fmt == "png" else "image/svg+xml"
    return web.Response(body=buf.getvalue(), content_type=content_type)


def zone_names(zones: list[str], mask: int) -> str:
    if mask == 0xFFFF:
        return "all"
    return "|".join(name for i, name in enumerate(zones) if mask >> i & 1)


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat() if seconds else ""


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(text: str) -> str:
    """``text`` as a spreadsheet shows it rather than runs it: a value starting with ``=``,
    ``+``, ``-``, ``@``, tab or CR gets a leading single quote (OWASP CSV injection); the
    writer quotes every text cell, so separators and quotes inside stay in the cell."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def export_rows(event: asyncpg.Record, keys: dict, rows: Iterable[asyncpg.Record]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_NONNUMERIC)
    for r in rows:
        row = {**dict(r), "event_id": event["event_id"]}
        texts = (
            r["external_ref"],
            r["holder"],
            r["email"],
            r["category"],
            zone_names(event["zones"], r["zone"]),
            _iso(r["valid_from"]),
            _iso(r["valid_until"]),
            r["status"],
            qr_text(keys, row),
        )
        writer.writerow((r["ticket_id"], *map(csv_cell, texts)))
    return out.getvalue()


@op(
    "GET",
    "/api/v1/events/{event_id}/export.csv",
    "All tickets as CSV with their QR text, for mail-merge (streamed).",
    role="organiser",
    tag="issuance",
    produces="text/csv",
)
async def export_csv(request: web.Request) -> web.StreamResponse:
    event = await load_event(pool(request), request)
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="event-{event["event_id"]}-tickets.csv"',
        }
    )
    async with pool(request).acquire() as conn, conn.transaction(isolation="repeatable_read"):
        keys = await signing.private_keys(conn, vault(request), event["event_id"])
        total = await ticket_total(conn, event["event_id"])
        response.headers["X-Total-Count"] = str(total)
        await response.prepare(request)
        await response.write((",".join(EXPORT_COLUMNS) + "\n").encode())
        cursor = q.export_tickets(conn, event["event_id"])
        batch: list[asyncpg.Record] = []
        async for row in cursor:
            batch.append(row)
            if len(batch) == 5000:
                await response.write(
                    (await asyncio.to_thread(export_rows, event, keys, batch)).encode()
                )
                batch = []
        await response.write(export_rows(event, keys, batch).encode())
    await response.write_eof()
    return response


_SHEET = """<!doctype html><html><head><meta charset="utf-8"><title>{title}</title><style>
body{{font-family:sans-serif;margin:0}} .t{{display:inline-block;width:45%;margin:1.5%;
padding:8px;border:1px dashed #888;break-inside:avoid;vertical-align:top}}
.t svg{{width:60%;height:auto}} .h{{font-size:1.2em;font-weight:bold}} .m{{color:#444}}
@media print{{.t{{page-break-inside:avoid}}}}</style></head><body><h1>{title}</h1>{cards}
</body></html>"""


def _card(event: asyncpg.Record, keys: dict, row: asyncpg.Record) -> str:
    text = qr_text(keys, {**dict(row), "event_id": event["event_id"]})
    svg = _qr(text).svg_inline(scale=3)
    return (
        f'<div class="t">{svg}<div class="h">{html.escape(row["holder"])}</div>'
        f'<div class="m">{html.escape(row["category"])} · zones '
        f"{html.escape(zone_names(event['zones'], row['zone']))}</div>"
        f'<div class="m">ref {html.escape(row["external_ref"])} · #{row["ticket_id"]}</div>'
        "</div>"
    )


@op(
    "GET",
    "/api/v1/events/{event_id}/sheet.html",
    "A printable HTML sheet of valid tickets with their QR codes (pages by ticket_id).",
    role="organiser",
    tag="issuance",
    produces="text/html",
    query=(
        Param("after", {"type": "integer", "minimum": 0}, "ticket_id to continue after"),
        Param("limit", {"type": "integer", "minimum": 1, "maximum": 500}, "tickets"),
        Param("external_ref", {"type": "string"}, "only this ticket"),
    ),
)
async def sheet(request: web.Request) -> web.Response:
    event = await load_event(pool(request), request)
    after = query_int(request, "after", 0, 0, UINT64 >> 1)
    limit = query_int(request, "limit", 100, 1, 500)
    external_ref = query_text(request, "external_ref")
    rows = await q.sheet_page(pool(request), event["event_id"], after, external_ref, limit)
    keys = await signing.private_keys(pool(request), vault(request), event["event_id"])
    cards = await asyncio.to_thread(lambda: "".join(_card(event, keys, r) for r in rows))
    page = _SHEET.format(title=html.escape(event["name"]), cards=cards)
    return web.Response(text=page, content_type="text/html")
