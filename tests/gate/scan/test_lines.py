"""The scanner line rules (gate.scan.lines), shared by stdin, serial and evdev."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gate.scan.lines import MAX_LINE, OVERLONG, LineFramer, frame_lines
from tessera_dev.sample_event import code

VALID = code(1, 11)


def test_trailing_space_or_tab_is_stripped() -> None:
    """Regression: a valid code with a trailing space or tab was "Forged or damaged code"."""
    assert frame_lines(f"{VALID} \n{VALID}\t\n  {VALID}\t \r\n".encode()) == [VALID] * 3


def test_cr_lf_and_crlf_each_end_one_scan() -> None:
    """Regression: CR-only line ends merged two scans into one denial."""
    other = code(5, 55)
    assert frame_lines(f"{VALID}\r{other}\r".encode()) == [VALID, other]
    assert frame_lines(f"{VALID}\r\n{other}\n".encode()) == [VALID, other]
    assert frame_lines(f"{VALID}\n\n\r\n{other}".encode()) == [VALID, other]


def test_an_overlong_line_is_one_scan_however_long() -> None:
    """Regression: 100 kB of junk gave 25 denials."""
    assert frame_lines(b"x" * 100_000 + b"\n") == [OVERLONG]
    assert frame_lines(b"x" * 100_000) == [OVERLONG]  # no line end before the input ends


def test_junk_before_a_valid_code_does_not_admit_it() -> None:
    """Regression: 4,096 junk bytes then a valid code gave a denial and an ADMIT."""
    assert frame_lines(b"j" * MAX_LINE + VALID.encode() + b"\n") == [OVERLONG]


def test_the_line_after_an_overlong_one_is_read_cleanly() -> None:
    assert frame_lines(b"j" * 9000 + b"\r" + VALID.encode() + b"\r") == [OVERLONG, VALID]


def test_a_line_of_exactly_the_limit_is_kept() -> None:
    line = "A" * MAX_LINE
    assert frame_lines(line.encode() + b"\n") == [line]
    assert frame_lines(line.encode() + b"A\n") == [OVERLONG]


def test_bytes_that_are_not_utf8_are_replaced_not_fatal() -> None:
    assert frame_lines(b"\xff\xfeT1\n") == ["\ufffd\ufffdT1"]


def test_memory_stays_bounded_while_junk_streams_in() -> None:
    framer = LineFramer()
    for _ in range(1000):
        assert framer.feed(b"z" * 1000) == []
    assert len(framer._buffer) == 0
    assert framer.feed(b"\n") == [OVERLONG]


@given(
    st.lists(st.text(st.characters(blacklist_categories=["Cs"]), max_size=60), max_size=8),
    st.lists(st.integers(1, 50), min_size=1, max_size=20),
    st.sampled_from(["\n", "\r", "\r\n"]),
)
def test_chunking_never_changes_the_scans(lines: list[str], cuts: list[int], end: str) -> None:
    data = "".join(line + end for line in lines).encode()
    whole = frame_lines(data)
    framer, scans, at = LineFramer(), [], 0
    for size in cuts * (len(data) // max(sum(cuts), 1) + 1):
        scans += framer.feed(data[at : at + size])
        at += size
    scans += framer.feed(data[at:]) + framer.finish()
    assert scans == whole
    assert all(s == s.strip() and s and "\r" not in s and "\n" not in s for s in whole)
