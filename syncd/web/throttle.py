"""Failed-authentication limits per client address: a token bucket per address, bounded.

Every 401 an address earns (a wrong or revoked token, a wrong gate credential, an unknown
enrolment code) takes one token from its bucket; a bucket holds ``auth_fail_burst`` tokens and
refills at ``auth_fail_per_minute``. While an address's bucket is empty, every request from it
answers 429 with ``Retry-After`` before any credential is looked up, so guessing costs the
guesser time and the database nothing. At most ``auth_fail_clients`` addresses are tracked; the
one touched longest ago is forgotten first (a forgotten bucket is a full one, so forgetting
only ever errs towards letting a client in). IPv6 clients are counted per /64, which one host
usually holds whole. Replicas count separately; nginx's ``limit_req`` bounds the total.

The client address is the TCP peer, unless the peer is a trusted proxy
(``SYNCD_TRUSTED_PROXIES``): then the right-most ``X-Forwarded-For`` entry that is not itself
a trusted proxy (entries to its left are the client's to forge).
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from aiohttp import web

from syncd.keys import ADDRESSES, LIMITER
from syncd.web.errors import ApiError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_networks(text: str) -> tuple[Network, ...]:
    """``"10.0.0.0/8, ::1"`` -> networks; ``ValueError`` names a bad entry."""
    parts = (p.strip() for p in text.split(","))
    return tuple(ipaddress.ip_network(p, strict=False) for p in parts if p)


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float


class FailureLimiter:
    """Token buckets of failed attempts, keyed by client address; the clock is injectable."""

    def __init__(
        self,
        burst: int,
        per_minute: float,
        max_clients: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.burst = burst
        self.rate = per_minute / 60.0
        self.max_clients = max_clients
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def _refilled(self, key: str) -> _Bucket | None:
        bucket = self._buckets.get(key)
        if bucket is not None:
            now = self._clock()
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)
            bucket.stamp = now
        return bucket

    def retry_after(self, key: str) -> int | None:
        """Seconds until ``key`` may try again, or None when it may now."""
        bucket = self._refilled(key)
        if bucket is None or bucket.tokens >= 1:
            return None
        return max(1, math.ceil((1 - bucket.tokens) / self.rate))

    def failed(self, key: str) -> None:
        """Count one failed attempt of ``key``."""
        bucket = self._refilled(key) or _Bucket(float(self.burst), self._clock())
        bucket.tokens = max(0.0, bucket.tokens - 1)
        self._buckets[key] = bucket
        self._buckets.move_to_end(key)
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)


@dataclass(frozen=True)
class ClientAddresses:
    """How to find the client's address; exempt addresses are never limited."""

    trusted_proxies: Sequence[Network] = ()
    exempt: Sequence[Network] = ()

    def key(self, request: web.BaseRequest) -> str | None:
        """The address to count ``request`` under, or None (unknown or exempt)."""
        address = _address(request.remote)
        if address is not None and _within(address, self.trusted_proxies):
            for hop in reversed(request.headers.get("X-Forwarded-For", "").split(",")):
                hop_address = _address(hop.strip())
                if hop_address is None:
                    break
                address = hop_address
                if not _within(hop_address, self.trusted_proxies):
                    break
        if address is None or _within(address, self.exempt):
            return None
        if address.version == 6:
            return str(ipaddress.ip_network(f"{address}/64", strict=False))
        return str(address)


def _address(text: str | None) -> Address | None:
    try:
        return ipaddress.ip_address(text or "")
    except ValueError:
        return None


def _within(address: Address, networks: Sequence[Network]) -> bool:
    return any(address in n for n in networks)


@web.middleware
async def throttle(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """429 while the client's bucket is empty; every 401 it then earns takes a token."""
    key = request.app[ADDRESSES].key(request)
    if key is None:
        return await handler(request)
    limiter = request.app[LIMITER]
    wait = limiter.retry_after(key)
    if wait is not None:
        raise ApiError(
            429,
            "too_many_failures",
            "too many failed attempts from this address; retry later",
            headers={"Retry-After": str(wait)},
            retry_after=wait,
        )
    try:
        response = await handler(request)
    except ApiError as exc:
        if exc.status == 401:
            limiter.failed(key)
        raise
    if response.status == 401:
        limiter.failed(key)
    return response
