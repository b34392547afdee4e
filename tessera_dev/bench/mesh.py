"""Benchmark the peer mesh: how fast an admission at one gate reaches the others on the LAN.

Three gates (A, B, C) in one process, each with its own store holding the same N-ticket list,
its peer server on loopback and followers of the other two, exactly as ``gate run`` builds them
(``gate.peer.mesh.PeerMesh``; no syncd). Scans are decided at A at door pace through the same
Pipeline ``gate run`` uses; propagation is A's commit to B's and C's commit of the same
admission. A fourth gate with no mesh decides the same kind of scans first, for the door's
decision latency without and with peers attached. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from tqdm import tqdm

from gate.checkin.pipeline import Pipeline
from gate.peer import identity
from gate.peer.mesh import PeerMesh
from gate.peer.settings import PeerSettings
from gate.settings import GateSettings
from gate.store.db import Store
from gate.store.importer import import_bundle
from gate.store.syncstate import save_enrolment
from shared.peering import b64, make_certificate
from shared.protocol import EnrollResponse, KeyInfo
from shared.ticket import key_id, public_key_to_b64
from tessera_dev.bench.gate import EVENT, KEY, build_bundle, code, status
from tessera_dev.bench.kit import BenchError, free_port, pct


async def open_gate(work: Path, bundle: Path, gate_id: int, name: str, peer: PeerSettings) -> Store:
    settings = GateSettings(data_dir=work / name, gate_name=name, parts=[peer])
    store = await Store.open(settings.db_path)
    key = identity.new_key()
    identity.write_key(settings.peer_key_path, key)
    cert = make_certificate(KEY, EVENT, gate_id, key.public_key(), name)
    pub = KEY.public_key()
    enrolled = EnrollResponse(
        gate_id=gate_id,
        gate_name=name,
        event_id=EVENT,
        credential="tsg_bench",
        keys=[KeyInfo(kid=key_id(pub).hex(), public_key=public_key_to_b64(pub))],
        server_time=time.time(),
        certificate=b64(cert),
    )
    await save_enrolment(store, "http://127.0.0.1:9", settings.credential_path, enrolled)
    with bundle.open("rb") as stream:
        await import_bundle(store, stream)
    return store


async def inside(store: Store, ticket_id: int) -> bool:
    state = (await store.lookup(EVENT, ticket_id)).state
    return state is not None and state.inside


async def decide(pipeline: Pipeline, ids: list[int], pace: float) -> list[float]:
    latencies = []
    for ticket_id in tqdm(ids, desc="scans, no peers"):
        latencies.append((await pipeline.process(code(ticket_id))).latency_ms)
        await asyncio.sleep(pace)
    return latencies


async def bench(args: argparse.Namespace, work: Path) -> None:
    bundle = work / "list.bundle.gz"
    build_bundle(bundle, args.tickets, 0.25)
    names = ["A", "B", "C"]
    ports = [free_port() for _ in names]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    peers = [
        PeerSettings(port=p, host="127.0.0.1", peers=urls, heartbeat=1.0, timeout=2) for p in ports
    ]
    alone = await open_gate(work, bundle, 9, "D", PeerSettings())
    solo = GateSettings(data_dir=work / "D", gate_name="D", debounce_seconds=0)
    baseline = await decide(Pipeline(alone, solo), list(range(1, args.scans + 1)), args.pace)
    await alone.close()

    stores = [await open_gate(work, bundle, i + 1, n, peers[i]) for i, n in enumerate(names)]
    settings = [
        GateSettings(data_dir=work / n, gate_name=n, debounce_seconds=0, parts=[peers[i]])
        for i, n in enumerate(names)
    ]
    meshes = [PeerMesh(s, st, None) for s, st in zip(settings, stores, strict=True)]
    for mesh in meshes:
        await mesh.start()
    while not all(m.status()["online"] == 2 for m in meshes):  # noqa: ASYNC110 - polls a figure
        await asyncio.sleep(0.05)
    at_a = Pipeline(stores[0], settings[0])
    latency, spread = [], []
    valid = [i for i in range(1, args.tickets + 1) if status(i) == "valid"][: args.scans]
    for ticket_id in tqdm(valid, desc="scans at A, B and C follow"):
        decision = await at_a.process(code(ticket_id))
        shown = time.perf_counter()
        latency.append(decision.latency_ms)
        for other, mesh in zip(stores[1:], meshes[1:], strict=True):
            waited = time.perf_counter()
            while not await inside(other, ticket_id):
                if time.perf_counter() - waited > 30:
                    raise BenchError(f"ticket {ticket_id} did not arrive: {mesh.status()}")
                await asyncio.sleep(0.0005)
            spread.append((time.perf_counter() - shown) * 1000)
        await asyncio.sleep(args.pace)
    for mesh in meshes:
        await mesh.stop()
    for store in stores:
        await store.close()
    print(
        f"mesh: 3 gates on loopback, {args.tickets:,}-ticket list, {args.scans:,} admissions at A"
    )
    print(
        f"propagation ms (A's commit -> B's and C's commit): p50 {pct(spread, 50):.1f}"
        f"  p99 {pct(spread, 99):.1f}  max {max(spread):.1f}"
    )
    print(
        f"door decision latency ms: without peers p50 {statistics.median(baseline):.3f}"
        f" p99 {pct(baseline, 99):.3f}; with 2 peers attached p50 {statistics.median(latency):.3f}"
        f" p99 {pct(latency, 99):.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench_mesh", description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=100_000, help="list size (100,000)")
    parser.add_argument("--scans", type=int, default=1_000, help="admissions at A (1,000)")
    parser.add_argument(
        "--pace", type=float, default=0.02, help="seconds between scans at the door (0.02)"
    )
    parser.add_argument("--dir", type=Path, help="work folder (default: a temporary one)")
    parser.add_argument(
        "--quick", action="store_true", help="a small run (2,000 tickets, 100 scans)"
    )
    args = parser.parse_args()
    if args.quick:
        args.tickets, args.scans = 2_000, 100
    work = Path(tempfile.mkdtemp(prefix="bench_mesh_", dir=args.dir))
    try:
        asyncio.run(bench(args, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
