"""Staff access to the kiosk page: a hashed PIN, a guard against guessing, short sessions.

Without a staff session the page only shows decisions and takes scans; search (holder names),
manual admit and the direction switch need one. A session starts when the right PIN is typed
on the page and lives in an HttpOnly, SameSite=Strict cookie that expires.

The PIN is never stored: ``GATE_STAFF_PIN`` holds ``scrypt:N:r:p:SALT:HASH`` (hex), made by
``gate staff-pin``. scrypt (memory-hard, in the standard library) makes each guess cost about
16 MiB and tens of milliseconds; ``PinGuard`` then locks guessing out after a few wrong PINs in
a row, doubling the lock-out each further round, so a 4-digit PIN is not brute-forced either.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

SCHEME = "scrypt"
_N, _R, _P = 2**14, 8, 1
_SALT_BYTES, _HASH_BYTES = 16, 32
MIN_PIN, MAX_PIN = 4, 64
MAX_LOCKOUT = 900.0


class PinHashError(ValueError):
    """A ``GATE_STAFF_PIN`` value that is not a hash made by ``gate staff-pin``."""


@dataclass(frozen=True)
class PinHash:
    """A parsed ``scrypt:N:r:p:SALT:HASH``; ``verify`` compares in constant time."""

    n: int
    r: int
    p: int
    salt: bytes
    digest: bytes

    @classmethod
    def parse(cls, text: str) -> PinHash:
        parts = text.strip().split(":")
        if len(parts) != 6 or parts[0] != SCHEME:
            raise PinHashError(
                "must be a hash made by `gate staff-pin` (scrypt:N:r:p:SALT:HASH), never the PIN"
            )
        try:
            n, r, p = (int(x) for x in parts[1:4])
            salt, digest = bytes.fromhex(parts[4]), bytes.fromhex(parts[5])
        except ValueError:
            raise PinHashError("scrypt:N:r:p:SALT:HASH with numbers and hex") from None
        if not (2**10 <= n <= 2**20 and n & (n - 1) == 0 and 1 <= r <= 32 and 1 <= p <= 16):
            raise PinHashError("scrypt parameters out of range")
        if len(salt) < 8 or len(digest) < 16:
            raise PinHashError("salt or hash too short")
        return cls(n, r, p, salt, digest)

    def verify(self, pin: str) -> bool:
        """True if ``pin`` is the PIN; slow on purpose (run it in a thread)."""
        return hmac.compare_digest(_derive(pin, self.salt, self.n, self.r, self.p), self.digest)

    def __str__(self) -> str:
        return f"{SCHEME}:{self.n}:{self.r}:{self.p}:{self.salt.hex()}:{self.digest.hex()}"


def hash_pin(pin: str) -> PinHash:
    """A fresh salted scrypt hash of ``pin`` (``MIN_PIN`` to ``MAX_PIN`` characters)."""
    if not MIN_PIN <= len(pin) <= MAX_PIN:
        raise ValueError(f"a staff PIN has {MIN_PIN} to {MAX_PIN} characters")
    salt = secrets.token_bytes(_SALT_BYTES)
    return PinHash(_N, _R, _P, salt, _derive(pin, salt, _N, _R, _P))


def _derive(pin: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    memory = 128 * r * (n + p + 2)
    return hashlib.scrypt(
        pin.encode(), salt=salt, n=n, r=r, p=p, maxmem=memory + 2**20, dklen=_HASH_BYTES
    )


@dataclass
class PinGuard:
    """Counts wrong PINs. After ``max_failures`` in a row every try (right or wrong) is refused
    for ``lockout`` seconds, doubled for each further round, at most ``MAX_LOCKOUT``; the right
    PIN outside a lock-out resets it. One guard per gate: the page is one screen."""

    max_failures: int = 5
    lockout: float = 30.0
    clock: Callable[[], float] = time.monotonic
    _failures: int = 0
    _locked_until: float = 0.0

    @property
    def failures(self) -> int:
        """Wrong PINs since the last right one."""
        return self._failures

    def retry_after(self) -> float:
        """Seconds until a PIN may be tried again (0 = now)."""
        return max(0.0, self._locked_until - self.clock())

    def failed(self) -> None:
        self._failures += 1
        if self._failures % self.max_failures == 0:
            rounds = self._failures // self.max_failures
            wait = min(MAX_LOCKOUT, self.lockout * 2 ** (rounds - 1))
            self._locked_until = self.clock() + wait

    def succeeded(self) -> None:
        self._failures = 0
        self._locked_until = 0.0


@dataclass
class StaffSessions:
    """Random session tokens with a fixed lifetime, kept in memory (a restart ends them).

    At most ``limit`` live sessions: a new one pushes out the oldest, so a script that logs in
    in a loop cannot grow memory."""

    lifetime: float
    limit: int = 16
    clock: Callable[[], float] = time.monotonic
    _expiry: dict[str, float] = field(default_factory=dict)

    def start(self) -> str:
        self._forget_expired()
        while len(self._expiry) >= self.limit:
            del self._expiry[next(iter(self._expiry))]
        token = secrets.token_urlsafe(32)
        self._expiry[token] = self.clock() + self.lifetime
        return token

    def remaining(self, token: str | None) -> float:
        """Seconds left of the session ``token`` (0 = none, unknown or expired)."""
        if not token:
            return 0.0
        left = self._expiry.get(token, 0.0) - self.clock()
        if left <= 0:
            self._expiry.pop(token, None)
            return 0.0
        return left

    def end(self, token: str | None) -> None:
        if token:
            self._expiry.pop(token, None)

    def _forget_expired(self) -> None:
        now = self.clock()
        for token in [t for t, until in self._expiry.items() if until <= now]:
            del self._expiry[token]
