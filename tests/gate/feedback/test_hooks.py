"""Sound/relay hooks run real commands with the result in their environment."""

from __future__ import annotations

import sys
from pathlib import Path

from gate.feedback.hooks import CommandHooks, HookSettings
from tests.gate.feedback.realgate import make_gate, tickets

WRITE_ENV = (
    "import os,sys; open(sys.argv[1],'a').write(os.environ['TESSERA_OUTCOME']+' '"
    "+os.environ['TESSERA_REASON']+' '+os.environ['TESSERA_TICKET_ID']+'\\n')"
)


def _command(out: Path) -> str:
    return f'{sys.executable} -c "{WRITE_ENV}" {out}'


async def test_admit_and_deny_run_their_commands(tmp_path: Path) -> None:
    admits, denies = tmp_path / "admit.txt", tmp_path / "deny.txt"
    hooks = CommandHooks(HookSettings(on_admit=_command(admits), on_deny=_command(denies)))
    gate = await make_gate(tmp_path, tickets(1), sinks=[hooks])
    try:
        code = gate.code(1001)
        await gate.pipeline.process(code, via="camera")
        await gate.pipeline.process(code, via="camera")
        await hooks.drain()
    finally:
        await gate.store.close()
    assert admits.read_text() == "admit  1001\n"
    assert denies.read_text() == "deny already_inside 1001\n"


async def test_failing_or_hanging_hooks_never_break_a_scan(tmp_path: Path) -> None:
    hooks = CommandHooks(
        HookSettings(
            on_admit=f"{sys.executable} -c 'import time; time.sleep(30)'",
            on_deny="/nonexistent/buzzer",
            timeout=0.3,
        )
    )
    gate = await make_gate(tmp_path, tickets(1), sinks=[hooks])
    try:
        first = await gate.pipeline.process(gate.code(1001), via="camera")
        second = await gate.pipeline.process(gate.code(1001), via="camera")
        await hooks.drain()
    finally:
        await gate.store.close()
    assert (first.outcome, second.outcome) == ("admit", "deny")
    assert hooks.last_returncode is None


async def test_no_command_configured_does_nothing(tmp_path: Path) -> None:
    hooks = CommandHooks(HookSettings())
    gate = await make_gate(tmp_path, tickets(1), sinks=[hooks])
    try:
        await gate.pipeline.process(gate.code(1001), via="camera")
        await hooks.drain()
    finally:
        await gate.store.close()
    assert hooks.last_returncode is None
