"""The commands about the doors: ``tessera gate ...`` (create, code, revoke, list), ``tessera
conflicts``, ``tessera stats`` and ``tessera watch``."""

from __future__ import annotations

import json
import time
from typing import Any

import click

from tessera_cli.watch import WatchConfig, describe, run


def register(cli: click.Group, group_cls: type[click.Group], api: Any, out: Any) -> None:
    """Add the gate-sync commands to the ``tessera`` group (``api()`` opens the client)."""

    @cli.group(cls=group_cls)
    def gate() -> None:
        """Create, list and revoke an event's gates."""

    @gate.command("create")
    @click.argument("event_id", type=int)
    @click.argument("name")
    @click.option("--zone", default="", help="Zone name the gate stands at.")
    def gate_create(event_id: int, name: str, zone: str) -> None:
        """Create a gate and print its one-time enrolment code (for `gate enroll --code`)."""
        with api() as client:
            g = client.json(
                "POST", f"/api/v1/events/{event_id}/gates", json={"name": name, "zone": zone}
            )
        click.echo(g["code"])
        click.echo(
            f"gate_id {g['gate_id']}; the code works once, until {g['code_expires_at']}", err=True
        )

    @gate.command("list")
    @click.argument("event_id", type=int)
    def gate_list(event_id: int) -> None:
        """List gates: id, name, zone, state, acknowledged seq, clock skew, last push, last
        pre-doors drill (green, amber or RED with the failing items)."""
        with api() as client:
            gates = client.json("GET", f"/api/v1/events/{event_id}/gates")["gates"]
        for g in gates:
            skew = f"{g['skew']:+.1f}s" if g["skew"] is not None else "-"
            click.echo(
                f"{g['gate_id']}\t{g['name']}\t{g['zone'] or '-'}\t{g['state']}\t"
                f"seq {g['acked_seq']}\tskew {skew}\t{g['last_push_at'] or 'never'}\t"
                f"{_drill(g.get('last_drill'))}"
            )

    @gate.command("code")
    @click.argument("event_id", type=int)
    @click.argument("gate_id", type=int)
    def gate_code(event_id: int, gate_id: int) -> None:
        """Print a new one-time enrolment code for a gate (e.g. a replaced device)."""
        with api() as client:
            g = client.json("POST", f"/api/v1/events/{event_id}/gates/{gate_id}/code")
        click.echo(g["code"])

    @gate.command("revoke")
    @click.argument("event_id", type=int)
    @click.argument("gate_id", type=int)
    def gate_revoke(event_id: int, gate_id: int) -> None:
        """Revoke a gate's credential; it keeps scanning offline but cannot sync."""
        with api() as client:
            client.json("DELETE", f"/api/v1/events/{event_id}/gates/{gate_id}")
        click.echo(f"revoked gate {gate_id}")

    @cli.command()
    @click.argument("event_id", type=int)
    @click.option("--limit", type=click.IntRange(1, 10000), default=1000)
    def conflicts(event_id: int, limit: int) -> None:
        """List admissions flagged as conflicts (admitted again while already inside)."""
        with api() as client:
            rows = client.json(
                "GET", f"/api/v1/events/{event_id}/conflicts", params={"limit": str(limit)}
            )["conflicts"]
        for c in rows:
            click.echo(
                f"ticket {c['ticket_id']}\t{_when(c['at'])} at {c['gate_name']}\t"
                f"entry {_when(c['entry_at'])} at {c['entry_gate_name'] or '?'}"
            )
        click.echo(f"{len(rows)} conflict(s)", err=True)

    @cli.command()
    @click.argument("event_id", type=int)
    @click.option("--json", "as_json", is_flag=True, help="Print the raw JSON.")
    def stats(event_id: int, as_json: bool) -> None:
        """Live figures: admitted, inside, per gate/zone/category, scans per minute, denials."""
        with api() as client:
            s = client.json("GET", f"/api/v1/events/{event_id}/stats")
        if as_json:
            out(s)
            return
        for line in _stats_lines(s):
            click.echo(line)

    @cli.command()
    @click.option(
        "--amqp-url",
        envvar="TESSERA_CLI_AMQP_URL",
        default="amqp://guest:guest@127.0.0.1:5672/",
        show_default=True,
        help="RabbitMQ URL (env TESSERA_CLI_AMQP_URL).",
    )
    @click.option(
        "--exchange",
        envvar="TESSERA_CLI_AMQP_EXCHANGE",
        default="tessera",
        show_default=True,
        help="syncd's exchange (SYNCD_AMQP_EXCHANGE).",
    )
    @click.option(
        "--key",
        "keys",
        multiple=True,
        default=("#",),
        show_default=True,
        help="Routing-key pattern; repeat for several (e.g. checkin.*).",
    )
    @click.option(
        "--queue", default="", help="Durable queue name (default: a private, temporary queue)."
    )
    @click.option("--json", "as_json", is_flag=True, help="Print each message as a JSON line.")
    @click.option("--limit", type=int, default=0, help="Stop after this many messages.")
    def watch(
        amqp_url: str, exchange: str, keys: tuple[str, ...], queue: str, as_json: bool, limit: int
    ) -> None:
        """Print check-in events live from RabbitMQ (an example consumer; dedupes by message_id)."""

        def emit(message_id: str, key: str, body: dict[str, Any]) -> None:
            if as_json:
                click.echo(json.dumps({"message_id": message_id, "routing_key": key, **body}))
            else:
                click.echo(
                    f"{time.strftime('%H:%M:%S')} #{message_id} {key}: {describe(key, body)}"
                )

        seen = run(WatchConfig(amqp_url, exchange, keys, queue, limit=limit), emit)
        if seen.duplicates:
            click.echo(f"{seen.duplicates} duplicate(s) skipped", err=True)


def _drill(d: dict[str, Any] | None) -> str:
    """'drill green 2026-06-01T17:02:11', 'drill RED ... (camera, syncd)' or 'never drilled'."""
    if not d:
        return "never drilled"
    result = d["result"].upper() if d["result"] == "red" else d["result"]
    names = d["failing"] or d["warning"]
    return f"drill {result} {d['at'][:19]}" + (f" ({', '.join(names)})" if names else "")


def _when(at: float | None) -> str:
    return time.strftime("%H:%M:%S", time.localtime(at)) if at else "?"


def _stats_lines(s: dict[str, Any]) -> list[str]:
    lines = [
        f"admitted {s['admitted']}  inside {s['inside']}  exits {s['exits']}  "
        f"denied {s['denied']}  conflicts {s['conflicts']}",
        f"annulled {s.get('annulled', 0)}  passed {s.get('passed', 0)}  "
        f"tailgates {s.get('tailgates', 0)}",
        "gates:",
    ]
    lines += [
        f"  {g['name']:<20} in {g['admitted']:>7}  out {g['exits']:>7}  denied {g['denied']:>6}"
        f"  inside {g['inside']:>7}  annulled {g.get('annulled', 0):>4}"
        f"  passed {g.get('passed', 0):>7}  tailgates {g.get('tailgates', 0):>4}"
        f"  last push {g['last_push_at'] or 'never'}"
        f"  {_drill(g.get('last_drill'))}"
        for g in s["gates"]
    ]
    if "drills" in s:
        lines.append("drills: " + "  ".join(f"{k} {n}" for k, n in s["drills"].items()))
    if s.get("checked_out_at"):
        lines.append(f"inside counts entries since the check-out at {_when(s['checked_out_at'])}")
    lines.append("zones:")
    lines += [
        f"  {z or '(any)':<20} in {v['admitted']:>7}  inside {v['inside']:>7}"
        for z, v in s["zones"].items()
    ]
    lines.append("categories:")
    lines += [f"  {c or '(none)':<20} inside {v['inside']:>7}" for c, v in s["categories"].items()]
    lines.append("denials: " + (", ".join(f"{r} {n}" for r, n in s["denials"].items()) or "none"))
    recent = s["per_minute"][-10:]
    lines.append("scans/min: " + (" ".join(str(m["scans"]) for m in recent) or "none"))
    return lines
