"""The ``syncd`` admin commands and the ``tessera`` client, against a real server and Postgres.

Click commands run in a worker thread (they are synchronous and ``syncd`` ones start their own
event loop) while the test's loop serves the in-process syncd on a real TCP port.
"""

from __future__ import annotations

import threading
from urllib.parse import urlsplit

from syncd.__main__ import cli as syncd_cli
from tessera_dev.netproxy import TcpProxy
from tests.support.cli import run
from tests.syncd.conftest import MASTER_KEY


async def test_syncd_admin_commands(pg_url: str) -> None:
    env = {"SYNCD_DATABASE_URL": pg_url, "SYNCD_MASTER_KEY": MASTER_KEY}
    result = await run(syncd_cli, ["serve", "--check-config"], env)
    assert result.exit_code == 1 and "syncd migrate" in result.output
    result = await run(syncd_cli, ["migrate"], env)
    assert result.exit_code == 0 and "applied 0001_init" in result.output
    assert "up to date" in (await run(syncd_cli, ["migrate"], env)).output
    assert (
        await run(syncd_cli, ["serve", "--check-config"], env)
    ).output.strip() == "configuration OK"
    assert "org_id 1" in (await run(syncd_cli, ["create-org", "Acme"], env)).output
    result = await run(syncd_cli, ["create-org", "Acme"], env)
    assert result.exit_code == 1 and "cannot create organisation" in result.output
    result = await run(syncd_cli, ["create-token", "--org", "Acme", "--role", "viewer"], env)
    assert result.exit_code == 0 and result.stdout.startswith("tsr_")
    assert "cannot be shown again" in result.stderr
    result = await run(syncd_cli, ["create-token", "--org", "Nope"], env)
    assert result.exit_code == 1 and "no organisation" in result.output
    key = (await run(syncd_cli, ["gen-master-key"], env)).output.strip()
    assert len(key) >= 43
    result = await run(
        syncd_cli, ["migrate"], {"SYNCD_DATABASE_URL": "postgresql://x@127.0.0.1:1/x"}
    )
    assert result.exit_code == 1 and "cannot connect" in result.output
    for command in ("migrate", "serve", "create-org", "create-token", "gen-master-key"):
        assert (await run(syncd_cli, [command, "--help"], env)).exit_code == 0


async def test_migrate_waits_for_a_postgres_that_is_still_starting(pg_url: str) -> None:
    """Scenario: compose starts ``syncd migrate --wait`` beside a Postgres container that does
    not accept connections yet; migrate waits, then applies. A wrong role is refused at once."""
    url = urlsplit(pg_url)
    with TcpProxy(url.hostname or "127.0.0.1", url.port or 5432) as late:
        late.cut()  # nothing listens on the port yet: "connection refused"
        threading.Timer(1.5, late.restore).start()
        env = {
            "SYNCD_DATABASE_URL": url._replace(
                netloc=f"{url.netloc.split('@')[0]}@127.0.0.1:{late.port}"
            ).geturl()
        }
        result = await run(syncd_cli, ["migrate", "--wait", "30"], env)
        assert result.exit_code == 0, result.output
        assert "waiting for Postgres" in result.stderr and "applied 0001_init" in result.stdout
    wrong = {
        "SYNCD_DATABASE_URL": url._replace(
            netloc="nosuchrole@" + url.netloc.split("@")[-1]
        ).geturl()
    }
    result = await run(syncd_cli, ["migrate", "--wait", "30"], wrong)
    assert result.exit_code == 1 and "waiting" not in result.output
    # 'role ... does not exist' under trust auth, 'password authentication failed' under a password
    assert "cannot connect to Postgres" in result.output and '"nosuchrole"' in result.output
