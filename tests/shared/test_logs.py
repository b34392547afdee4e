"""One log line format for every process: gate and syncd write the same fields the same way."""

from __future__ import annotations

import json
import logging
import re
import sys

from gate.logs import JsonFormatter as GateFormatter
from syncd.web.logs import JsonFormatter as SyncdFormatter
from syncd.web.logs import request_id

ISO_UTC_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def _record(msg: str = "pushed %d", *args: object, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("x.y", logging.WARNING, __file__, 1, msg, args or (3,), None)
    record.created = 1796131085.0396
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_gate_and_syncd_write_the_same_line_format() -> None:
    gate = json.loads(GateFormatter().format(_record(gate_id=7)))
    token = request_id.set("req-1")
    try:
        syncd = json.loads(SyncdFormatter().format(_record(gate_id=7)))
    finally:
        request_id.reset(token)
    assert gate == {
        "ts": "2026-12-01T13:18:05.039Z",
        "level": "warning",
        "logger": "x.y",
        "msg": "pushed 3",
        "gate_id": 7,
    }
    assert ISO_UTC_MS.match(gate["ts"])
    assert syncd == {**gate, "request_id": "req-1"}
    assert list(syncd)[:5] == ["ts", "level", "logger", "msg", "request_id"]


def test_syncd_lines_are_redacted_and_gate_lines_keep_tracebacks() -> None:
    secret = "tsr_" + "A" * 43
    line = SyncdFormatter().format(_record("token %s", secret, note=secret))
    assert secret not in line and line.count("[redacted]") == 2
    try:
        raise ValueError("boom")
    except ValueError:
        record = _record()
        record.exc_info = sys.exc_info()
    out = json.loads(GateFormatter().format(record))
    assert out["exc"].startswith("Traceback") and "ValueError: boom" in out["exc"]
