"""The failure-test proxy really cuts and restores a connection to a real server."""

from __future__ import annotations

import asyncpg
import pytest

from tests.support.netproxy import TcpProxy


async def test_proxy_cut_breaks_and_restore_heals_a_postgres_connection(pg_url: str) -> None:
    with TcpProxy("127.0.0.1", 5432) as proxy:
        url = pg_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
        conn = await asyncpg.connect(url)
        assert await conn.fetchval("SELECT 1") == 1
        proxy.cut()
        with pytest.raises((OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError)):
            await conn.fetchval("SELECT 1")
        with pytest.raises(OSError):
            await asyncpg.connect(url, timeout=2)
        proxy.restore()
        again = await asyncpg.connect(url)
        assert await again.fetchval("SELECT 2") == 2
        await again.close()
        conn.terminate()
