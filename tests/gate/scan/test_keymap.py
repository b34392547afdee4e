"""HID scanner key events -> text (gate.scan.keymap), on recorded (key code, value) sequences."""

from __future__ import annotations

import pytest

from gate.scan.keymap import (
    KEY_CAPSLOCK,
    KEY_ENTER,
    KEY_LEFTCTRL,
    KEY_LEFTSHIFT,
    KEY_RIGHTALT,
    KEY_RIGHTSHIFT,
    KEY_SPACE,
    KEY_TAB,
    LAYOUTS,
    PRESS,
    RELEASE,
    REPEAT,
    UNKNOWN,
    KeyDecoder,
    decode_keys,
)
from tessera_dev.sample_event import code

Events = list[tuple[int, int]]
CONTROL_KEYS = {"\n": KEY_ENTER, " ": KEY_SPACE, "\t": KEY_TAB}


def tap(key: int) -> Events:
    return [(key, PRESS), (key, RELEASE)]


def shifted(key: int, shift: int = KEY_LEFTSHIFT) -> Events:
    return [(shift, PRESS), *tap(key), (shift, RELEASE)]


def typed(text: str, layout: str) -> Events:
    """What a scanner set to ``layout`` sends for ``text`` (the recording a test builds)."""
    table = LAYOUTS[layout]
    plain = {char: key for key, char in table.base.items()}
    upper = {char: key for key, char in table.shift.items()}
    events: Events = []
    for char in text:
        if char in CONTROL_KEYS:
            events += tap(CONTROL_KEYS[char])
        elif char in plain:
            events += tap(plain[char])
        else:
            events += shifted(upper[char])
    return events


def test_us_letters_digits_and_shift() -> None:
    y, z, one, semicolon = 21, 44, 2, 39
    events = [*tap(y), *tap(z), *shifted(y), *shifted(z, KEY_RIGHTSHIFT), *tap(one)]
    assert decode_keys([*events, *shifted(one), *shifted(semicolon)], "us") == "yzYZ1!:"


def test_de_swaps_y_and_z_and_moves_symbols() -> None:
    """The key US calls Y types z on a German layout; ':' is Shift+'.', '-' is US '/'."""
    y, z, dot, slash, minus, one = 21, 44, 52, 53, 12, 2
    events = [*tap(y), *tap(z), *shifted(y), *shifted(dot), *tap(slash), *shifted(slash)]
    assert decode_keys([*events, *tap(minus), *shifted(one)], "de") == "zyZ:-_ß!"
    assert decode_keys([*tap(y), *tap(z), *shifted(dot), *tap(slash)], "us") == "yz>/"


def test_de_altgr_third_level() -> None:
    q, seven, minus = 16, 8, 12
    events = [(KEY_RIGHTALT, PRESS), *tap(q), *tap(seven), *tap(minus), (KEY_RIGHTALT, RELEASE)]
    assert decode_keys([*events, *tap(q)], "de") == "@{\\q"


@pytest.mark.parametrize("layout", ["us", "de"])
def test_a_real_ticket_code_typed_in_either_layout(layout: str) -> None:
    text = code(1, 11)
    assert decode_keys(typed(text + "\n", layout), layout) == text + "\n"


def test_codes_hold_spaces_and_symbols_but_never_start_or_end_with_one() -> None:
    """Base45 has a space; stripping a line is still safe: the last character is 0-5."""
    texts = [code(i, i * 7) for i in range(1, 200)]
    assert any(" " in t for t in texts) and all(t == t.strip() for t in texts)


def test_a_code_typed_in_one_layout_and_read_in_the_other_is_damaged() -> None:
    text = code(1, 11)
    assert decode_keys(typed(text, "us"), "de") != text


def test_caps_lock_inverts_letters_only() -> None:
    a, one = 30, 2
    events = [*tap(KEY_CAPSLOCK), *tap(a), *shifted(a), *tap(one), *tap(KEY_CAPSLOCK), *tap(a)]
    assert decode_keys(events, "us") == "Aa1a"


def test_releases_and_ctrl_chords_type_nothing_repeats_type_again() -> None:
    a, c = 30, 46
    events = [(KEY_LEFTCTRL, PRESS), *tap(c), (KEY_LEFTCTRL, RELEASE), (a, PRESS), (a, REPEAT)]
    assert decode_keys([*events, (a, RELEASE)], "us") == "aa"


def test_keypad_digits_and_enter() -> None:
    kp1, kp0, kpenter = 79, 82, 96
    assert decode_keys([*tap(kp1), *tap(kp0), *tap(kpenter)], "de") == "10\n"


def test_a_key_the_layout_does_not_know_marks_the_code_damaged() -> None:
    assert decode_keys(tap(183), "us") == UNKNOWN  # KEY_F13 sits above the ignored F-keys


def test_an_unknown_layout_is_refused() -> None:
    with pytest.raises(ValueError, match="layout"):
        KeyDecoder("dvorak")


def test_meta_chords_and_buttons_type_nothing() -> None:
    a, left_meta, btn_left = 30, 125, 0x110
    events = [(left_meta, PRESS), *tap(a), (left_meta, RELEASE), *tap(btn_left), *tap(a)]
    assert decode_keys(events, "us") == "a"
