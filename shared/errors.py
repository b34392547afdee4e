"""Rejection reasons and the exception hierarchy shared by the gate and syncd.

::

    TesseraError                 base of every error Tessera raises on purpose
    ├── TicketRejected           a scanned text is not an admissible ticket; ``.reason`` says why
    ├── BundleError              a list bundle is broken, truncated or not signed by a trusted key
    └── ConfigError              a setting or a file the operator supplied is unusable

``RejectReason`` values are stable codes: they are stored in journals, sent over the wire and
shown in reports, so members are only ever added, never renamed.
"""

from __future__ import annotations

from enum import StrEnum


class RejectReason(StrEnum):
    """Why a scan was denied, in the order the gate checks (docs/design.md section 2)."""

    not_a_ticket = "not_a_ticket"  # no T1: prefix: a URL, a Wi-Fi code, an EU DCC ...
    malformed = "malformed"  # T1: but bad base45, wrong length or version
    unknown_key = "unknown_key"  # kid not in this event's keyring
    key_retired = "key_retired"  # kid known but retired
    wrong_event = "wrong_event"  # signed for another event
    bad_signature = "bad_signature"
    not_yet_valid = "not_yet_valid"
    expired = "expired"
    unknown_ticket = "unknown_ticket"  # valid signature but not on the local list
    reissued = "reissued"  # nonce differs from the list's current nonce
    revoked = "revoked"
    blocked = "blocked"
    wrong_zone = "wrong_zone"
    already_inside = "already_inside"
    not_inside = "not_inside"  # exit scan for someone who never entered
    reentry_denied = "reentry_denied"
    not_recorded = "not_recorded"  # the gate could not write the scan (disk full): not admitted
    # T2, the holder-bound rotating code (shared.rotating); checked after bad_signature
    bad_holder_signature = "bad_holder_signature"  # not made by the phone the pass is bound to
    code_expired = "code_expired"  # step too old or too new: a screenshot, or a wrong clock
    rotation_required = "rotation_required"  # a static T1 code for an event that needs T2
    # checked before everything else: the gate itself may not decide (docs/design.md section 3)
    gate_revoked = "gate_revoked"  # syncd revoked this gate: it refuses every scan until enrolled


class TesseraError(Exception):
    """Base of every error Tessera raises on purpose."""


class ConfigError(TesseraError):
    """A setting, key file or bundle supplied by the operator cannot be used."""


class BundleError(TesseraError):
    """A list bundle cannot be used: broken, truncated, or not signed by a trusted key."""


class TicketRejected(TesseraError):
    """A scanned text is not an admissible ticket.

    ``reason`` is the stable code; ``detail`` is a short English explanation for logs (it never
    contains key material).
    """

    def __init__(self, reason: RejectReason, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail or reason.value
        super().__init__(f"{reason.value}: {self.detail}")
