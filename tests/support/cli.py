"""Click commands driven from async tests: each runs in a worker thread (commands are synchronous
and ``syncd`` ones start their own event loop) while the test's loop serves syncd.

``tessera_client`` is the harness of the ``tessera`` client's tests: an organisation made with
syncd's own admin commands, syncd in-process on a real TCP port, and the client pointed at it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp.test_utils import BaseTestServer, TestServer
from click.testing import CliRunner, Result

from syncd.__main__ import cli as syncd_cli
from syncd.app import create_app
from syncd.settings import SyncdSettings
from tessera_cli.__main__ import cli as tessera_cli
from tests.syncd.conftest import MASTER_KEY


async def run(cli, args: list[str], env: dict[str, str]) -> Result:  # type: ignore[no-untyped-def]
    return await asyncio.to_thread(CliRunner().invoke, cli, args, env=env, catch_exceptions=False)


@dataclass(frozen=True)
class Tessera:
    """The ``tessera`` client of one organisation, pointed at a running syncd."""

    server: BaseTestServer
    token: str  # the organisation's admin token, made by ``syncd create-token``
    env: dict[str, str]  # TESSERA_CLI_URL and TESSERA_CLI_TOKEN

    async def __call__(self, *args: str, ok: bool = True) -> Result:
        """``tessera ARGS``; asserts it exited 0 (``ok``) or not (``ok=False``)."""
        result = await run(tessera_cli, list(args), self.env)
        assert (result.exit_code == 0) == ok, (args, result.output)
        return result


@asynccontextmanager
async def tessera_client(
    settings: SyncdSettings, db_url: str, org: str = "Acme"
) -> AsyncIterator[Tessera]:
    """``syncd create-org ORG`` and ``create-token``, then syncd serving ``settings`` until the
    block ends, with the client of that token."""
    env = {"SYNCD_DATABASE_URL": db_url, "SYNCD_MASTER_KEY": MASTER_KEY}
    await run(syncd_cli, ["create-org", org], env)
    token = (await run(syncd_cli, ["create-token", "--org", org], env)).stdout.strip()
    async with TestServer(create_app(settings)) as server:
        cli_env = {"TESSERA_CLI_URL": str(server.make_url("/")), "TESSERA_CLI_TOKEN": token}
        yield Tessera(server, token, cli_env)
