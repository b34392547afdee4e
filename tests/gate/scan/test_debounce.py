"""Debounce: a code held in view is one scan; another code passes at once."""

from __future__ import annotations

import pytest

from gate.scan.debounce import Debouncer


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
