"""A real gate rejoins a real syncd after the link comes back: it pushes within a probe or two.

Regression: after syncd came back, one gate waited 19.6 s before its first push (full jitter
up to 30 s). Here the backoff is made long on purpose (up to 20-60 s) and the probes short, so
a push that followed the backoff instead of the probes would show up as dozens of probes logged
before it. Counted in probes (log lines of the gate), not in seconds.
"""

from __future__ import annotations

import json

from tests.e2e.event_stack import Stack, stack  # noqa: F401  (the fixture)
from tests.e2e.stack import Gate, eventually
from tests.gate.scan.rungate import RunningGate

SYNC = {
    "sync_push_interval": "0.3",
    "sync_long_poll": "2",
    "sync_timeout": "2",
    "sync_backoff_initial": "20",
    "sync_backoff_max": "60",
    "sync_probe_interval": "0.3",
    "sync_probe_timeout": "1",
    "log_level": "DEBUG",
}


def _stored(running: Stack, name: str) -> int:
    sql = "SELECT count(*) AS n FROM checkins c JOIN gates g USING (gate_id) WHERE g.name = $1"
    return int(running.sql(sql, name)[0]["n"])


def _logs(lines: list[str], msg: str) -> list[dict[str, object]]:
    found = [json.loads(line) for line in lines if line.startswith("{")]
    return [entry for entry in found if entry.get("msg") == msg]


def _pushed_since(gate: RunningGate, start: int) -> bool:
    return any('"sync pushed"' in line for line in list(gate.stderr)[start:])


def test_the_gate_pushes_at_the_first_probe_after_the_link_returns(stack: Stack) -> None:  # noqa: F811
    created = stack.api.post(f"/api/v1/events/{stack.event_id}/gates", json={"name": "R"})
    enrolled = Gate("R", stack.tmp / "R", f"http://127.0.0.1:{stack.net.port}")
    enrolled.enroll(created.json()["code"])
    gate = RunningGate(enrolled.data_dir, "stdin", name="R", **SYNC)
    try:
        gate.wait_for_log("gate started")
        gate.write(stack.codes[0].encode() + b"\n")
        assert gate.next_decisions(1)[0]["decision"] == "admit"
        eventually(lambda: _stored(stack, "R") == 1, "first check-in pushed", 60)

        stack.net.cut()
        gate.write(stack.codes[1].encode() + b"\n")
        assert gate.next_decisions(1)[0]["decision"] == "admit"  # offline: decided locally
        gate.wait_for_log('"answered": false', count=4)  # probing while the link is down
        restored_at = len(gate.stderr)
        stack.net.restore()
        eventually(lambda: _stored(stack, "R") == 2, "pushed after the link returned", 90)
        # syncd stores the push before the gate reads its answer and logs "sync pushed": wait
        # for the line before stopping, or a stop in between loses it (it did, twice, in CI).
        eventually(lambda: _pushed_since(gate, restored_at), "the gate logged its push", 30)
    finally:
        exit_code, stderr, _ = gate.stop()
    assert exit_code == 0, stderr
    after = list(gate.stderr[restored_at:])
    pushed = next(i for i, line in enumerate(after) if '"sync pushed"' in line)
    probes = _logs(after[:pushed], "sync probe")
    assert probes and probes[-1]["answered"] is True  # a probe answered, then the push
    assert len(probes) <= 4  # both loops probe; neither waited out its 20-60 s backoff
