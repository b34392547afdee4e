"""Key events of a HID (keyboard-wedge) scanner -> the text it typed. Pure, no I/O.

A USB scanner in keyboard mode "types" each code as key presses (Linux key codes from
``linux/input-event-codes.h``: value 1 = press, 2 = autorepeat, 0 = release). Which character a
key means depends on the keyboard layout the scanner is set to emulate: on a German (QWERTZ)
layout the key US calls Y types "z", ":" is Shift+"." and "-" sits where US has "/". The gate's
layout (``GATE_EVDEV_LAYOUT``) must match the scanner's setting, or codes come out damaged.

Rules: Shift (either) and Caps Lock (letters only) give capitals; AltGr (right Alt) gives the
third level (de: "@", "\\", "{" ...); keys pressed while Ctrl, left Alt or Meta is held type
nothing (scanner prefixes), nor do buttons (codes from 0x100); Enter and keypad Enter type
"\\n", Tab "\\t"; the keypad types digits (as with Num Lock on); dead keys of a layout type
their character at once (a scanner never composes); a key the layout does not know types
U+FFFD, so the code is judged damaged rather than shortened.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

KEY_TAB, KEY_ENTER, KEY_LEFTCTRL, KEY_LEFTSHIFT = 15, 28, 29, 42
KEY_RIGHTSHIFT, KEY_LEFTALT, KEY_SPACE, KEY_CAPSLOCK = 54, 56, 57, 58
KEY_KPENTER, KEY_RIGHTCTRL, KEY_RIGHTALT = 96, 97, 100
KEY_LEFTMETA, KEY_RIGHTMETA, BTN_MISC = 125, 126, 0x100
RELEASE, PRESS, REPEAT = 0, 1, 2
UNKNOWN = "\ufffd"

_SHIFTS = {KEY_LEFTSHIFT, KEY_RIGHTSHIFT}
_BLOCKERS = {KEY_LEFTCTRL, KEY_RIGHTCTRL, KEY_LEFTALT, KEY_LEFTMETA, KEY_RIGHTMETA}
_MODIFIERS = _SHIFTS | _BLOCKERS | {KEY_RIGHTALT, KEY_CAPSLOCK}
_IGNORED = set(range(59, 71)) | {1, 14, 69, 70, 87, 88} | set(range(102, 112))  # F-keys, Esc ...
_KEYPAD = dict(zip([71, 72, 73, 75, 76, 77, 79, 80, 81, 82], "7894561230", strict=True)) | {
    55: "*",
    74: "-",
    78: "+",
    83: ".",
    98: "/",
}
_CONTROL = {KEY_ENTER: "\n", KEY_KPENTER: "\n", KEY_TAB: "\t", KEY_SPACE: " "}


@dataclass(frozen=True)
class Layout:
    """Characters per key code at each level (base, Shift, AltGr)."""

    base: dict[int, str]
    shift: dict[int, str]
    altgr: dict[int, str] = field(default_factory=dict)


def _rows(rows: Iterable[tuple[int, str, str]]) -> tuple[dict[int, str], dict[int, str]]:
    base: dict[int, str] = {}
    shift: dict[int, str] = {}
    for first, plain, shifted in rows:
        for offset, (low, high) in enumerate(zip(plain, shifted, strict=True)):
            base[first + offset], shift[first + offset] = low, high
    return base, shift


US = Layout(
    *_rows(
        [
            (2, "1234567890-=", "!@#$%^&*()_+"),
            (16, "qwertyuiop[]", "QWERTYUIOP{}"),
            (30, "asdfghjkl;'`", 'ASDFGHJKL:"~'),
            (43, "\\zxcvbnm,./", "|ZXCVBNM<>?"),
            (86, "<", ">"),
        ]
    )
)
DE = Layout(
    *_rows(
        [
            (2, "1234567890ß\u00b4", '!"§$%&/()=?`'),
            (16, "qwertzuiopü+", "QWERTZUIOPÜ*"),
            (30, "asdfghjklöä^", "ASDFGHJKLÖÄ°"),
            (43, "#yxcvbnm,.-", "'YXCVBNM;:_"),
            (86, "<", ">"),
        ]
    ),
    altgr={3: "²", 4: "³", 8: "{", 9: "[", 10: "]", 11: "}", 12: "\\", 16: "@", 18: "€"}
    | {27: "~", 50: "µ", 86: "|"},
)
LAYOUTS: dict[str, Layout] = {"us": US, "de": DE}


class KeyDecoder:
    """Keeps the modifier state of one scanner; ``key()`` turns one event into text."""

    def __init__(self, layout: str = "us") -> None:
        if layout not in LAYOUTS:
            raise ValueError(f"unknown keyboard layout {layout!r}; known: {sorted(LAYOUTS)}")
        self.layout = LAYOUTS[layout]
        self._held: set[int] = set()
        self._caps = False

    def key(self, code: int, value: int) -> str:
        """The text a key event types ('' for releases, modifiers and ignored keys)."""
        if code in _MODIFIERS:
            self._modifier(code, value)
            return ""
        if value == RELEASE or code in _IGNORED or code >= BTN_MISC or self._held & _BLOCKERS:
            return ""
        return _CONTROL.get(code) or _KEYPAD.get(code) or self._char(code)

    def _modifier(self, code: int, value: int) -> None:
        if code == KEY_CAPSLOCK:
            self._caps ^= value == PRESS
        elif value == RELEASE:
            self._held.discard(code)
        else:
            self._held.add(code)

    def _char(self, code: int) -> str:
        layout = self.layout
        if KEY_RIGHTALT in self._held:
            return layout.altgr.get(code, UNKNOWN)
        shifted = bool(self._held & _SHIFTS)
        char = (layout.shift if shifted else layout.base).get(code, UNKNOWN)
        if self._caps and char.isalpha():
            char = char.lower() if shifted else char.upper()
        return char


def decode_keys(events: Iterable[tuple[int, int]], layout: str = "us") -> str:
    """The text a sequence of (key code, value) events types, e.g. from a recording."""
    decoder = KeyDecoder(layout)
    return "".join(decoder.key(code, value) for code, value in events)
