"""Debounce: a code held in view is one scan; another code passes at once."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gate.scan.debounce import Debouncer
from shared.rotating import rotate, sign_pass
from shared.ticket import public_raw


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_code_held_in_view_is_one_scan() -> None:
    clock = Clock()
    debounce = Debouncer(2.0, clock)
    seen = []
    for _ in range(50):  # 5 s of frames at 10 fps, each within the window of the last
        seen.append(debounce.accept("A"))
        clock.now += 0.1
    assert seen.count(True) == 1


def test_different_code_passes_immediately_and_both_stay_debounced() -> None:
    clock = Clock()
    debounce = Debouncer(2.0, clock)
    assert debounce.accept("A")
    assert debounce.accept("B")
    assert not debounce.accept("A")
    assert not debounce.accept("B")


def test_same_code_after_the_window_is_a_new_scan() -> None:
    clock = Clock()
    debounce = Debouncer(2.0, clock)
    assert debounce.accept("A")
    clock.now += 1.999
    assert not debounce.accept("A")
    clock.now += 2.0
    assert debounce.accept("A")


def test_zero_window_passes_everything_and_memory_is_bounded() -> None:
    clock = Clock()
    assert all(Debouncer(0, clock).accept("A") for _ in range(3))
    debounce = Debouncer(2.0, clock, max_codes=8)
    for i in range(100):
        debounce.accept(str(i))
    assert len(debounce._seen) <= 9
    with pytest.raises(ValueError):
        Debouncer(-1)


def test_a_phone_held_across_a_rotation_is_one_scan() -> None:
    """A T2 code changes text every period; the phone still in view is the same ticket, not a
    second scan (which would flash "Already checked in" at the holder just admitted)."""
    event_key, phone, other = (Ed25519PrivateKey.generate() for _ in range(3))

    def codes(holder: Ed25519PrivateKey, ticket_id: int) -> list[str]:
        signed = sign_pass(
            event_key,
            holder_key=public_raw(holder.public_key()),
            event_id=1,
            ticket_id=ticket_id,
            nonce=5,
        )
        return [rotate(signed, holder, step) for step in range(100, 106)]

    clock = Clock()
    debounce = Debouncer(2.0, clock)
    mine = codes(phone, 1)
    assert len(set(mine)) == 6
    seen = []
    for text in mine:  # a new text each "period", always within the window of the last sighting
        seen.append(debounce.accept(text))
        clock.now += 1.0
    assert seen.count(True) == 1
    assert debounce.accept(codes(other, 2)[0])  # another ticket's phone passes at once
