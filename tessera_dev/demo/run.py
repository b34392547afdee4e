"""See Tessera work, end to end, with real processes (about 30 seconds).

1. Creates a throwaway Postgres database and a private RabbitMQ exchange, starts `syncd serve`.
2. As an organiser (`syncd create-org`, `tessera ...`): an event with zones Floor, Balcony and
   Backstage, 1,000 tickets pushed as CSV, one ticket reissued, two gates created and enrolled
   (`gate enroll`): North Door, and South Door whose network runs through a cuttable proxy.
3. Renders tickets the way phones and printouts held up to a door camera look (plus a forged
   ticket and the old QR of the reissued one) into one MJPG video per gate.
4. Runs `gate run --source VIDEO` for North Door (online), then cuts South Door off from syncd
   and runs it: it keeps deciding offline and admits a ticket North Door already let in.
5. Restores the network: South Door drains its journal, syncd flags the conflict, the outbox
   relay fans every check-in out to the exchange.
6. Prints each decision with its latency, what syncd holds, what the exchange delivered and the
   conflicts, then checks that gates, syncd and the exchange agree (exit 1 if not).

Everything it creates is removed at the end, also on Ctrl-C (--keep keeps the work folder with
the videos, gate databases and logs). Needs the services scripts/setup provides.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tessera_dev.demo.report import (
    Checks,
    check_totals,
    decision_table,
    decisions_delivered,
    exchange_lines,
    syncd_lines,
)
from tessera_dev.demo.scenes import NORTH, SOUTH, Scan, door_scripts, render, write_attendees
from tessera_dev.demo.services import (
    Deliveries,
    DemoError,
    GateProcess,
    Syncd,
    Tap,
    clean_env,
    create_database,
    database_url,
    drop_database,
    run_tool,
)
from tessera_dev.netproxy import TcpProxy

ROOT = Path(__file__).resolve().parents[2]

PG_URL = os.environ.get(
    "TESSERA_TEST_DATABASE_URL", "postgresql://postgres:postgres@127.0.0.1:5432/postgres"
)
AMQP_URL = os.environ.get("TESSERA_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


def _shown(args: list[str], work: Path) -> str:
    """The command as a person would type it: the one-time code masked, paths relative."""
    words = ["****" if i and args[i - 1] == "--code" else a for i, a in enumerate(args)]
    words = [w.replace(f"{work}/", "") for w in words]
    return " ".join(f"'{w}'" if " " in w else w for w in words)


@dataclass
class Run:
    """The state of one demo run; ``stack`` undoes everything it set up, in reverse."""

    args: argparse.Namespace
    stack: contextlib.ExitStack
    started: float = field(default_factory=time.monotonic)
    work: Path = Path()
    env: dict[str, str] = field(default_factory=dict)
    cli_env: dict[str, str] = field(default_factory=dict)
    event_id: int = 0
    syncd: Syncd | None = None
    tickets: dict[str, dict[str, str]] = field(default_factory=dict)

    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.started:5.1f}s] {text}", flush=True)

    def tool(self, module: str, shown: str, args: list[str], env: dict[str, str]) -> str:
        if not self.args.quiet:
            self.say(f"  $ {shown} {_shown(args, self.work)}")
        return run_tool(module, args, env)

    def tessera(self, *args: str) -> str:
        return self.tool("tessera_cli", "tessera", list(args), self.cli_env)

    def api(self, path: str) -> Any:
        assert self.syncd is not None
        headers = {"Authorization": f"Bearer {self.cli_env['TESSERA_CLI_TOKEN']}"}
        resp = httpx.get(f"{self.syncd.url}{path}", headers=headers, timeout=10)
        resp.raise_for_status()
        return resp.json()


# -- 1. services ------------------------------------------------------------------------------
def start_services(run: Run) -> Syncd:
    suffix = uuid.uuid4().hex[:10]
    database, exchange = f"tessera_demo_{suffix}", f"tessera-demo-{suffix}"
    admin = run.args.database_url
    create_database(admin, database)
    run.stack.callback(drop_database, admin, database)
    run.say(f"PostgreSQL: created throwaway database {database}")
    tap = Tap(run.args.amqp_url, exchange)
    run.stack.callback(tap.delete)
    tap.open()
    run.say(f"RabbitMQ: private exchange {exchange!r} with a queue counting what it delivers")
    from syncd.vault import new_master_key

    run.env = clean_env(
        SYNCD_DATABASE_URL=database_url(admin, database),
        SYNCD_AMQP_URL=run.args.amqp_url,
        SYNCD_AMQP_EXCHANGE=exchange,
        SYNCD_MASTER_KEY=new_master_key(),
        SYNCD_LOG_LEVEL="WARNING",
    )
    run.tool("syncd", "syncd", ["migrate"], run.env)
    syncd = Syncd(run.env, run.work / "syncd.log")
    run.stack.callback(syncd.stop)
    syncd.start()
    run.syncd = syncd
    run.say(f"syncd: schema migrated, serving at {syncd.url} (ready: database and broker)")
    return syncd


# -- 2. the organiser -------------------------------------------------------------------------
def organise(run: Run, syncd: Syncd) -> None:
    org = run.tool("syncd", "syncd", ["create-org", "Demo Arena"], run.env).split()[-1]
    token = run.tool("syncd", "syncd", ["create-token", "--org", org, "--role", "admin"], run.env)
    run.cli_env = clean_env(TESSERA_CLI_URL=syncd.url, TESSERA_CLI_TOKEN=token.strip())
    run.say(f"organisation #{org} and an admin API token (kept in the environment, never shown)")
    zones = ["--zone", "Floor", "--zone", "Balcony", "--zone", "Backstage"]
    event = json.loads(run.tessera("events", "create", "Demo Night", "--venue", "Hall 1", *zones))
    run.event_id = eid = event["event_id"]
    attendees = run.work / "attendees.csv"
    write_attendees(attendees, run.args.tickets)
    pushed = json.loads(run.tessera("push", str(eid), str(attendees)))
    run.say(
        f"event #{eid} 'Demo Night', zones Floor/Balcony/Backstage; `tessera push` of"
        f" {run.args.tickets:,} attendees: {_counts(pushed)}"
    )
    export = run.work / "tickets.csv"
    run.tessera("export", str(eid), "-o", str(export))
    with export.open(newline="") as f:
        run.tickets = {row["external_ref"]: row for row in csv.DictReader(f)}
    reissued = run.tickets["DEMO-0008"]
    run.tessera("tickets", "reissue", str(eid), reissued["ticket_id"])
    fresh = run.tessera("tickets", "qr", str(eid), reissued["ticket_id"]).strip()
    run.tickets["DEMO-0008-new"] = {**reissued, "qr_text": fresh}
    run.say(
        f"`tessera tickets reissue`: ticket {reissued['ticket_id']} got a new QR; the old one"
        " must stop working, even offline"
    )


def _counts(pushed: dict[str, Any]) -> str:
    keys = ("added", "updated", "reissued", "same", "revoked")
    found = [f"{k} {pushed[k]:,}" for k in keys if isinstance(pushed.get(k), int)]
    return ", ".join(found) or json.dumps(pushed)[:120]


def enrol(run: Run, name: str, server: str) -> dict[str, str]:
    code = run.tessera("gate", "create", str(run.event_id), name, "--zone", "Floor").strip()
    data_dir = run.work / name.lower().replace(" ", "-")
    env = clean_env(
        GATE_NAME=name,
        GATE_DATA_DIR=str(data_dir),
        GATE_ZONES="Floor",
        GATE_DISPLAY_ENABLED="false",
        GATE_SYNC_PUSH_INTERVAL="1",
        GATE_SYNC_LONG_POLL="5",
        GATE_SYNC_TIMEOUT="5",
        GATE_SYNC_BACKOFF_INITIAL="0.2",
        GATE_SYNC_BACKOFF_MAX="1.5",
        GATE_LOG_LEVEL="WARNING",
    )
    args = ["enroll", "--server", server, "--code", code, "--device", f"demo-{data_dir.name}"]
    out = run.tool("gate", "gate", args, env).strip()
    run.say(f"{name}: `tessera gate create` + `gate enroll`: {out.split(';')[0]}")
    return env


# -- 4./5. the doors --------------------------------------------------------------------------
def stored_by(run: Run, gate: str) -> int:
    for g in run.api(f"/api/v1/events/{run.event_id}/gates")["gates"]:
        if g["name"] == gate:
            return int(g["acked_seq"])
    return 0


def wait_stored(run: Run, gate: str, count: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while stored_by(run, gate) < count:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def play(run: Run, gate: GateProcess, scans: list[Scan], seconds: float) -> None:
    run.stack.callback(gate.kill)
    gate.start()
    if not gate.wait_decisions(len(scans), seconds + 30):
        raise DemoError(
            f"{gate.name} decided {len(gate.decisions)} of {len(scans)} scans; see {gate.log_path}"
        )


Scripts = dict[str, list[Scan]]


def doors(run: Run, syncd: Syncd, checks: Checks) -> tuple[dict[str, GateProcess], Scripts]:
    proxy = run.stack.enter_context(TcpProxy("127.0.0.1", syncd.port))
    north_env = enrol(run, NORTH, syncd.url)
    south_env = enrol(run, SOUTH, f"http://127.0.0.1:{proxy.port}")
    north_scans, south_scans = door_scripts(run.tickets)
    videos = {name: run.work / f"{name.split()[0].lower()}.avi" for name in (NORTH, SOUTH)}
    with ThreadPoolExecutor(2) as pool:
        north_job = pool.submit(render, videos[NORTH], north_scans, 1)
        south_s = render(videos[SOUTH], south_scans, 2)
        north_s = north_job.result()
    run.say(
        f"videos: {NORTH} {len(north_scans)} tickets ({north_s:.1f} s), {SOUTH}"
        f" {len(south_scans)} tickets ({south_s:.1f} s), 640x480 MJPG, phones and printouts"
    )
    north = GateProcess(NORTH, north_env, videos[NORTH], run.work / "north.log")
    south = GateProcess(SOUTH, south_env, videos[SOUTH], run.work / "south.log")
    run.say(f"{NORTH}: `gate run --source {videos[NORTH].name}` (online)")
    play(run, north, north_scans, north_s)
    synced = wait_stored(run, NORTH, len(north.decisions), 20)
    checks.expect(synced, f"{NORTH} pushed its check-ins while online")
    run.say(f"{NORTH}: {len(north.decisions)} decisions; syncd holds {stored_by(run, NORTH)}")
    proxy.cut()
    cut_at = time.monotonic()
    run.say(f"{SOUTH}: network CUT (the proxy between the gate and syncd refuses connections)")
    run.say(f"{SOUTH}: `gate run --source {videos[SOUTH].name}` (offline)")
    play(run, south, south_scans, south_s)
    offline = stored_by(run, SOUTH)
    checks.expect(offline == 0, f"{SOUTH} decided offline (syncd held {offline} of its scans)")
    run.say(f"{SOUTH}: {len(south.decisions)} decisions offline; syncd holds {offline} of them")
    time.sleep(1.0)
    proxy.restore()
    back = time.monotonic()
    run.say(
        f"{SOUTH}: network RESTORED after {back - cut_at:.1f} s; the gate retries with backoff"
        " and drains its journal"
    )
    drained = wait_stored(run, SOUTH, len(south.decisions), 30)
    checks.expect(drained, f"{SOUTH} drained its journal after the outage")
    run.say(
        f"{SOUTH}: syncd holds {stored_by(run, SOUTH)} of its check-ins,"
        f" {time.monotonic() - back:.1f} s after the network came back"
    )
    for gate in (north, south):
        code = gate.finish()
        checks.expect(code == 0, f"{gate.name} stopped cleanly (exit {code})")
    return {NORTH: north, SOUTH: south}, {NORTH: north_scans, SOUTH: south_scans}


# -- 6. the summary ---------------------------------------------------------------------------
def summary(run: Run, gates: dict[str, GateProcess], scans: Scripts) -> Checks:
    checks = Checks()
    print("\nDecisions, as each gate printed them after committing them to its journal")
    for name, gate in gates.items():
        print()
        print("\n".join(decision_table(name, scans[name], gate.decisions, checks)))
    print("  latency: from the decoded code to the committed decision, measured by the gate")
    stats = run.api(f"/api/v1/events/{run.event_id}/stats")
    conflicts = run.api(f"/api/v1/events/{run.event_id}/conflicts")["conflicts"]
    decisions = {name: g.decisions for name, g in gates.items()}
    tap = Tap(run.args.amqp_url, run.env["SYNCD_AMQP_EXCHANGE"])
    deliveries = Deliveries()
    tap.collect(deliveries, decisions_delivered(decisions, stats["conflicts"]), within=20)
    print()
    print("\n".join(syncd_lines(stats, conflicts)))
    print()
    print("\n".join(exchange_lines(tap.exchange, deliveries)))
    check_totals(decisions, stats, deliveries, checks)
    shared = run.tickets["DEMO-0003"]["ticket_id"]
    found = [c for c in conflicts if str(c["ticket_id"]) == shared and c["gate_name"] == SOUTH]
    checks.expect(
        bool(found) and found[0]["entry_gate_name"] == NORTH,
        f"the conflict was found: ticket {shared} entered at {NORTH}, admitted again at {SOUTH}",
    )
    return checks


def demo(run: Run) -> int:
    syncd = start_services(run)
    organise(run, syncd)
    checks = Checks()
    gates, scans = doors(run, syncd, checks)
    final = summary(run, gates, scans)
    final.results[:0] = checks.results
    print()
    print("Checks")
    print("\n".join(final.lines()))
    return 0 if final.ok else 1


@contextlib.contextmanager
def work_dir(keep: bool) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="tessera-demo-"))
    try:
        yield path
    finally:
        if keep:
            print(f"kept {path} (videos, gate databases, logs)")
        else:
            shutil.rmtree(path, ignore_errors=True)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--database-url",
        default=PG_URL,
        help="Postgres server to create the throwaway database on (default:"
        " TESSERA_TEST_DATABASE_URL or %(default)s)",
    )
    parser.add_argument(
        "--amqp-url",
        default=AMQP_URL,
        help="RabbitMQ (default: TESSERA_TEST_AMQP_URL or %(default)s)",
    )
    parser.add_argument("--tickets", type=int, default=1000, help="attendees to push (>= 20)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder at the end")
    parser.add_argument("-q", "--quiet", action="store_true", help="hide the commands it runs")
    args = parser.parse_args()
    if args.tickets < 20:
        parser.error("--tickets must be at least 20")
    return args


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    args = parse_args()
    signal.signal(signal.SIGTERM, _terminate)
    print("Tessera demo: syncd, two gates, a camera video, an outage, sync and fan-out\n")
    started = time.monotonic()
    code = 1
    try:
        with contextlib.ExitStack() as stack:
            work = stack.enter_context(work_dir(args.keep))
            run = Run(args, stack, started, work)
            try:
                code = demo(run)
            except DemoError as exc:
                print(f"\ndemo failed: {exc}", file=sys.stderr)
            print("\ncleaning up: gates, syncd, proxy, exchange and queues, database, work folder")
    except KeyboardInterrupt:
        print("\ninterrupted; cleaned up", file=sys.stderr)
        return 130
    verdict = "all checks passed" if code == 0 else "SOME CHECKS FAILED"
    print(f"demo finished in {time.monotonic() - started:.1f} s: {verdict}")
    return code


if __name__ == "__main__":
    sys.exit(main())
