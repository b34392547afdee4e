"""The drill's board: one ``Item`` per check, the overall result, and how it prints.

Statuses: ``ok`` (green), ``warn`` (amber: doors can open, someone should look), ``fail``
(red: fix it before doors), ``skip`` (not configured here, e.g. no camera: not red). The board
is red when any item failed, amber when any warned, else green (``shared.protocol``).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Literal
from urllib.parse import urlsplit

import click

from shared.protocol import MAX_GATE_TIME, DrillItem, DrillReport, DrillResult, drill_result

Status = Literal["ok", "warn", "fail", "skip"]
_FIGURE, _DETAIL = 120, 240
_STYLE = {"ok": "green", "warn": "yellow", "fail": "red", "skip": "bright_black"}
_LABEL = {"ok": "OK", "warn": "WARN", "fail": "FAIL", "skip": "SKIP"}
_RESULT = {"green": "green", "amber": "yellow", "red": "red"}


def host_of(url: str) -> str:
    """host:port of ``url``, without a user, password, path or query (what a board shows)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "?"
    return (parts.hostname or "?") + (f":{port}" if port else "")


def _line(text: str, limit: int) -> str:
    """One printable line of at most ``limit`` characters (what syncd accepts)."""
    flat = "".join(c if c.isprintable() else " " for c in text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


@dataclass(frozen=True, slots=True)
class Item:
    """One check's outcome. Texts are cut to one printable line (figure 120, detail 240)."""

    name: str
    status: Status
    figure: str = ""
    detail: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "figure", _line(self.figure, _FIGURE))
        object.__setattr__(self, "detail", _line(self.detail, _DETAIL))


@dataclass
class Board:
    """A finished drill. ``report`` says what became of the report to syncd (None: not sent,
    e.g. a gate that is not enrolled)."""

    gate_name: str
    items: list[Item]
    ran_at: float = field(default_factory=time.time)
    seconds: float = 0.0
    report: str | None = None
    reported: bool = False

    @property
    def result(self) -> DrillResult:
        return drill_result([item.status for item in self.items])

    @property
    def exit_code(self) -> int:
        """1 on red; amber and green are 0 (doors may open)."""
        return 1 if self.result == "red" else 0

    def item(self, name: str) -> Item | None:
        return next((i for i in self.items if i.name == name), None)

    def replace(self, new: Item) -> None:
        self.items = [new if i.name == new.name else i for i in self.items]

    def to_report(self) -> DrillReport:
        """What syncd stores; a clock beyond T1's range (a dead RTC) is clamped into it."""
        return DrillReport(
            ran_at=min(max(0.0, self.ran_at), MAX_GATE_TIME),
            seconds=min(3600.0, round(self.seconds, 3)),
            items=[DrillItem(**asdict(i)) for i in self.items],
        )

    def as_json(self) -> dict[str, object]:
        return {
            "gate_name": self.gate_name,
            "result": self.result,
            "ran_at": self.ran_at,
            "seconds": round(self.seconds, 3),
            "items": [asdict(i) for i in self.items],
            "report": self.report,
            "reported": self.reported,
        }


def render(board: Board) -> str:
    """The board for a terminal, with click styles (``click.echo(color=...)`` keeps or strips
    them): one line per item, its explanation below when it is not green, then the result."""
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(board.ran_at))
    lines = [f"Drill of {board.gate_name}, {when} ({board.seconds:.1f} s)"]
    width = max(len(i.name) for i in board.items)
    for i in board.items:
        label = click.style(f"{_LABEL[i.status]:<5}", fg=_STYLE[i.status], bold=i.status != "ok")
        if i.status == "skip":  # why it was skipped is its figure
            lines.append(
                f"  {label} {i.name:<{width}}  {click.style(i.detail or i.figure, dim=True)}"
            )
            continue
        lines.append(f"  {label} {i.name:<{width}}  {i.figure}")
        if i.detail and i.status in ("warn", "fail"):
            lines.append(f"        {'':<{width}}  {click.style(i.detail, dim=True)}")
    counts = {s: sum(1 for i in board.items if i.status == s) for s in ("fail", "warn")}
    summary = click.style(board.result.upper(), fg=_RESULT[board.result], bold=True)
    lines.append(f"{summary}: {counts['fail']} failed, {counts['warn']} to look at.")
    if board.report:
        lines.append(board.report)
    return "\n".join(lines)
