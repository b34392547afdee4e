"""While syncd is unreachable the worker probes cheaply and pushes as soon as a probe answers.

Regression: after syncd came back, a gate waited 19.6 s before its first push (full jitter up
to 30 s) while cross-gate double uses piled up. Waits after a failure that got no answer are now
spent probing GET /healthz; failures that got an answer (5xx, 429) keep the long backoff.
"""

from __future__ import annotations

import random
from pathlib import Path

from shared.protocol import PUSH_PATH
from tests.gate.sync.fakesyncd import FakeSyncd
from tests.gate.sync.kit import enrolled_gate
from tests.gate.sync.test_push import scan_all, synced

HEALTH = "/healthz"
LONG = {"backoff_initial": 50.0, "backoff_max": 60.0, "probe_interval": 0.01}


async def test_the_push_follows_the_first_probe_that_answers(tmp_path: Path) -> None:
    random.seed(3)
    fake = FakeSyncd(faults=["connect", "connect", "timeout"])  # push, probe, probe fail
    async with enrolled_gate(tmp_path, fake, **LONG) as gate:
        await scan_all(gate, 2)
        fake.requests.clear()
        assert await gate.worker.retrying(gate.worker.drain) == 2
        assert fake.requests == [PUSH_PATH, HEALTH, HEALTH, HEALTH, PUSH_PATH]
        assert gate.worker.status.probes == 3 and await synced(gate) == {1, 2}
        assert sum(gate.sleeps.seen) < gate.worker.status.sleeps[0]  # left the backoff early
        assert gate.worker.status.state == "online"


async def test_answers_that_fail_keep_the_long_backoff(tmp_path: Path) -> None:
    random.seed(4)
    fake = FakeSyncd(faults=[503, 429])
    async with enrolled_gate(tmp_path, fake, **LONG) as gate:
        await scan_all(gate, 1)
        fake.requests.clear()
        assert await gate.worker.retrying(gate.worker.drain) == 1
        assert fake.requests == [PUSH_PATH] * 3 and gate.worker.status.probes == 0
        assert gate.sleeps.seen == gate.worker.status.sleeps  # one whole backoff per failure


async def test_probes_that_never_answer_end_with_the_backoff(tmp_path: Path) -> None:
    """The backoff stays the upper bound of a wait: then the push itself is tried again."""
    random.seed(5)
    config = {"backoff_initial": 1.0, "backoff_max": 1.0, "probe_interval": 0.1}
    fake = FakeSyncd(faults=["connect"] * 40)
    async with enrolled_gate(tmp_path, fake, **config) as gate:
        await scan_all(gate, 1)
        fake.requests.clear()
        assert await gate.worker.retrying(gate.worker.drain) == 1
        second_push = fake.requests.index(PUSH_PATH, 1)
        assert second_push > 1 and gate.worker.status.probes == fake.requests.count(HEALTH)
        first_wait = gate.sleeps.seen[:second_push]  # one step per failed probe, then the last
        assert abs(sum(first_wait) - gate.worker.status.sleeps[0]) < 1e-9


async def test_probe_steps_are_jittered(tmp_path: Path) -> None:
    """Gates that lost the link together must not probe in step."""
    random.seed(6)
    fake = FakeSyncd(faults=["connect"] * 12)
    async with enrolled_gate(tmp_path, fake, **LONG) as gate:
        await scan_all(gate, 1)
        await gate.worker.retrying(gate.worker.drain)
        steps = gate.sleeps.seen[:10]
        assert len(set(steps)) == len(steps) and all(0.005 <= s <= 0.015 for s in steps)
