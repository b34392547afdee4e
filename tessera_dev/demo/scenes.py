"""What happens at the doors in scripts/demo: the attendee list, what each gate's camera sees
(tickets on phones and paper, one by one) and what each gate should answer.

A ``Scan`` is one ticket held up to the camera with the decision the demo expects for it; a
gate's video is its scans rendered with tessera_dev/synth.py (perspective, glare, noise, phone
dark mode) and written as MJPG, so ``gate run --source VIDEO`` reads them through exactly the
capture -> decode -> debounce -> decide -> commit path a live camera uses.
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shared.base45 import b45decode, b45encode
from shared.ticket import PREFIX, parse_ticket
from tessera_dev import synth
from tessera_dev.synth import Condition, background, render_frame, write_video

FPS = 20.0
HOLD = 10  # frames a ticket is in view (0.5 s)
GAP = 6  # empty frames between two people
SIZE = (640, 480)

PHONE = Condition("phone", medium="screen", size=0.42, tilt=0.12, rotation=8, noise=4, glare=40)
PHONE_DARK = PHONE.at(name="phone, dark mode", invert=True, rotation=-10, glare=0)
PAPER = Condition("printout", size=0.36, tilt=0.18, rotation=-6, noise=6, light=0.8)
LOOKS = (PHONE, PAPER, PHONE_DARK)
NORTH, SOUTH = "North Door", "South Door"
FIRST = ["Ada", "Bruno", "Chiara", "Dmitri", "Esra", "Farid", "Greta", "Hiro", "Ines", "Jonas"]
LAST = ["Keller", "Lopez", "Murphy", "Nowak", "Okafor", "Petrov", "Quinn", "Rossi", "Sato"]
Tickets = dict[str, dict[str, str]]
"""Exported ticket rows by external_ref ("DEMO-0008-new": the reissued ticket's new QR)."""

# synth encodes the QR again for every frame (segno, ~45 ms); a ticket held up for ten frames
# is the same code, so encode each text once. The arrays are only read.
synth.qr_modules = functools.lru_cache(maxsize=64)(synth.qr_modules)  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class Scan:
    """One ticket shown at a gate, and what the gate should answer."""

    label: str  # e.g. "ticket 17 (Standard)"
    text: str  # the QR text
    admit: bool
    reason: str | None = None  # the expected RejectReason value on a denial


def forge(text: str, ticket_id: int) -> str:
    """A real ticket with its number edited to ``ticket_id``: same key id, stale signature."""
    ticket = parse_ticket(text)
    raw = bytearray(b45decode(text[len(PREFIX) :]))
    assert ticket.ticket_id != ticket_id
    raw[9:17] = ticket_id.to_bytes(8, "big")
    return PREFIX + b45encode(bytes(raw))


def category(i: int) -> tuple[str, str]:
    """Category and zones of attendee ``i``: Standard (Floor), Balcony, every 20th is Crew."""
    if i % 20 == 0:
        return "Crew", "Floor|Balcony|Backstage"
    if i % 7 == 0:
        return "Balcony", "Balcony"
    return "Standard", "Floor"


def write_attendees(path: Path, count: int) -> None:
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["external_ref", "holder_name", "email", "category", "zones"])
        for i in range(1, count + 1):
            name = f"{FIRST[i % len(FIRST)]} {LAST[i % len(LAST)]}"
            out.writerow([f"DEMO-{i:04d}", name, f"guest{i}@example.org", *category(i)])


def door_scripts(tickets: Tickets) -> tuple[list[Scan], list[Scan]]:
    """North Door (online) sees admits, a wrong zone, the old QR of a reissued ticket, a forgery
    and a repeat; South Door (offline) admits the ticket North Door already let in."""

    def scan(ref: str, note: str = "", reason: str | None = None, text: str = "") -> Scan:
        t = tickets[ref]
        label = f"#{t['ticket_id']} {t['category']}{note}"
        return Scan(label, text or t["qr_text"], reason is None, reason)

    forged = forge(tickets["DEMO-0009"]["qr_text"], int(tickets["DEMO-0010"]["ticket_id"]))
    north = [
        scan("DEMO-0001"),
        scan("DEMO-0002"),
        scan("DEMO-0003"),
        scan("DEMO-0007", reason="wrong_zone"),
        scan("DEMO-0008", ", old QR", "reissued"),
        scan("DEMO-0010", ", forged", "bad_signature", forged),
        scan("DEMO-0001", ", again", "already_inside"),
    ]
    south = [
        scan("DEMO-0004"),
        scan("DEMO-0003", ", in at North"),
        scan("DEMO-0008-new", ", new QR"),
    ]
    return north, south


def frames(scans: Sequence[Scan], seed: int) -> Iterator[np.ndarray]:
    rng = np.random.default_rng(seed)
    bg = background(SIZE[0], SIZE[1], rng)
    for _ in range(GAP):
        yield render_frame(None, PHONE, bg, rng)
    for i, scan in enumerate(scans):
        look = LOOKS[(i + seed) % len(LOOKS)]
        for _ in range(HOLD):
            yield render_frame(scan.text, look, bg, rng)
        for _ in range(GAP):
            yield render_frame(None, look, bg, rng)


def render(path: Path, scans: Sequence[Scan], seed: int) -> float:
    """Write the video for ``scans``; returns its length in seconds."""
    count = write_video(path, frames(scans, seed), fps=FPS)
    return count / FPS
