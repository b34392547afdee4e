"""The signed list bundle: an event's keys and ticket list, as syncd serves it to gates.

A bundle is a gzip stream of UTF-8 JSON lines::

    line 1        header  {"format": "tessera-bundle/3", "event": {...}, "keys": [...],
                           "ticket_count": N, "issued_at": unix, "cursor": str | null}
    lines 2..N+1  ticket  [ticket_id, nonce, status, zone, category, holder,
                           valid_from, valid_until, group]
    last line     trailer {"signer": kid-hex, "signature": base64url}

A ticket row carries everything the gate's decision needs without the QR (docs/design.md section 2
minus the signature), so a manual admit by ticket number applies the same rules as a scan:
``valid_from`` / ``valid_until`` are Unix seconds (0 = no bound), as in the signed ticket.
``group`` names the ticket's group (an order, a family: up to ``MAX_GROUP_CHARS`` characters,
"" = none), which a gate may admit from one scan of any member's code.

Formats: 3 added ``group``; 2 has the first eight fields only (read as group ""), and is what
syncd still writes for a gate that does not ask for 3 (a gate built before groups refuses any
format but 2, so it keeps loading snapshots). Format 1 rows had no validity window; a reader
refuses a format-1 bundle by name rather than guess that its tickets are valid forever.

The trailer's Ed25519 signature covers ``b"TESSERA-BUNDLE-1\\0" + sha256(every byte before the
trailer)``; the prefix keeps bundle signatures from ever being confused with ticket signatures
(a ticket body is 31 bytes starting 0x01). The signer must be a key the reader already trusts, so
a file on a USB stick cannot inject tickets. Reading streams (1,000,000 tickets need not fit in
memory): a reader applies tickets as they come inside one transaction and commits only after
``BundleReader.finish()`` has checked the signature and the count.
"""

from __future__ import annotations

import base64
import dataclasses
import gzip
import hashlib
import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import IO, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.errors import BundleError
from shared.ticket import Keyring, key_id

FORMAT = "tessera-bundle/3"
FORMATS = {"tessera-bundle/2": 8, FORMAT: 9}
"""The formats a reader takes, with the number of fields of their ticket rows."""
_OLD_FORMATS = ("tessera-bundle/1",)
MAX_GROUP_CHARS = 64
"""The longest group name a list may give a ticket (syncd refuses a longer one per row)."""
_DOMAIN = b"TESSERA-BUNDLE-1\x00"
TICKET_STATUSES = ("valid", "revoked", "blocked")


@dataclass(frozen=True, slots=True)
class BundleKey:
    kid: str  # 8 hex digits
    public_key: str  # raw 32 bytes, base64url
    status: str = "active"  # active | retired


@dataclass(frozen=True, slots=True)
class BundleEvent:
    event_id: int
    name: str
    zones: dict[str, str] = field(default_factory=dict)  # bit index (as str) -> zone name
    timezone: str = "UTC"
    reentry: str = "after_exit"  # never | after_exit | always
    starts_at: int = 0
    ends_at: int = 0
    rotating: bool = False  # only holder-bound rotating codes (T2) admit; static T1 codes do not
    rotation_period: int = 10  # seconds a T2 code lives (shared.rotating), rotating or not
    checkout_time: str | None = None  # "HH:MM" local: everyone outside then (shared.checkout)


def _known(fields: dict[str, Any], cls: type) -> dict[str, Any]:
    """Only the fields ``cls`` has: a header from a newer syncd may carry event settings this
    gate does not know yet (syncd upgrades first); a missing required field still fails."""
    if not isinstance(fields, dict):
        raise TypeError("the event is not an object")
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in fields.items() if k in names}


@dataclass(frozen=True, slots=True)
class BundleTicket:
    ticket_id: int
    nonce: int
    status: str = "valid"
    zone: int = 0xFFFF
    category: str = ""
    holder: str | None = None
    valid_from: int = 0  # Unix seconds, 0 = no lower bound
    valid_until: int = 0  # Unix seconds, 0 = no upper bound
    group: str = ""  # the ticket's group (an order, a family); "" = none

    def to_row(self, fields: int = 9) -> list[Any]:
        """The row of a bundle whose rows have ``fields`` fields (8: format 2, no group)."""
        row = [
            self.ticket_id,
            self.nonce,
            self.status,
            self.zone,
            self.category,
            self.holder,
            self.valid_from,
            self.valid_until,
            self.group,
        ]
        return row[:fields]


@dataclass(frozen=True, slots=True)
class BundleHeader:
    event: BundleEvent
    keys: list[BundleKey]
    ticket_count: int
    issued_at: int = 0
    cursor: str | None = None
    format: str = FORMAT  # one of FORMATS; "tessera-bundle/2" rows leave the group out

    @property
    def row_fields(self) -> int:
        return FORMATS[self.format]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        return {"format": data.pop("format"), **data}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BundleHeader:
        if not isinstance(data, dict):
            raise BundleError("bad bundle header: not a JSON object")
        if data.get("format") in _OLD_FORMATS:
            raise BundleError(
                f"bundle format {data['format']} is too old: its tickets carry no validity"
                f" window; export it again with an up-to-date syncd (`tessera bundle`)"
            )
        if not isinstance(data.get("format"), str) or data["format"] not in FORMATS:
            raise BundleError(f"not a tessera bundle (formats: {', '.join(FORMATS)})")
        try:
            return cls(
                event=BundleEvent(**_known(data["event"], BundleEvent)),
                keys=[BundleKey(**k) for k in data["keys"]],
                ticket_count=int(data["ticket_count"]),
                issued_at=int(data.get("issued_at", 0)),
                cursor=data.get("cursor"),
                format=data["format"],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise BundleError(f"bad bundle header: {exc}") from exc


_UINT32 = 0xFFFFFFFF


def _is_int(value: Any, top: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= top


def _well_typed(t: BundleTicket) -> bool:
    """Types and ranges of a row (``ticket_id`` is a uint64 as in the signed ticket)."""
    return (
        _is_int(t.ticket_id, 2**64 - 1)
        and _is_int(t.nonce, _UINT32)
        and t.status in TICKET_STATUSES
        and _is_int(t.zone, 0xFFFF)
        and isinstance(t.category, str)
        and (t.holder is None or isinstance(t.holder, str))
        and _is_int(t.valid_from, _UINT32)
        and _is_int(t.valid_until, _UINT32)
        and isinstance(t.group, str)
        and len(t.group) <= MAX_GROUP_CHARS
    )


def _line(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def write_bundle(
    out: IO[bytes],
    header: BundleHeader,
    tickets: Iterable[BundleTicket],
    signer: Ed25519PrivateKey,
    *,
    compresslevel: int = 6,
) -> int:
    """Write a signed bundle to a binary stream; returns the number of tickets written.

    The header's ``ticket_count`` must match what ``tickets`` yields, else ``ValueError``;
    its ``format`` decides the rows' fields (format 2 leaves each ticket's group out).
    """
    fields = header.row_fields
    digest = hashlib.sha256()
    count = 0
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=compresslevel, mtime=0) as gz:
        head = _line({**header.to_json(), "issued_at": header.issued_at or int(time.time())})
        digest.update(head)
        gz.write(head)
        for ticket in tickets:
            line = _line(ticket.to_row(fields))
            digest.update(line)
            gz.write(line)
            count += 1
        if count != header.ticket_count:
            raise ValueError(f"header says {header.ticket_count} tickets, wrote {count}")
        signature = signer.sign(_DOMAIN + digest.digest())
        gz.write(
            _line(
                {
                    "signer": key_id(signer.public_key()).hex(),
                    "signature": base64.urlsafe_b64encode(signature).decode(),
                }
            )
        )
    return count


class BundleReader:
    """Stream a bundle: ``header`` on open, ``tickets()`` or ``batches()`` once, ``finish()``.

    Nothing read from a bundle may be trusted until ``finish()`` returns. Ticket lines are read
    and parsed a batch at a time (one ``json.loads`` per batch): 1,000,000 rows in a few seconds.
    """

    def __init__(self, stream: IO[bytes], trusted: Keyring) -> None:
        self._gz = gzip.GzipFile(fileobj=stream, mode="rb")
        self._trusted = trusted
        self._digest = hashlib.sha256()
        self._count = 0
        self._pending: list[bytes] = []
        self._trailer: dict[str, Any] | None = None
        self.header = BundleHeader.from_json(self._read_json(hashed=True))

    def _io(self, read: Any, *args: int) -> Any:
        try:
            return read(*args)
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise BundleError(f"bundle is not a readable gzip stream: {exc}") from exc

    def _readline(self) -> bytes:
        if self._pending:
            return self._pending.pop(0)
        return bytes(self._io(self._gz.readline, 1 << 20))

    def _read_json(self, *, hashed: bool) -> Any:
        line = self._readline()
        if not line.endswith(b"\n"):
            raise BundleError("bundle is truncated")
        if hashed:
            self._digest.update(line)
        try:
            return json.loads(line)
        except ValueError as exc:
            raise BundleError(f"bad JSON in bundle: {exc}") from exc

    def _lines(self, n: int) -> list[bytes]:
        """Up to ``n`` whole lines; lines read beyond them wait in ``_pending``."""
        out, self._pending = self._pending[:n], self._pending[n:]
        while len(out) < n:
            chunk: list[bytes] = self._io(self._gz.readlines, 1 << 16)
            if not chunk:
                break
            need = n - len(out)
            out += chunk[:need]
            self._pending = chunk[need:]
        if len(out) < n or not out[-1].endswith(b"\n"):
            raise BundleError("bundle is truncated")
        return out

    def batches(self, size: int = 4096) -> Iterator[list[BundleTicket]]:
        """The tickets, ``size`` at a time; reads the trailer after the last one."""
        while remaining := self.header.ticket_count - self._count:
            lines = self._lines(min(size, remaining))
            self._digest.update(b"".join(lines))
            try:
                rows = json.loads(b"[" + b",".join(lines) + b"]")
            except ValueError as exc:
                raise BundleError(f"bad JSON in ticket rows after {self._count}: {exc}") from exc
            if len(rows) != len(lines):
                raise BundleError(f"bad ticket rows after row {self._count}")
            yield [self._ticket(row) for row in rows]
        self._trailer = self._read_json(hashed=False)

    def tickets(self) -> Iterator[BundleTicket]:
        for batch in self.batches():
            yield from batch

    def _ticket(self, row: Any) -> BundleTicket:
        self._count += 1
        fields = self.header.row_fields
        if not isinstance(row, list) or len(row) != fields:
            raise BundleError(f"bad ticket row {self._count}: expected {fields} fields")
        ticket = BundleTicket(*row)
        if not _well_typed(ticket):
            raise BundleError(f"bad ticket row {self._count}: {row!r}"[:200])
        return ticket

    def finish(self) -> None:
        """Verify the signature (raises ``BundleError``); call after ``tickets()`` is drained."""
        if self._trailer is None or self._count != self.header.ticket_count:
            raise BundleError("bundle was not read to the end")
        if self._readline():
            raise BundleError("data after the bundle trailer")
        try:
            kid = bytes.fromhex(self._trailer["signer"])
            signature = base64.urlsafe_b64decode(self._trailer["signature"])
        except (KeyError, TypeError, ValueError) as exc:
            raise BundleError("bundle has no valid signature trailer") from exc
        key = self._trusted.get(kid)
        if key is None:
            raise BundleError(f"bundle signed by untrusted key {kid.hex()}")
        try:
            key.verify(signature, _DOMAIN + self._digest.digest())
        except InvalidSignature:
            raise BundleError("bundle signature does not match its contents") from None
