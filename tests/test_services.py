"""The test set-up provides real Postgres and RabbitMQ; these prove each fixture works, and that
the helpers scripts/setup relies on see what they must."""

from __future__ import annotations

import asyncio
import functools
import http.server
import socket
import sys
import threading
from pathlib import Path

import aio_pika
import asyncpg

from tests.conftest import Rabbit


async def test_postgres_fixture_gives_a_fresh_writable_database(pg_url: str) -> None:
    conn = await asyncpg.connect(pg_url)
    try:
        tables = await conn.fetchval(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        )
        assert tables == 0
        await conn.execute("CREATE TABLE t (x int)")
        await conn.execute("INSERT INTO t VALUES (42)")
        assert await conn.fetchval("SELECT x FROM t") == 42
    finally:
        await conn.close()


async def test_rabbitmq_fixture_routes_a_message_through_a_topic_exchange(rabbit: Rabbit) -> None:
    async with await aio_pika.connect(rabbit.url) as conn:
        channel = await conn.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange(
            rabbit.exchange(), aio_pika.ExchangeType.TOPIC, auto_delete=True
        )
        queue = await channel.declare_queue(rabbit.queue("q"), exclusive=True)
        await queue.bind(exchange, "checkin.*")
        await exchange.publish(aio_pika.Message(b"hello", message_id="1"), "checkin.performed")
        message = await queue.get(timeout=5, fail=True)
        assert message is not None
        await message.ack()
        assert (message.body, message.message_id) == (b"hello", "1")
        await asyncio.sleep(0)


# --- what scripts/setup relies on: _system_deps.py and the registry probe -----------------------

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import _probe_services  # noqa: E402
import _system_deps  # noqa: E402


def test_system_deps_finds_a_library_the_linker_cannot_resolve(tmp_path: Path) -> None:
    """A fresh Debian 12 lacks libatomic.so.1 that playwright's node needs; setup must see such a
    gap. A real shared object whose DT_NEEDED entry names a library that does not exist stands in
    for it (the same bytes, one letter changed: libm.so.6 -> libq.so.6)."""
    import numpy

    original = (
        Path(numpy.__file__).parent / "_core" / "_umath_tests.cpython-311-x86_64-linux-gnu.so"
    )
    patched = tmp_path / "needs_libq.so"
    patched.write_bytes(original.read_bytes().replace(b"libm.so.6\x00", b"libq.so.6\x00"))
    assert _system_deps.missing_libraries([original]) == {}
    assert _system_deps.missing_libraries([patched]) == {"libq.so.6": [str(patched)]}


def test_system_deps_maps_libraries_with_playwrights_debian_table() -> None:
    table = _system_deps.debian_table(_system_deps.playwright_bundle())
    assert table["libatomic.so.1"] == "libatomic1"
    assert table["libnss3.so"] == "libnss3"


def test_system_deps_inspects_playwrights_node() -> None:
    import playwright

    node = Path(playwright.__file__).parent / "driver" / "node"
    assert node in _system_deps.elf_files(Path(playwright.__file__).parent)


def test_registry_probe_names_an_unreachable_index_quickly() -> None:
    """An index nobody listens on is 'down (why)' at once, not after pip's minutes of retries."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = _probe_services._registry(f"http://127.0.0.1:{port}/simple")
    assert result.startswith("down (") and "Connection refused" in result


def test_registry_probe_says_ok_for_an_index_that_answers(tmp_path: Path) -> None:
    (tmp_path / "simple" / "pip").mkdir(parents=True)
    (tmp_path / "simple" / "pip" / "index.html").write_text("<a>pip-24.0.tar.gz</a>")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/simple"
        try:
            assert _probe_services._registry(url) == "ok"
            assert _probe_services._registry(url + "/missing").startswith("down (HTTP 404")
        finally:
            server.shutdown()
