"""Sound and relay hooks: a configured command run on ADMIT and another on DENY.

The command gets the result in its environment (``TESSERA_OUTCOME``, ``TESSERA_REASON``,
``TESSERA_MESSAGE``, ``TESSERA_CATEGORY``, ``TESSERA_TICKET_ID``, ``TESSERA_DIRECTION``,
``TESSERA_ADMITTED``: how many tickets the result lets through, 1 for an admit, the group's
count when the rest of its group came in too, 0 for a denial); the holder's name is left out on
purpose. Hooks run in the background: a slow buzzer never delays the
next scan. A hook that fails or overruns its timeout is logged and killed, never raised.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

log = logging.getLogger("gate.feedback.hooks")


class HookSettings(BaseSettings):
    """Commands run on a result, e.g. a buzzer or a turnstile relay. Empty = no hook."""

    model_config = SettingsConfigDict(env_prefix="GATE_HOOK_", extra="forbid")

    on_admit: str = Field(default="", description="Command run on ADMIT (shell-style words).")
    on_deny: str = Field(default="", description="Command run on DENY.")
    timeout: float = Field(default=5.0, gt=0, description="A hook running longer is killed.")


def hook_env(decision: Any) -> dict[str, str]:
    reason = getattr(decision, "reason", None)
    ticket_id = getattr(decision, "ticket_id", None)
    return {
        "TESSERA_OUTCOME": str(decision.outcome),
        "TESSERA_REASON": str(getattr(reason, "value", reason) or ""),
        "TESSERA_MESSAGE": str(getattr(decision, "message", "")),
        "TESSERA_CATEGORY": str(getattr(decision, "category", "") or ""),
        "TESSERA_TICKET_ID": "" if ticket_id is None else str(ticket_id),
        "TESSERA_DIRECTION": str(getattr(decision, "direction", "")),
        "TESSERA_ADMITTED": str(_admitted(decision)),
    }


def _admitted(decision: Any) -> int:
    """How many tickets a result lets through (``gate.checkin.group``: a group's count)."""
    if decision.outcome != "admit":
        return 0
    group = getattr(decision, "group", None)
    return int(group.admitted) if group is not None else 1


class CommandHooks:
    """A ``Feedback`` that runs ``on_admit`` / ``on_deny`` commands."""

    def __init__(self, settings: HookSettings) -> None:
        self.settings = settings
        self._tasks: set[asyncio.Task[int | None]] = set()
        self.last_returncode: int | None = None

    async def show(self, decision: Any) -> None:
        command = self.settings.on_admit if decision.outcome == "admit" else self.settings.on_deny
        if not command.strip():
            return
        task = asyncio.create_task(self._run(shlex.split(command), hook_env(decision)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for running hooks (at shutdown, and in tests)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _run(self, argv: list[str], extra: dict[str, str]) -> int | None:
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                env={**os.environ, **extra},
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            log.error("hook %s cannot start: %s", argv[0], exc)
            return None
        try:
            _, err = await asyncio.wait_for(proc.communicate(), self.settings.timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            log.error("hook %s killed after %.1fs", argv[0], self.settings.timeout)
            return None
        self.last_returncode = proc.returncode
        if proc.returncode:
            log.error("hook %s exited %s: %s", argv[0], proc.returncode, err.decode()[-300:])
        return proc.returncode
