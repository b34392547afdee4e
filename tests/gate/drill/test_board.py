"""The board: its result, what it sends syncd (always what syncd accepts) and how it prints."""

from __future__ import annotations

import click

from gate.drill.board import Board, Item, host_of, render
from shared.protocol import MAX_GATE_TIME, DrillReport


def test_red_on_a_failure_amber_on_a_warning_skips_count_as_green() -> None:
    assert Board("A", [Item("a", "ok"), Item("b", "skip")]).result == "green"
    assert Board("A", [Item("a", "ok"), Item("b", "warn")]).exit_code == 0
    red = Board("A", [Item("a", "warn"), Item("b", "fail")])
    assert (red.result, red.exit_code) == ("red", 1)


def test_any_text_a_check_makes_is_one_line_syncd_accepts() -> None:
    """A peer's certificate names it, an OS error or a camera's URL ends up in a figure: cut
    to one printable line within the protocol's bounds, so the report is never refused."""
    hostile = Item("peers", "fail", "Gate\x1b[31m B\n" + "x" * 500, "why\x00\x9b" + "y" * 500)
    assert (
        "\x1b" not in hostile.figure and "\n" not in hostile.figure and "\x00" not in hostile.detail
    )
    assert (
        len(hostile.figure) == 120 and hostile.figure.endswith("…") and len(hostile.detail) == 240
    )
    board = Board("A", [hostile], ran_at=2.0**40, seconds=99_999)
    sent = DrillReport.model_validate_json(board.to_report().model_dump_json())
    assert sent.ran_at == MAX_GATE_TIME and sent.seconds == 3600 and sent.result == "red"


def test_the_board_prints_skips_on_one_line_and_why_under_what_is_not_green() -> None:
    board = Board(
        "Gate B",
        [
            Item("list", "ok", "3 tickets", "fine"),
            Item("camera_feed", "skip", "no camera", "skipped: no camera is configured"),
            Item("clock", "warn", "gate clock 4.0 s behind syncd", "set the time (NTP)"),
        ],
        seconds=1.25,
        report="Reported to syncd (syncd.example) as amber.",
    )
    lines = click.unstyle(render(board)).splitlines()
    assert lines[1:] == [
        "  OK    list         3 tickets",
        "  SKIP  camera_feed  skipped: no camera is configured",
        "  WARN  clock        gate clock 4.0 s behind syncd",
        "                     set the time (NTP)",
        "AMBER: 0 failed, 1 to look at.",
        "Reported to syncd (syncd.example) as amber.",
    ]
    assert lines[0].startswith("Drill of Gate B, ") and lines[0].endswith(" (1.2 s)")


def test_only_host_and_port_of_a_url_are_shown() -> None:
    assert host_of("https://gate:s3cret@syncd.example:8443/base?token=x") == "syncd.example:8443"
    assert host_of("rtsp://admin:pw@10.0.0.9/stream") == "10.0.0.9"
    assert host_of("http://[::1]:99999/") == "?"
