"""Benchmark: push a 1,000,000-row attendee CSV, and bad uploads, through syncd's API.

Starts a real ``syncd serve`` subprocess on a fresh database in the local Postgres
(TESSERA_TEST_DATABASE_URL), creates an org, a token and an event. First the bad uploads (a
50 MB single line, a 440 kB list and a 50 MB list with one unbalanced quote, a 200,000-character
field, JSON nested 5,000 deep), each answered with a named 4xx; then the CSV uploaded streamed
with httpx, a second push of the same file (all rows unchanged) and a complete push with 1%
changed rows. Each line prints the answer, the time, the peak RSS of the syncd process during
that request (VmRSS sampled every 10 ms), its peak since start (VmHWM), the RSS of its list
parse worker processes (summed, sampled every 100 ms) and how fast /healthz answered meanwhile
(asked every 50 ms: the event loop must not stall while a list is parsed).

    scripts/bench_lists [--rows N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
import psutil

from tessera_dev.bench.kit import AMQP_URL, cleanup_exchange, free_port
from tessera_dev.bench.servers import syncd

ROOT = Path(__file__).resolve().parents[2]
PG_URL = os.environ.get(
    "TESSERA_TEST_DATABASE_URL", "postgresql://postgres:postgres@127.0.0.1:5432/postgres"
)
HEADER = "external_ref,holder_name,email,category,zones,valid_from,valid_until\n"


def write_csv(path: Path, rows: int, change_every: int = 0) -> None:
    zones = ["", "Main", "Main|VIP", "Backstage"]
    with path.open("w") as f:
        f.write(HEADER)
        for i in range(rows):
            zone = zones[(i + 1) % 4] if change_every and i % change_every == 0 else zones[i % 4]
            f.write(
                f"ORD-{i:08d},Holder Number {i},h{i}@example.org,GA,{zone},"
                "2026-06-01T10:00:00,2026-06-03T23:00:00\n"
            )


def status_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def children_rss_mb(pid: int) -> float:
    """Summed RSS of the processes below ``pid`` (its forkserver and list parse workers)."""
    total = 0
    for child in psutil.Process(pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            total += child.memory_info().rss
    return total / (1 << 20)


def peak_rss_mb(pid: int) -> float:
    return status_mb(pid, "VmHWM")


class RssSampler:
    """While the ``with`` block runs: the highest VmRSS of ``pid`` (sampled every 10 ms) and the
    latency of ``GET /healthz`` asked every 50 ms (the event loop must keep answering)."""

    def __init__(self, pid: int, base_url: str) -> None:
        self.pid = pid
        self.base_url = base_url
        self.peak_mb = 0.0
        self.workers_mb = 0.0  # highest sum of the RSS of syncd's child processes
        self.health_ms: list[float] = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._sample, daemon=True),
            threading.Thread(target=self._probe, daemon=True),
        ]

    def _sample(self) -> None:
        n = 0
        while not self._stop.wait(0.01):
            self.peak_mb = max(self.peak_mb, status_mb(self.pid, "VmRSS"))
            n += 1
            if n % 10 == 0:
                self.workers_mb = max(self.workers_mb, children_rss_mb(self.pid))

    def _probe(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=60) as client:
            while not self._stop.wait(0.05):
                started = time.perf_counter()
                client.get("/healthz").raise_for_status()
                self.health_ms.append((time.perf_counter() - started) * 1000)

    def health(self) -> str:
        if not self.health_ms:
            return "/healthz -"
        ms = sorted(self.health_ms)
        p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
        return f"/healthz n={len(ms)} p50 {ms[len(ms) // 2]:.1f} p99 {p99:.1f} max {ms[-1]:.1f} ms"

    def __enter__(self) -> RssSampler:
        self.peak_mb = status_mb(self.pid, "VmRSS")
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()
        self.peak_mb = max(self.peak_mb, status_mb(self.pid, "VmRSS"))


def write_bad(folder: Path) -> list[tuple[str, Path, str]]:
    """(label, file, content type) of uploads syncd must refuse with a named 4xx."""
    rows = [f"Q{i},Holder {i},,,,,\n" for i in range(20_000)]
    rows[9] = 'Q9,"Holder 9,,,,,\n'
    files = {
        "50 MB single line": ("text/csv", b"x" * 50_000_000),
        "440 kB CSV, one unbalanced quote": ("text/csv", (HEADER + "".join(rows)).encode()),
        "50 MB CSV, one unbalanced quote": (
            "text/csv",
            (HEADER + "".join(rows) * 112).encode(),
        ),
        "CSV field of 200,000 characters": (
            "text/csv",
            (HEADER + f"F1,{'x' * 200_000}\n").encode(),
        ),
        "JSON nested 5,000 deep": ("application/json", b"[" * 5001 + b"]" * 5001),
    }
    out = []
    for n, (label, (media, data)) in enumerate(files.items()):
        path = folder / f"bad-{n}"
        path.write_bytes(data)
        out.append((label, path, media))
    return out


def push_bad(client: httpx.Client, event_id: int, path: Path, media: str) -> tuple[int, str]:
    with path.open("rb") as f:
        resp = client.post(
            f"/api/v1/events/{event_id}/list", content=f, headers={"Content-Type": media}
        )
    return resp.status_code, resp.json().get("error", "?")


async def setup_db(url: str) -> str:
    admin = await asyncpg.connect(PG_URL)
    name = url.rsplit("/", 1)[1]
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    return url


async def drop_db(name: str) -> None:
    admin = await asyncpg.connect(PG_URL)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


def push(client: httpx.Client, event_id: int, path: Path, complete: bool) -> tuple[dict, float]:
    started = time.perf_counter()
    with path.open("rb") as f:
        resp = client.post(
            f"/api/v1/events/{event_id}/list",
            content=f,
            params={"complete": "1" if complete else "0"},
            headers={"Content-Type": "text/csv"},
        )
    elapsed = time.perf_counter() - started
    resp.raise_for_status()
    return resp.json(), elapsed


def report(label: str, rows: int, result: dict, elapsed: float, rss: RssSampler) -> None:
    print(
        f"{label:<36} {rows:>9,} rows  {elapsed:7.2f} s  {rows / elapsed:>9,.0f} rows/s  "
        f"syncd RSS peak {rss.peak_mb:4.0f} MB (since start {peak_rss_mb(rss.pid):4.0f} MB, "
        f"parse workers {rss.workers_mb:3.0f} MB)  {rss.health()}  {result}"
    )


def bad_uploads(client: httpx.Client, event_id: int, folder: Path, pid: int) -> None:
    for label, path, media in write_bad(folder):
        started = time.perf_counter()
        with RssSampler(pid, str(client.base_url)) as rss:
            status, code = push_bad(client, event_id, path, media)
        print(
            f"{label:<36} {path.stat().st_size / 1e6:7.2f} MB  -> {status} {code:<14} "
            f"{time.perf_counter() - started:6.2f} s  syncd RSS peak {rss.peak_mb:4.0f} MB "
            f"(since start {peak_rss_mb(pid):4.0f} MB, parse workers {rss.workers_mb:3.0f} MB)  "
            f"{rss.health()}"
        )
        path.unlink()


def good_pushes(
    client: httpx.Client, event_id: int, files: tuple[Path, Path], rows: int, pid: int
) -> None:
    first, second = files
    with RssSampler(pid, str(client.base_url)) as rss:
        result, elapsed = push(client, event_id, first, complete=False)
    report("push 1: all new", rows, result, elapsed, rss)
    with RssSampler(pid, str(client.base_url)) as rss:
        result, elapsed = push(client, event_id, first, complete=False)
    report("push 2: same file, unchanged", rows, result, elapsed, rss)
    rows2 = rows - rows // 100
    with RssSampler(pid, str(client.base_url)) as rss:
        result, elapsed = push(client, event_id, second, complete=True)
    report("push 3: complete, 1% gone, 1% moved", rows2, result, elapsed, rss)


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench_lists", description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--quick", action="store_true", help="a small run (2,000 rows), as the test suite does"
    )
    args = parser.parse_args()
    if args.quick:
        args.rows = 2_000
    name = f"tessera_bench_{uuid.uuid4().hex[:8]}"
    url = PG_URL.rsplit("/", 1)[0] + "/" + name
    asyncio.run(setup_db(url))
    port = free_port()
    exchange = f"tessera-bench-lists-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "SYNCD_DATABASE_URL": url,
        "SYNCD_PORT": str(port),
        "SYNCD_MASTER_KEY": "bench-master-key-0123456789abcdefghijkl",
        # A private exchange, deleted below: never syncd's default names on a shared broker.
        "SYNCD_AMQP_URL": AMQP_URL,
        "SYNCD_AMQP_EXCHANGE": exchange,
        "SYNCD_LOG_LEVEL": os.environ.get("SYNCD_LOG_LEVEL", "WARNING"),
    }
    server = None
    try:
        syncd(env, "migrate")
        syncd(env, "create-org", "Bench")
        token = syncd(env, "create-token", "--org", "Bench", "--role", "organiser")
        server = subprocess.Popen([sys.executable, "-m", "syncd", "serve"], env=env, cwd=ROOT)
        tmp = Path(tempfile.mkdtemp())
        first, second = tmp / "list.csv", tmp / "list-changed.csv"
        t0 = time.perf_counter()
        write_csv(first, args.rows)
        write_csv(second, args.rows - args.rows // 100, change_every=100)
        print(
            f"generated 2 CSV files ({first.stat().st_size / 1e6:.0f} MB each) in "
            f"{time.perf_counter() - t0:.1f} s"
        )
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            timeout=600,
            headers={"Authorization": f"Bearer {token}"},
        ) as client:
            for _ in range(100):
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            event = client.post(
                "/api/v1/events", json={"name": "Bench", "zones": ["Main", "VIP", "Backstage"]}
            ).json()
            eid = event["event_id"]
            with RssSampler(server.pid, str(client.base_url)) as idle:
                time.sleep(5)
            print(f"{'idle syncd, 5 s (baseline)':<36} {idle.health()}")
            bad_uploads(client, eid, tmp, server.pid)
            good_pushes(client, eid, (first, second), args.rows, server.pid)
        for path in (first, second):
            path.unlink()
        tmp.rmdir()
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)
        asyncio.run(drop_db(name))
        asyncio.run(cleanup_exchange(exchange))


if __name__ == "__main__":
    main()
