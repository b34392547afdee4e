"""Click commands driven from async tests: each runs in a worker thread (commands are synchronous
and ``syncd`` ones start their own event loop) while the test's loop serves syncd."""

from __future__ import annotations

import asyncio

from click.testing import CliRunner, Result


async def run(cli, args: list[str], env: dict[str, str]) -> Result:  # type: ignore[no-untyped-def]
    return await asyncio.to_thread(CliRunner().invoke, cli, args, env=env, catch_exceptions=False)
