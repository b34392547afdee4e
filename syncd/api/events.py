"""Events and their signing keys."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal
from zoneinfo import available_timezones

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from shared.checkout import CHECKOUT_PATTERN, parse_checkout_time
from shared.protocol import MAX_GATE_TIME
from shared.rotating import MAX_PERIOD, MIN_PERIOD
from shared.ticket import public_key_to_b64
from syncd import signing
from syncd.api.common import event_json, load_event, pool, vault
from syncd.api.queries import Conn
from syncd.api.queries import events as q
from syncd.feed import append as feed
from syncd.web.auth import principal_of
from syncd.web.errors import ApiError
from syncd.web.operations import op
from syncd.web.params import json_response, read_model

Name = Field(min_length=1, max_length=200)
ZONES = sorted(available_timezones())  # the IANA names tzdata has; the schema lists them
Absent = SkipJsonSchema[None]  # the default of a left-out field; not a value a client may send
# 1-64 characters, no '|' (the CSV zones separator), no space at either end.
ZoneName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^|\s]([^|]*[^|\s])?$")]
WHOLE_EVENT = "*"  # the capacity key of the whole event (all zones together)
MAX_CAPACITY = 10_000_000
CapacityKey = Annotated[str, Field(min_length=1, max_length=64)]
Capacity = Annotated[int, Field(ge=1, le=MAX_CAPACITY)]


# Event times travel to gates as Unix seconds (shared.bundle, 0 = unknown) in T1's range.
EARLIEST = datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)
LATEST = datetime.fromtimestamp(MAX_GATE_TIME, UTC)


class EventPatch(BaseModel):
    """Fields of an event; on update every field is optional. Fields the event always has
    (``Absent``) may be left out but not sent as ``null`` (422, not a NOT NULL violation);
    ``starts_at``/``ends_at`` may be null (unknown)."""

    model_config = ConfigDict(extra="forbid", strict=True)  # no "5" for 5, no false for 0
    name: Annotated[str, Field(min_length=1, max_length=200)] | Absent = None
    venue: Annotated[str, Field(max_length=200)] | Absent = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    timezone: Annotated[str, Field(json_schema_extra={"enum": ZONES})] | Absent = None
    zones: Annotated[list[ZoneName], Field(max_length=16)] | Absent = Field(
        None,
        description="Zone names, unique regardless of case; zone i is bit i of a ticket's zone"
        " mask.",
        json_schema_extra={"uniqueItems": True},
    )
    reentry: Literal["never", "after_exit", "always"] | Absent = None
    rotating: bool | Absent = Field(
        None,
        description="Only holder-bound rotating codes (T2, from the wallet page) admit; gates"
        " refuse static T1 codes.",
    )
    rotation_period: Annotated[int, Field(ge=MIN_PERIOD, le=MAX_PERIOD)] | Absent = Field(
        None, description="Seconds a rotating code lives (default 10)."
    )
    checkout_time: Annotated[str, Field(json_schema_extra={"pattern": CHECKOUT_PATTERN})] | None = (
        Field(
            None,
            description="Automatic check-out: at this local time (HH:MM, the event's time zone)"
            " every day, everyone counts as outside; null turns it off (the default).",
            examples=["04:00"],
        )
    )

    capacity: Annotated[dict[CapacityKey, Capacity], Field(max_length=17)] | Absent = Field(
        None,
        description="Most people inside at once, by zone name, or '*' for the whole event;"
        " the organisers' dashboard shows inside now against it. Replaces the whole map ({}:"
        " none).",
        examples=[{"*": 5000, "VIP": 200}],
    )

    @field_validator(
        "name", "venue", "timezone", "zones", "reentry", "rotating", "rotation_period", "capacity"
    )
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:  # only an explicit null gets here; a left-out field is not validated
            raise ValueError("may not be null (leave the field out to keep its value)")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None and value not in ZONES:
            raise ValueError("unknown time zone (an IANA name such as Europe/Berlin)")
        return value

    @field_validator("checkout_time")
    @classmethod
    def _wall_time(cls, value: str | None) -> str | None:
        if value is not None:
            parse_checkout_time(value)  # ValueError: "checkout time must be HH:MM ..."
        return value

    @field_validator("zones")
    @classmethod
    def _zone_names(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            cleaned = [z.strip() for z in value]
            if any(not z or len(z) > 64 or "|" in z for z in cleaned):
                raise ValueError("zone names are 1-64 characters without '|'")
            if len({z.lower() for z in cleaned}) != len(cleaned):
                raise ValueError("zone names must be unique")
            return cleaned
        return value

    @model_validator(mode="after")
    def _ordered(self) -> EventPatch:
        if self.starts_at and self.ends_at and self.ends_at < self.starts_at:
            raise ValueError("ends_at is before starts_at")
        for when in (self.starts_at, self.ends_at):
            if when is not None and when.tzinfo is None:
                raise ValueError("times need a UTC offset, e.g. 2026-06-01T18:00:00+02:00")
            if when is not None and not EARLIEST <= when <= LATEST:
                raise ValueError(
                    f"times must lie between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}"
                )
        return self


class EventIn(EventPatch):
    name: str = Field(min_length=1, max_length=200)  # type: ignore[assignment]


def check_capacity(capacity: dict[str, int], zones: list[str]) -> None:
    """Each capacity key is one of ``zones`` or ``*`` (422 otherwise)."""
    unknown = sorted(set(capacity) - {WHOLE_EVENT, *zones})
    if unknown:
        raise ApiError(
            422,
            "invalid",
            f"capacity names no zone of the event: {', '.join(map(repr, unknown))}"
            f" (zones: {', '.join(zones) or 'none'}; '*': the whole event)",
        )


def _renamed(capacity: dict[str, int], old: list[str], new: list[str]) -> dict[str, int]:
    """``capacity`` with each renamed zone's key renamed (zones keep their position)."""
    names = dict(zip(old, new, strict=False))
    return {names.get(key, key): value for key, value in capacity.items()}


@op(
    "POST",
    "/api/v1/events",
    "Create an event (and its first signing key).",
    role="organiser",
    body=EventIn,
    tag="events",
    ok_status=201,
)
async def create_event(request: web.Request) -> web.Response:
    body = await read_model(request, EventIn)
    values = body.model_dump(exclude_none=True)
    check_capacity(values.get("capacity", {}), values.get("zones", []))
    async with pool(request).acquire() as conn, conn.transaction():
        row = await q.insert_event(conn, principal_of(request).org_id, values)
        await signing.create_key(conn, vault(request), row["event_id"])
    return json_response(event_json(row), status=201)


@op("GET", "/api/v1/events", "List the organisation's events.", tag="events")
async def list_events(request: web.Request) -> web.Response:
    rows = await q.org_events(pool(request), principal_of(request).org_id)
    return json_response({"events": [event_json(r) for r in rows]})


@op("GET", "/api/v1/events/{event_id}", "Show an event with ticket counts.", tag="events")
async def get_event(request: web.Request) -> web.Response:
    row = await load_event(pool(request), request)
    counts = await q.ticket_counts(pool(request), row["event_id"])
    return json_response({**event_json(row), "tickets": {r["status"]: r["n"] for r in counts}})


@op(
    "PATCH",
    "/api/v1/events/{event_id}",
    "Change an event's details.",
    role="organiser",
    body=EventPatch,
    tag="events",
)
async def update_event(request: web.Request) -> web.Response:
    body = await read_model(request, EventPatch)
    values = body.model_dump(exclude_unset=True)
    async with pool(request).acquire() as conn, conn.transaction():
        event = await load_event(conn, request, lock=True)
        if "zones" in values and len(values["zones"]) < len(event["zones"]):
            raise ApiError(409, "zones_in_use", "zones can be renamed or added, not removed")
        if not values:
            return json_response(event_json(event))
        zones = values.get("zones", event["zones"])
        if "capacity" not in values and "zones" in values and event["capacity"]:
            values["capacity"] = _renamed(event["capacity"], event["zones"], zones)
        check_capacity(values.get("capacity", {}), zones)
        row = await q.update_event(conn, event["event_id"], values)
        if set(values) - {"venue", "capacity"}:  # what gates use changed: the feed tells them
            await feed.append_event(conn, event["event_id"])
    return json_response(event_json(row))


def _key_json(row: dict) -> dict:
    public = Ed25519PublicKey.from_public_bytes(bytes(row["public_key"]))
    return {
        "kid": bytes(row["kid"]).hex(),
        "public_key": public_key_to_b64(public),
        "status": row["status"],
        "signer": row["is_signer"],
        "created_at": row["created_at"].isoformat(),
        "retired_at": row["retired_at"].isoformat() if row["retired_at"] else None,
    }


async def _keys(conn: Conn, event_id: int) -> list[dict]:
    rows = await q.event_keys(conn, event_id)
    return [_key_json(dict(r)) for r in rows]


@op("GET", "/api/v1/events/{event_id}/keys", "List an event's public keys.", tag="keys")
async def list_keys(request: web.Request) -> web.Response:
    event = await load_event(pool(request), request)
    return json_response({"keys": await _keys(pool(request), event["event_id"])})


@op(
    "POST",
    "/api/v1/events/{event_id}/keys",
    "Rotate: a new key becomes the signer.",
    role="organiser",
    tag="keys",
    ok_status=201,
)
async def rotate_key(request: web.Request) -> web.Response:
    async with pool(request).acquire() as conn, conn.transaction():
        event = await load_event(conn, request, lock=True)
        kid = await signing.create_key(conn, vault(request), event["event_id"])
        keys = await _keys(conn, event["event_id"])
    return json_response({"kid": kid.hex(), "keys": keys}, status=201)


@op(
    "POST",
    "/api/v1/events/{event_id}/keys/{kid}/retire",
    "Retire a key; its valid tickets are reissued under the signer.",
    role="organiser",
    tag="keys",
)
async def retire_key(request: web.Request) -> web.Response:
    text = request.match_info["kid"]
    try:
        kid = bytes.fromhex(text)
    except ValueError:
        kid = b""
    if len(kid) != 4:
        raise ApiError(404, "not_found", "key not found")
    async with pool(request).acquire() as conn, conn.transaction():
        event = await load_event(conn, request, lock=True)
        moved = await signing.retire_key(conn, event["event_id"], kid)
        keys = await _keys(conn, event["event_id"])
    return json_response({"reissued": moved, "keys": keys})
