"""The summary scripts/demo prints, and the checks that decide its exit code.

Each check compares two independent accounts of the same scans: what a gate printed after its
commit, what syncd stored, what the exchange delivered. A check that fails is printed with both
numbers, and the demo exits 1.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tessera_dev.demo.scenes import Scan
from tessera_dev.demo.services import Deliveries


@dataclass
class Checks:
    results: list[tuple[bool, str]] = field(default_factory=list)

    def expect(self, ok: bool, text: str) -> None:
        self.results.append((ok, text))

    def equal(self, what: str, left: tuple[str, object], right: tuple[str, object]) -> None:
        ok = left[1] == right[1]
        self.expect(ok, f"{what}: {left[0]} {left[1]} {'==' if ok else '!='} {right[0]} {right[1]}")

    @property
    def ok(self) -> bool:
        return all(ok for ok, _ in self.results)

    def lines(self) -> list[str]:
        return [f"  [{'ok' if ok else 'FAIL'}] {text}" for ok, text in self.results]


def _expected(scan: Scan) -> str:
    return "ADMIT" if scan.admit else f"DENY {scan.reason}"


def _got(decision: dict[str, Any] | None) -> str:
    if decision is None:
        return "(no decision)"
    word = str(decision["decision"]).upper()
    return word if word == "ADMIT" else f"{word} {decision['reason']}"


def decision_table(
    gate: str, scans: Sequence[Scan], decisions: Sequence[dict[str, Any]], checks: Checks
) -> list[str]:
    """One row per scan shown to ``gate``: what it decided, why, and how fast."""
    lines = [
        f"{gate}",
        f"  {'#':>2}  {'ticket shown':<24} {'decision':<8} {'reason: message for staff':<60}"
        f" {'latency':>9}",
    ]
    for i in range(max(len(scans), len(decisions))):
        scan = scans[i] if i < len(scans) else None
        got = decisions[i] if i < len(decisions) else None
        label = scan.label if scan else "(not in the script)"
        word = str(got["decision"]).upper() if got else "-"
        why = f"{got['reason'] or 'ok'}: {got['message']}" if got else "(no decision)"
        latency = f"{got['latency_ms']:.1f} ms" if got else "-"
        lines.append(f"  {i + 1:>2}  {label:<24} {word:<8} {why[:60]:<60} {latency:>9}")
        if scan is not None and _got(got) != _expected(scan):
            lines.append(f"      expected {_expected(scan)}")
    same = [_got(d) for d in decisions] == [_expected(s) for s in scans]
    checks.expect(same, f"{gate} decided every scan as the script expects ({len(scans)} scans)")
    return lines


def syncd_lines(stats: dict[str, Any], conflicts: Sequence[dict[str, Any]]) -> list[str]:
    stored = stats["admitted"] + stats["exits"] + stats["denied"]
    lines = [
        "What syncd holds (Postgres)",
        f"  stored check-ins {stored}: admitted {stats['admitted']}, denied {stats['denied']},"
        f" inside now {stats['inside']}, conflicts {stats['conflicts']}",
    ]
    for g in stats["gates"]:
        lines.append(
            f"  {g['name']:<12} stored {g['admitted'] + g['exits'] + g['denied']:>3}"
            f"  (admitted {g['admitted']}, denied {g['denied']}, conflicts {g['conflicts']},"
            f" acknowledged seq {g['acked_seq']}, clock skew {g['skew'] or 0:+.2f} s)"
        )
    if stats["denials"]:
        denials = ", ".join(f"{r} {n}" for r, n in stats["denials"].items())
        lines.append(f"  denials by reason: {denials}")
    lines.append("Conflicts (admitted again while the gates were apart)")
    for c in conflicts:
        lines.append(
            f"  ticket {c['ticket_id']}: admitted at {c['gate_name']} (seq {c['seq']}) although it"
            f" had entered at {c['entry_gate_name'] or '?'}"
            f" {max(0.0, c['at'] - (c['entry_at'] or c['at'])):.1f} s earlier"
        )
    if not conflicts:
        lines.append("  none")
    return lines


def exchange_lines(exchange: str, deliveries: Deliveries) -> list[str]:
    lines = [f"What the exchange delivered (RabbitMQ topic exchange {exchange!r}, by routing key)"]
    for key, count in sorted(deliveries.by_key.items()):
        lines.append(f"  {key:<20} {count:>4}")
    if not deliveries.by_key:
        lines.append("  nothing")
    lines.append(f"  duplicates skipped by message_id: {deliveries.duplicates}")
    for key, body in deliveries.bodies:
        if key == "checkin.conflict":
            entry = body.get("entry") or {}
            lines.append(
                f"  {key}: ticket {body.get('ticket_id')} at {body.get('gate_name')},"
                f" already entered at {entry.get('gate_name')}"
            )
    return lines


def check_totals(
    gates: Mapping[str, Sequence[dict[str, Any]]],
    stats: dict[str, Any],
    deliveries: Deliveries,
    checks: Checks,
) -> None:
    """Gates, syncd and the exchange must tell the same story."""
    admitted = sum(d["decision"] == "admit" for ds in gates.values() for d in ds)
    denied = sum(d["decision"] == "deny" for ds in gates.values() for d in ds)
    per_gate = {g["name"]: g["admitted"] + g["exits"] + g["denied"] for g in stats["gates"]}
    for name, decisions in gates.items():
        checks.equal(
            f"{name} check-ins", ("printed by the gate", len(decisions)), ("stored", per_gate[name])
        )
    checks.equal("admissions", ("at the gates", admitted), ("in syncd", stats["admitted"]))
    checks.equal("denials", ("at the gates", denied), ("in syncd", stats["denied"]))
    keys = deliveries.by_key
    checks.equal(
        "checkin.performed", ("delivered", keys["checkin.performed"]), ("admitted", admitted)
    )
    checks.equal("checkin.invalid", ("delivered", keys["checkin.invalid"]), ("denied", denied))
    checks.equal(
        "checkin.conflict",
        ("delivered", keys["checkin.conflict"]),
        ("conflicts in syncd", stats["conflicts"]),
    )
    checks.expect(keys["tickets.updated"] >= 1, "tickets.updated delivered for the list changes")


def decisions_delivered(
    gates: Mapping[str, Sequence[dict[str, Any]]], stats_conflicts: int
) -> Callable[[Deliveries], bool]:
    """A predicate for Tap.collect: every decision and conflict has arrived."""
    admitted = sum(d["decision"] == "admit" for ds in gates.values() for d in ds)
    denied = sum(d["decision"] == "deny" for ds in gates.values() for d in ds)

    def done(deliveries: Deliveries) -> bool:
        keys = deliveries.by_key
        return (
            keys["checkin.performed"] >= admitted
            and keys["checkin.invalid"] >= denied
            and keys["checkin.conflict"] >= stats_conflicts
            and keys["tickets.updated"] >= 1
        )

    return done
