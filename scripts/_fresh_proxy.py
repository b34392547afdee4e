"""The registry proxy of scripts/fresh-check: the one way out of the fresh machine's network.

``serve`` is an HTTP proxy (``CONNECT host:443`` for HTTPS, absolute-form requests such as
``GET http://deb.debian.org/...`` for plain HTTP, which apt uses) that listens on a unix socket in
the host's network namespace. It forwards only to the hosts it is told to allow and refuses every
other with ``403``; it logs every request, allowed or not, as one JSON line
``{"host", "port", "method", "allowed"}``, so the check can fail on any host that is not a registry.

``bridge`` runs inside the fresh machine's own network namespace (which has nothing but loopback)
and forwards ``127.0.0.1:PORT`` there to that unix socket: unix sockets live in the file system,
not in a network namespace, so the bridge is the only path out, and it reaches only the proxy.

Standard library only: fresh-check runs it with the host's ``python3``, before any venv exists.
The proxy relays bytes; it never sees inside TLS (where the host re-signs HTTPS, the fresh machine
gets the host's CA trust store instead).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TextIO

MAX_HEAD = 64 * 1024
CONNECT_TIMEOUT = 15.0
_ABSOLUTE = re.compile(rb"^([A-Z]+) http://([^/:\s]+)(?::(\d+))?(/\S*)? (HTTP/1\.[01])\r\n")
_CONNECT = re.compile(rb"^CONNECT ([^:\s]+):(\d+) HTTP/1\.[01]\r\n")


class Refusal(Exception):
    """A request the proxy does not forward; ``status`` is the HTTP status it answers with."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


def parse_head(head: bytes) -> tuple[str, str, int, bytes | None]:
    """(method, host, port, bytes to send upstream first) of one request head.

    CONNECT yields ``None`` as its first bytes (the tunnel starts empty); an absolute-form request
    yields its head rewritten to origin form, which is what an origin server expects.
    """
    if m := _CONNECT.match(head):
        return "CONNECT", m[1].decode("ascii").lower(), int(m[2]), None
    if m := _ABSOLUTE.match(head):
        method, host, port, path, version = m.groups()
        line = b"%s %s %s\r\n" % (method, path or b"/", version)
        rest = head[m.end() :]
        return method.decode(), host.decode("ascii").lower(), int(port or 80), line + rest
    raise Refusal("400 Bad Request")


class RegistryProxy:
    """Forwards to ``allowed`` hosts only and reports every request to ``record``."""

    def __init__(
        self,
        allowed: Iterable[str],
        record: Callable[[dict[str, object]], None],
        ports: frozenset[int] = frozenset({80, 443}),
    ) -> None:
        self.allowed = {host.lower() for host in allowed}
        self.record = record
        self.ports = ports

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one client connection; both of its sockets are closed however it ends."""
        try:
            await self._serve(reader, writer)
        finally:
            writer.transport.abort()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), CONNECT_TIMEOUT)
            method, host, port, first = parse_head(head)
            allowed = host in self.allowed and port in self.ports
            self.record({"host": host, "port": port, "method": method, "allowed": allowed})
            if not allowed:
                raise Refusal("403 Forbidden")
            up_reader, up_writer = await _open(host, port)
        except Refusal as exc:
            await _answer(writer, exc.status)
            return
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, OSError):
            writer.transport.abort()
            return
        try:
            if first is None:
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:
                up_writer.write(first)
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            up_writer.transport.abort()


async def _open(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    try:
        return await asyncio.wait_for(asyncio.open_connection(host, port), CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as exc:
        raise Refusal("502 Bad Gateway") from exc


async def _answer(writer: asyncio.StreamWriter, status: str) -> None:
    body = f"fresh-check proxy: {status}\n".encode()
    writer.write(
        b"HTTP/1.1 %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
        % (status.encode(), len(body))
    )
    writer.write(body)
    with contextlib.suppress(OSError):
        await writer.drain()
    writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.transport.abort()


def json_lines(stream: TextIO) -> Callable[[dict[str, object]], None]:
    """A ``record`` callback that appends one flushed JSON line per request to ``stream``."""

    def record(entry: dict[str, object]) -> None:
        stream.write(json.dumps(entry) + "\n")
        stream.flush()

    return record


async def serve(socket_path: str, allowed: list[str], log: TextIO) -> None:
    """Run the proxy on ``socket_path`` until cancelled."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(socket_path)
    proxy = RegistryProxy(allowed, json_lines(log))
    server = await asyncio.start_unix_server(proxy.handle, socket_path, limit=MAX_HEAD)
    os.chmod(socket_path, 0o666)
    async with server:
        await server.serve_forever()


async def bridge(port: int, socket_path: str) -> None:
    """Forward ``127.0.0.1:port`` (in the namespace this runs in) to the proxy's unix socket."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_unix_connection(socket_path)
        except OSError:
            writer.transport.abort()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    server = await asyncio.start_server(handle, "127.0.0.1", port, reuse_address=True)
    async with server:
        await server.serve_forever()


def hosts_seen(log_path: Path) -> dict[str, dict[str, int]]:
    """Per host: how many requests the proxy forwarded and refused, from its JSON-lines log."""
    seen: dict[str, dict[str, int]] = {}
    for line in log_path.read_text().splitlines():
        entry = json.loads(line)
        counts = seen.setdefault(f"{entry['host']}:{entry['port']}", {"allowed": 0, "refused": 0})
        counts["allowed" if entry["allowed"] else "refused"] += 1
    return seen


def _report(log_path: Path) -> int:
    seen = hosts_seen(log_path)
    for host, counts in sorted(seen.items()):
        print(f"  {host}: {counts['allowed']} forwarded, {counts['refused']} refused")
    refused = sorted(host for host, counts in seen.items() if counts["refused"])
    if refused:
        print(f"fresh-check: hosts other than the registries were contacted: {', '.join(refused)}")
    return 1 if refused else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="the allow-listing proxy on a unix socket")
    s.add_argument("--unix", required=True)
    s.add_argument("--log", required=True, type=Path)
    s.add_argument("--allow", nargs="+", required=True)
    b = sub.add_parser("bridge", help="127.0.0.1:PORT -> the proxy's unix socket")
    b.add_argument("--unix", required=True)
    b.add_argument("--port", type=int, default=3128)
    r = sub.add_parser("report", help="hosts in a proxy log; exit 1 if any was refused")
    r.add_argument("log", type=Path)
    args = parser.parse_args(argv)
    if args.command == "report":
        return _report(args.log)
    with contextlib.suppress(KeyboardInterrupt):
        if args.command == "serve":
            with args.log.open("a") as log:
                asyncio.run(serve(args.unix, args.allow, log))
        else:
            asyncio.run(bridge(args.port, args.unix))
    return 0


if __name__ == "__main__":
    sys.exit(main())
