"""The wire protocol between a gate and syncd (docs/design.md section 3).

Every gate endpoint below, except enrolment, takes ``Authorization: Bearer <gate credential>``;
a gate credential starts with ``tsg_`` and reaches only its own event's gate endpoints.

::

    POST /api/v1/gate/enroll     EnrollRequest  -> EnrollResponse   one-time code -> credential
    POST /api/v1/gate/checkins   PushRequest    -> PushResponse     idempotent on (gate, seq)
    GET  /api/v1/gate/changes    ?cursor=C&wait=S -> ChangesPage    long-poll up to S seconds
    GET  /api/v1/gate/stream     ?cursor=C -> server-sent events     one ChangesPage per event
    GET  /api/v1/gate/snapshot   -> signed bundle (shared.bundle); header.cursor = feed position
    GET  /api/v1/gate/presence   -> PresencePage                    who is inside now
    POST /api/v1/gate/peers      PeersReport    -> PeersPage        my LAN URLs -> the event's gates
    POST /api/v1/gate/drill      DrillReport    -> DrillAnswer      the pre-doors drill's board

Push: a gate sends its journal in ``seq`` order, in batches; syncd stores each check-in once
(unique on gate + seq; a different ``scan_id`` for a stored seq is a 409) and answers with the
highest *contiguous* seq it holds, so the gate marks exactly those synced. Retrying any batch any
number of times changes nothing. ``sent_at`` is the gate's clock when it sent the batch; syncd
measures ``skew = server_time - sent_at`` and corrects that gate's scan times by it. Every field
is bounded to what syncd stores (``CheckinIn``); a push outside the bounds is one 422 naming the
field, and nothing of it is kept.

Pull: ``cursor`` is opaque (empty = from the start). A page applies atomically on the gate; then
the gate asks again with the page's ``cursor``. ``snapshot_required`` means the cursor is too old
or unknown: fetch the snapshot, apply it, then the presence, then continue from the snapshot's
cursor. Check-ins in the feed carry scan times already corrected to syncd's clock.

Stream: the same pages pushed, as server-sent events on one connection that stays open
(``syncd.feed.stream`` documents the events): authenticated once, no request per change. A
gate that cannot stream (an old syncd answers 404, a proxy that buffers) long-polls instead.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.bundle import MAX_GROUP_CHARS
from shared.checkout import CHECKOUT_PATTERN

ENROLL_PATH = "/api/v1/gate/enroll"
PUSH_PATH = "/api/v1/gate/checkins"
CHANGES_PATH = "/api/v1/gate/changes"
SNAPSHOT_PATH = "/api/v1/gate/snapshot"
PRESENCE_PATH = "/api/v1/gate/presence"
PEERS_PATH = "/api/v1/gate/peers"
STREAM_PATH = "/api/v1/gate/stream"
DRILL_PATH = "/api/v1/gate/drill"
MAX_DRILL_ITEMS = 16
MAX_PEER_URLS = 8
GATE_CREDENTIAL_PREFIX = "tsg_"
MAX_PUSH_BATCH = 1000
MAX_WAIT_SECONDS = 30

# RabbitMQ routing keys on the topic exchange (docs/design.md section 4).
ROUTING_KEYS = (
    "checkin.performed",  # admitted in
    "checkin.invalid",  # denied scan
    "checkout.performed",  # admitted out
    "checkin.conflict",  # a second admission of a ticket while gates were apart
    "tickets.updated",  # list changes (pushes, reissue, revoke ...)
    "checkin.annulled",  # staff (or a passage that never came) undid an admission
    "checkin.passed",  # the turnstile or light beam confirmed an admission
    "checkin.tailgate",  # a passage with no admission
    "checkout.automatic",  # an event's check-out time passed: everyone counts as outside
)

Direction = Literal["in", "out"]
Outcome = Literal["admit", "deny", "annul", "passed", "tailgate"]
"""A scan's decision, or a door operation: ``annul`` and ``passed`` are about the same gate's
admission ``ref_seq``; ``tailgate`` is a passage with no admission (docs/design.md section 8)."""
_UINT32 = Field(ge=0, le=2**32 - 1)
_UINT64 = Field(ge=0, le=2**64 - 1)
MAX_SEQ = 2**63 - 1  # Postgres bigint
MAX_TICKET_ID = 2**63 - 1  # syncd issues ids from a bigint sequence; see CheckinIn
MAX_GATE_TIME = 2**32 - 1  # Unix seconds, as T1's valid_until (the year 2106)
# A gate's clock may be far off (a dead RTC battery reads 1970): skew corrects it, so any time
# from 0 to the end of T1's range is accepted; beyond it no clock can be, and sums overflow.
_GATE_TIME = Field(ge=0, le=MAX_GATE_TIME, allow_inf_nan=False)


class _Model(BaseModel):
    """What a gate sends: syncd refuses a field it does not know, and a value of the wrong JSON
    type (``"scanned_at": false`` or ``"seq": "5"`` is a 422, never coerced)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class _Answer(BaseModel):
    """What syncd sends: a gate ignores fields added after it was built (syncd upgrades first)."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class KeyInfo(_Answer):
    kid: str = Field(pattern=r"^[0-9a-f]{8}$")
    public_key: str = Field(min_length=43, max_length=44)  # raw 32 bytes, base64url
    status: Literal["active", "retired"] = "active"


_NO_NUL = r"^[^\x00]*$"  # Postgres text cannot hold NUL (syncd answers 422 for any)


class EnrollRequest(_Model):
    code: str = Field(min_length=1, max_length=200, pattern=_NO_NUL)
    device: str = Field(default="", max_length=200, pattern=_NO_NUL)  # hostname or serial
    # the gate's own peer key (raw 32-byte Ed25519 public key, base64url): syncd certifies it
    peer_key: str | None = Field(default=None, min_length=43, max_length=43)


class EnrollResponse(_Answer):
    gate_id: int
    gate_name: str
    event_id: int
    credential: str  # shown once; the gate stores it with file mode 0600
    keys: list[KeyInfo]
    server_time: float
    certificate: str | None = None  # shared.peering certificate of peer_key (None: none sent)


class CheckinIn(_Model):
    """One journal row. Every field is bounded to what its Postgres column holds, so a push
    that passes this model is never refused by the database (and never fails the pushes
    stored with it in one group commit).

    ``ticket_id`` is a T1 uint64 on the wire but at most 2^63-1 here: syncd issues ids from a
    bigint sequence and a gate journals only ids of tickets it verified (or looked up in its
    list, whose store holds signed 64-bit integers), so a larger id names no ticket anywhere and
    no honest gate sends one; it is refused (422) rather than stored as something it is not.
    """

    seq: int = Field(ge=1, le=MAX_SEQ)
    scan_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    ticket_id: int | None = Field(ge=0, le=MAX_TICKET_ID)
    direction: Direction
    outcome: Outcome
    reason: str | None = Field(default=None, max_length=64)
    via: str = Field(default="scanner", max_length=32)
    scanned_at: float = _GATE_TIME  # gate clock, Unix seconds
    ref_seq: int | None = Field(default=None, ge=1, le=MAX_SEQ)  # annul, passed: the admission

    @model_validator(mode="after")
    def _ref(self) -> CheckinIn:
        """An annulment or confirmation names an earlier admission; nothing else names one."""
        if self.outcome in ("annul", "passed"):
            if self.ref_seq is None or self.ref_seq >= self.seq:
                raise ValueError(f"{self.outcome} needs ref_seq, an earlier seq of this gate")
        elif self.ref_seq is not None:
            raise ValueError(f"a {self.outcome} row has no ref_seq")
        return self

    @field_validator("seq", "ticket_id", "ref_seq", mode="before")
    @classmethod
    def _integral(cls, value: Any) -> Any:
        """JSON Schema counts 5.0 as an integer, so the strict model takes it as 5 (and still
        refuses 5.5, ``true`` and ``"5"``)."""
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return value


class PushRequest(_Model):
    sent_at: float = _GATE_TIME  # gate clock, Unix seconds
    checkins: list[CheckinIn] = Field(min_length=1, max_length=MAX_PUSH_BATCH)
    # Journal rows the gate still holds unsynced besides this batch, for the organisers'
    # dashboard; optional, so a gate built before it still pushes (None: not reported).
    backlog: int | None = Field(default=None, ge=0, le=MAX_SEQ)


class PushResponse(_Answer):
    acked_seq: int  # highest contiguous seq syncd holds for this gate (0 = none)
    stored: int  # how many of this batch were new
    server_time: float  # syncd's clock when the push arrived
    skew: float  # server_time - sent_at, seconds
    clock_warning: str | None = None
    committed_at: float | None = None  # syncd's clock just after the batch's transaction committed


class TicketChange(_Answer):
    ticket_id: int = _UINT64
    nonce: int = _UINT32
    status: Literal["valid", "revoked", "blocked"]
    zone: int = Field(ge=0, le=0xFFFF)
    category: str = ""
    holder: str | None = None
    valid_from: int = Field(default=0, ge=0, le=2**32 - 1)  # as in the ticket; 0 = no bound
    valid_until: int = Field(default=0, ge=0, le=2**32 - 1)
    group: str = Field(default="", max_length=MAX_GROUP_CHARS)  # an order, a family; "" = none


class CheckinChange(_Answer):
    ticket_id: int = _UINT64
    gate_id: int
    gate_name: str
    direction: Direction
    at: float  # scan time corrected to syncd's clock
    conflict: bool = False
    seq: int | None = None  # the gate's journal seq (peers and the feed dedupe on gate + seq)
    ref_seq: int | None = None  # checkin.annulled: the seq of the admission it undoes


class GateChange(_Answer):
    """A gate of the event enrolled (with its peer certificate) or was revoked."""

    gate_id: int
    gate_name: str
    certificate: str | None = None
    revoked: bool = False


ZoneBit = Annotated[str, Field(pattern=r"^(1[0-5]|[0-9])$")]
"""A zone's bit index as JSON object keys carry it: "0" .. "15"."""


class EventChange(_Answer):
    """The event's settings as they are now (``event.updated``): what the gate's decision uses."""

    name: str = Field(max_length=200)
    timezone: str = Field(max_length=64)
    reentry: Literal["never", "after_exit", "always"]
    zones: dict[ZoneBit, Annotated[str, Field(max_length=64)]] = Field(default={}, max_length=16)
    starts_at: int = Field(default=0, ge=0, le=MAX_GATE_TIME)
    ends_at: int = Field(default=0, ge=0, le=MAX_GATE_TIME)
    rotating: bool = False  # only holder-bound rotating codes (T2) admit
    rotation_period: int = Field(default=10, ge=2, le=300)
    checkout_time: str | None = Field(default=None, pattern=CHECKOUT_PATTERN)  # shared.checkout


class Change(_Answer):
    seq: int
    kind: str  # ticket.*, key.*, checkin.in|out|annulled, gate.enrolled|revoked, event.updated
    ticket: TicketChange | None = None
    key: KeyInfo | None = None
    checkin: CheckinChange | None = None
    gate: GateChange | None = None
    event: EventChange | None = None


class ChangesPage(_Answer):
    cursor: str
    changes: list[Change] = []
    more: bool = False  # another page is ready now: ask again without waiting
    snapshot_required: bool = False


class PresencePage(_Answer):
    cursor: str  # feed position this presence reflects
    inside: list[CheckinChange] = []  # latest admission per ticket that is inside now


PeerUrl = Annotated[str, Field(pattern=r"^https?://[!-~]{3,192}$", max_length=200)]
"""http(s)://host:port as peers reach it: printable ASCII without spaces, at most 200."""


class PeersReport(_Model):
    """Where this gate's peer server answers on the venue LAN (None: leave them as they are)."""

    urls: list[PeerUrl] | None = Field(default=None, max_length=MAX_PEER_URLS)


class PeersPage(_Answer):
    """The event's other enrolled (and revoked) gates, with their certificates and URLs."""

    gates: list[GateChange] = []
    urls: dict[str, list[str]] = {}  # gate_id -> the URLs that gate reported


DrillStatus = Literal["ok", "warn", "fail", "skip"]
DrillResult = Literal["green", "amber", "red"]
_PRINTABLE = r"^[^\x00-\x1f\x7f-\x9f]*$"  # no control characters: it is printed to terminals


class DrillItem(_Model):
    """One line of a pre-doors drill's board (``gate.drill``): a check's name, how it went, its
    figure ("1,204 tickets, 12 min old") and one line of explanation. Text only, no secrets."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    status: DrillStatus
    figure: str = Field(default="", max_length=120, pattern=_PRINTABLE)
    detail: str = Field(default="", max_length=240, pattern=_PRINTABLE)


def drill_result(statuses: list[str]) -> DrillResult:
    """Red when an item failed, amber when one only warned, else green (skips count as ok)."""
    if "fail" in statuses:
        return "red"
    return "amber" if "warn" in statuses else "green"


class DrillReport(_Model):
    """A gate's drill, as it ran (gate clock). syncd derives the result from the items; the
    gate is the one that sent it (its credential), never a field of the body."""

    ran_at: float = _GATE_TIME
    seconds: float = Field(ge=0, le=3600, allow_inf_nan=False)
    items: list[DrillItem] = Field(min_length=1, max_length=MAX_DRILL_ITEMS)

    @property
    def result(self) -> DrillResult:
        return drill_result([item.status for item in self.items])


class DrillAnswer(_Answer):
    result: DrillResult  # as syncd stored it
    server_time: float
