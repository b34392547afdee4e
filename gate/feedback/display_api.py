"""The kiosk page's API: scans for everyone, staff actions behind the staff PIN.

::

    POST /api/scan          {"text": "T1:..."}     -> the decision   (wedge scanner, typed code)
    GET  /api/staff         -> {"pin_set", "staff", "expires_in", "retry_after"}
    POST /api/staff/login   {"pin": "..."}         -> a session cookie (HttpOnly, SameSite=Strict)
    POST /api/staff/logout                         -> the session ends
    POST /api/search        {"q": "..."}           -> {"results": [...]}        (staff)
    POST /api/admit         {"ticket_id": n}       -> the decision              (staff)
                            {"ticket_id": n, "group": true}: its group too (false: alone;
                            absent: as GATE_GROUP_ADMIT says)
    POST /api/direction     {"direction": "in"}    -> {"direction": "in"}       (staff)
    POST /api/drill         {}                     -> the pre-doors drill's board (staff;
                                                      one at a time, else 409)
    POST /api/annul         {"seq": n} or {}       -> the annulment (latest admission if no seq)
                                                                                (staff)
    POST /api/passage       {}                     -> the passage: passed or tailgate
                                                      (turnstile: GATE_PASSAGE_TOKEN or loopback)

A scan is what any source delivers, so it needs no PIN: it goes through the gate's debouncer
(a scanner that sends a code twice is one scan) into the same pipeline, ``via="kiosk"``. Its
text is stripped of surrounding whitespace; one longer than ``MAX_SCAN_CHARS`` is one "Not a
ticket" (it is judged as ``OVERLONG``, never cut into pieces). Every bad request is one named
4xx: a body over ``max_body_bytes`` is 413, a ticket number that is not a whole number the
store can hold (0 .. 2**63-1) is 400, an action the gate refuses (wrong mode, an admission
that can no longer be annulled, passages not confirmed here) is 409.

A passage comes from a turnstile controller or beam, not from a person at the page: it needs
``Authorization: Bearer GATE_PASSAGE_TOKEN`` when that is set, and otherwise a caller on this
machine (loopback); either way the Host and Origin checks apply as to every request.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

from aiohttp import web

from gate.camera.capture import Capture
from gate.door.annul import AnnulRefused
from gate.feedback.display_settings import DisplaySettings
from gate.feedback.staff import MAX_PIN, PinGuard, StaffSessions
from gate.scan.debounce import Debouncer

MAX_SCAN_CHARS = 1024  # a T1 code is 146 characters, a T2 296; display.js stops at one more
OVERLONG = "(overlong input)"  # judged like any text without a ticket prefix: "Not a ticket"
MAX_QUERY_CHARS = 100
MAX_TICKET_ID = 2**63 - 1  # SQLite INTEGER
COOKIE = "tessera_staff"
_Handler = Callable[[web.Request], Awaitable[web.Response]]


class DisplayBackend(Protocol):
    """What the page asks of the gate. ``status`` keys: gate_name, admitted_today, inside_now,
    online, list_age_s (seconds since the list was last refreshed, None if never), unsynced."""

    async def status(self) -> Mapping[str, Any]: ...
    async def search(self, query: str) -> Sequence[Mapping[str, Any]]: ...
    async def admit(self, ticket_id: int, group: bool | None = None) -> Any: ...
    async def scan(self, text: str) -> Any: ...
    async def set_direction(self, direction: str) -> str: ...
    async def drill(self, camera: Capture | None) -> Mapping[str, Any]: ...
    async def annul(self, seq: int | None) -> Any: ...
    async def passage(self) -> Any: ...


class KioskApi:
    """Handlers for the routes above. ``backend`` and ``present`` come from the ``Display``:
    the backend may arrive after the page starts; ``present`` turns a decision into page JSON."""

    def __init__(
        self,
        settings: DisplaySettings,
        backend: Callable[[], DisplayBackend],
        present: Callable[[Any], dict[str, Any]],
    ) -> None:
        self.settings = settings
        self.pin = settings.pin_hash()
        self.guard = PinGuard(settings.pin_max_failures, settings.pin_lockout_seconds)
        self.sessions = StaffSessions(settings.staff_session_minutes * 60)
        self.debouncer: Debouncer | None = None  # the gate's, once the display runs in a gate
        self.camera: Capture | None = None  # the gate's camera: the drill samples its feed
        self._drilling = asyncio.Lock()
        self.passage_token: str | None = None  # GATE_PASSAGE_TOKEN, once the gate sets it
        self._backend = backend
        self._present = present
        self._login_lock = asyncio.Lock()

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/api/scan", self.scan),
            web.get("/api/staff", self.staff),
            web.post("/api/staff/login", self.login),
            web.post("/api/staff/logout", self.logout),
            web.post("/api/search", self._staff_only(self.search)),
            web.post("/api/admit", self._staff_only(self.admit)),
            web.post("/api/direction", self._staff_only(self.direction)),
            web.post("/api/drill", self._staff_only(self.drill)),
            web.post("/api/annul", self._staff_only(self.annul)),
            web.post("/api/passage", self.passage),
        ]

    # -- scans (no PIN) -----------------------------------------------------------------------
    async def scan(self, request: web.Request) -> web.Response:
        text = (await body(request)).get("text")
        if not isinstance(text, str) or not text.strip():
            raise web.HTTPBadRequest(text="send the scanned code as text")
        text = text.strip()
        if len(text) > MAX_SCAN_CHARS:
            text = OVERLONG
        elif self.debouncer is not None and not self.debouncer.accept(text):
            return json_response({"outcome": None, "repeat": True})
        return json_response(self._present(await self._backend().scan(text)))

    # -- staff sessions -----------------------------------------------------------------------
    async def staff(self, request: web.Request) -> web.Response:
        left = self.sessions.remaining(request.cookies.get(COOKIE))
        return json_response(
            {
                "pin_set": self.pin is not None,
                "staff": left > 0,
                "expires_in": round(left),
                "retry_after": math.ceil(self.guard.retry_after()),
            }
        )

    async def login(self, request: web.Request) -> web.Response:
        if self.pin is None:
            raise web.HTTPForbidden(text="no staff PIN is set on this gate (GATE_STAFF_PIN)")
        pin = (await body(request)).get("pin")
        if not isinstance(pin, str):
            raise web.HTTPBadRequest(text="send the PIN as text")
        async with self._login_lock:  # one try at a time: a burst cannot outrun the lock-out
            if (wait := math.ceil(self.guard.retry_after())) > 0:
                raise web.HTTPTooManyRequests(
                    text=f"too many wrong PINs: try again in {wait} s",
                    headers={"Retry-After": str(wait)},
                )
            right = len(pin) <= MAX_PIN and await asyncio.to_thread(self.pin.verify, pin)
            if not right:
                self.guard.failed()
                raise web.HTTPForbidden(text="wrong PIN")
            self.guard.succeeded()
        response = json_response({"staff": True, "expires_in": round(self.sessions.lifetime)})
        response.set_cookie(
            COOKIE,
            self.sessions.start(),
            max_age=round(self.sessions.lifetime),
            path="/",
            httponly=True,
            samesite="Strict",
        )
        return response

    async def logout(self, request: web.Request) -> web.Response:
        self.sessions.end(request.cookies.get(COOKIE))
        response = json_response({"staff": False})
        response.del_cookie(COOKIE, path="/")
        return response

    def _staff_only(self, handler: _Handler) -> _Handler:
        async def guarded(request: web.Request) -> web.Response:
            if self.pin is None:
                raise web.HTTPForbidden(text="staff actions are off: no GATE_STAFF_PIN is set")
            if self.sessions.remaining(request.cookies.get(COOKIE)) <= 0:
                raise web.HTTPUnauthorized(text="staff PIN needed")
            return await handler(request)

        return guarded

    # -- staff actions ------------------------------------------------------------------------
    async def search(self, request: web.Request) -> web.Response:
        query = (await body(request)).get("q")
        query = query.strip() if isinstance(query, str) else ""
        if not 2 <= len(query) <= MAX_QUERY_CHARS:
            raise web.HTTPBadRequest(text=f"type 2 to {MAX_QUERY_CHARS} characters")
        if query.isdigit():
            ticket_id(query)  # a ticket number the store cannot hold is a 400, not a 500
        results = await self._backend().search(query)
        return json_response({"results": [dict(r) for r in results]})

    async def admit(self, request: web.Request) -> web.Response:
        data = await body(request)
        number = ticket_id(data.get("ticket_id"))
        group = data.get("group")
        if group is not None and not isinstance(group, bool):
            raise web.HTTPBadRequest(text="group must be true or false")
        try:
            decision = await self._backend().admit(number, group)
        except ValueError as exc:  # e.g. the number is in two events
            raise web.HTTPConflict(text=str(exc)) from None
        return json_response(self._present(decision))

    async def direction(self, request: web.Request) -> web.Response:
        wanted = (await body(request)).get("direction")
        if wanted not in ("in", "out"):
            raise web.HTTPBadRequest(text='direction is "in" or "out"')
        try:
            now = await self._backend().set_direction(wanted)
        except ValueError as exc:  # a gate in mode entry or exit has no switch
            raise web.HTTPConflict(text=str(exc)) from None
        return json_response({"direction": now})

    async def drill(self, request: web.Request) -> web.Response:
        """The drill's board (gate.drill): the same checks as `gate drill`, with the running
        camera's feed; reported to syncd when enrolled. A few seconds; one at a time."""
        await body(request)
        if self._drilling.locked():
            raise web.HTTPConflict(text="a drill is running: wait for its board")
        async with self._drilling:
            return json_response(await self._backend().drill(self.camera))

    async def annul(self, request: web.Request) -> web.Response:
        raw = (await body(request)).get("seq")
        seq = None if raw is None else journal_seq(raw)
        try:
            done = await self._backend().annul(seq)
        except AnnulRefused as exc:
            raise web.HTTPConflict(text=str(exc)) from None
        return json_response(self._present(done))

    # -- passages (turnstile, beam) -----------------------------------------------------------
    async def passage(self, request: web.Request) -> web.Response:
        if self.passage_token is not None:
            sent = request.headers.get("Authorization", "")
            if not hmac.compare_digest(sent.encode(), f"Bearer {self.passage_token}".encode()):
                raise web.HTTPUnauthorized(text="send Authorization: Bearer GATE_PASSAGE_TOKEN")
        elif not _loopback(request.remote):
            raise web.HTTPForbidden(
                text="passages come from this machine unless GATE_PASSAGE_TOKEN is set"
            )
        await body(request)
        try:
            done = await self._backend().passage()
        except LookupError as exc:
            raise web.HTTPConflict(text=str(exc)) from None
        return json_response(done.to_json())


def _loopback(remote: str | None) -> bool:
    try:
        return remote is not None and ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return False


def journal_seq(raw: object) -> int:
    """A journal seq from JSON: a whole number from 1 to 2**63-1."""
    if isinstance(raw, int) and not isinstance(raw, bool) and 1 <= raw <= MAX_TICKET_ID:
        return raw
    raise web.HTTPBadRequest(text=f"seq must be a whole number from 1 to {MAX_TICKET_ID}")


def ticket_id(raw: object) -> int:
    """A ticket number from JSON (a number or a string of ASCII digits) the store can hold."""
    text = str(raw) if isinstance(raw, int | str) and not isinstance(raw, bool) else ""
    if not (text.isascii() and text.isdigit() and len(text) <= 19 and int(text) <= MAX_TICKET_ID):
        raise web.HTTPBadRequest(text=f"ticket_id must be a whole number from 0 to {MAX_TICKET_ID}")
    return int(text)


def json_response(data: Mapping[str, Any]) -> web.Response:
    return web.json_response(data, dumps=lambda d: json.dumps(d, default=str))


async def body(request: web.Request) -> Mapping[str, Any]:
    """The request's JSON object; 400 for anything else (413 above ``client_max_size``)."""
    try:
        data = await request.json()
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise web.HTTPBadRequest(text="send a JSON object") from None
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text="send a JSON object")
    return data
