"""T2 at the door (issue 17): the decision order of docs/design.md section 5 through the real
pipeline on real SQLite: event signature -> holder signature -> step -> the T1 rules; a static
T1 code of an event that requires rotation; settings changed through the feed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gate.store.db import Store
from gate.store.syncstate import apply_changes
from shared.base45 import b45decode, b45encode
from shared.errors import RejectReason
from shared.rotating import HOLDER_DOMAIN, parse_code, rotate, sign_pass, step_at
from shared.ticket import generate_private_key, public_raw
from tessera_dev.sample_event import (
    EVENT,
    KEY,
    SAT_18,
    Clock,
    bundle_bytes,
    code,
    loaded_store,
    pipeline,
)
from tests.support.feed import enrol_offline, event_updated

R = RejectReason
PERIOD = 10


def t2(
    ticket_id: int,
    nonce: int,
    *,
    now: float = SAT_18,
    holder: Ed25519PrivateKey | None = None,
    key: Ed25519PrivateKey = KEY,
    period: int = PERIOD,
) -> str:
    holder = holder or Ed25519PrivateKey.generate()
    signed = sign_pass(
        key,
        holder_key=public_raw(holder.public_key()),
        event_id=EVENT,
        ticket_id=ticket_id,
        nonce=nonce,
        zone=0xFFFF,
    )
    return rotate(signed, holder, step_at(now, period))


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await loaded_store(tmp_path / "gate.sqlite3", bundle_bytes(rotating=True))
    yield store
    await store.close()


async def test_a_live_code_admits_and_names_the_holder(store: Store) -> None:
    decision = await pipeline(store).process(t2(1, 11))
    assert (decision.outcome, decision.holder, decision.ticket_id) == ("admit", "Ada Lovelace", 1)
    rows = await store.conn.execute_fetchall("SELECT ticket_id, decision FROM journal")
    assert list(rows) == [(1, "admit")]


@pytest.mark.parametrize("offset", [-PERIOD, 0, PERIOD])
async def test_one_step_either_side_is_forgiven(store: Store, offset: int) -> None:
    decision = await pipeline(store, Clock(SAT_18 + offset)).process(t2(1, 11))
    assert decision.outcome == "admit"


@pytest.mark.parametrize("offset", [-2 * PERIOD, 2 * PERIOD, 3600])
async def test_a_screenshot_two_periods_old_is_expired(store: Store, offset: int) -> None:
    decision = await pipeline(store, Clock(SAT_18 + offset)).process(t2(1, 11))
    assert (decision.outcome, decision.reason) == ("deny", R.code_expired)
    assert decision.message == "Code expired: show the live code, not a screenshot"
    assert decision.ticket_id == 1  # the event's signature was good: the ticket is named


async def test_rotation_tolerance_widens_the_window(store: Store) -> None:
    late = pipeline(store, Clock(SAT_18 + 2 * PERIOD), rotation_tolerance=PERIOD)
    assert (await late.process(t2(2, 22))).outcome == "admit"


async def test_a_copied_pass_signed_by_another_phone_is_refused(store: Store) -> None:
    """The pass (bytes 0..126) is public once shown; a second device that signs steps with its
    own key does not hold the key the pass binds: not the holder's phone."""
    raw = b45decode(t2(1, 11)[3:])
    thief = Ed25519PrivateKey.generate()
    body = raw[:131]
    forged = "T2:" + b45encode(body + thief.sign(HOLDER_DOMAIN + body))
    decision = await pipeline(store).process(forged)
    assert (decision.reason, decision.ticket_id) == (R.bad_holder_signature, 1)
    # re-binding the pass to the thief's own key breaks the event's signature instead
    ticket = parse_code(t2(1, 11))
    rebound_pass = ticket.signed[:31] + public_raw(thief.public_key()) + ticket.signature
    rebound = rotate(rebound_pass, thief, step_at(SAT_18, PERIOD))
    decision = await pipeline(store).process(rebound)
    assert (decision.reason, decision.ticket_id) == (R.bad_signature, None)


async def test_a_holder_signature_over_another_step_is_refused(store: Store) -> None:
    holder = Ed25519PrivateKey.generate()
    now_code = t2(1, 11, holder=holder)
    later = t2(1, 11, holder=holder, now=SAT_18 + PERIOD)
    # the step bytes of one code with the signature of the other
    a, b = b45decode(now_code[3:]), b45decode(later[3:])
    mixed = "T2:" + b45encode(a[:127] + b[127:131] + a[131:])
    decision = await pipeline(store).process(mixed)
    assert (decision.reason, decision.message) == (
        R.bad_holder_signature,
        "Copied code: not from the ticket holder's phone",
    )


async def test_a_static_code_is_refused_when_the_event_requires_rotation(store: Store) -> None:
    decision = await pipeline(store).process(code(1, 11))
    assert (decision.outcome, decision.reason) == ("deny", R.rotation_required)
    assert decision.message == "Printed code not accepted: open the ticket wallet"
    # a forged static code is still "forged", not a request for the wallet
    forged = code(1, 11, key=generate_private_key())
    assert (await pipeline(store).process(forged)).reason is R.unknown_key


async def test_t2_then_the_t1_rules_apply(store: Store) -> None:
    assert (await pipeline(store).process(t2(1, 10))).reason is R.reissued
    assert (await pipeline(store).process(t2(1, 10))).message == (
        "Old code: ticket moved to another phone or reissued"
    )
    assert (await pipeline(store).process(t2(3, 33))).reason is R.revoked
    assert (await pipeline(store).process(t2(99, 1))).reason is R.unknown_ticket
    assert (await pipeline(store).process(t2(1, 11))).outcome == "admit"
    assert (await pipeline(store).process(t2(1, 11))).reason is R.already_inside


async def test_t2_works_at_an_event_that_does_not_require_it(tmp_path: Path) -> None:
    store = await loaded_store(tmp_path / "g.sqlite3", bundle_bytes(rotation_period=30))
    try:
        assert (await pipeline(store).process(code(1, 11))).outcome == "admit"
        late = pipeline(store, Clock(SAT_18 + 30))
        assert (await late.process(t2(2, 22, period=30))).outcome == "admit"
        later = pipeline(store, Clock(SAT_18 + 60))
        assert (await later.process(t2(5, 55, period=30))).reason is R.code_expired
    finally:
        await store.close()


async def test_the_feed_turns_rotation_on_and_off(tmp_path: Path) -> None:
    """``event.updated`` changes the decision at once, with no new list."""
    store = await loaded_store(tmp_path / "g.sqlite3")
    try:
        await enrol_offline(store, tmp_path / "cred")
        assert (await pipeline(store).process(code(1, 11))).outcome == "admit"
        settings = {"name": "Fest", "timezone": "Europe/Berlin", "reentry": "always"}
        page = event_updated(5, {**settings, "rotating": True, "rotation_period": 20})
        await apply_changes(store, page, now=SAT_18)
        assert store.events[EVENT].rotating and store.events[EVENT].rotation_period == 20
        assert (await pipeline(store).process(code(2, 22))).reason is R.rotation_required
        decision = await pipeline(store, Clock(SAT_18 + 20)).process(t2(2, 22, period=20))
        assert decision.outcome == "admit"
        await apply_changes(store, event_updated(6, {**settings, "rotating": False}), now=SAT_18)
        assert (await pipeline(store).process(code(5, 55))).outcome == "admit"
    finally:
        await store.close()
