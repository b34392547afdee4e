"""``gate``: the gate daemon and its tools."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import click

from gate import commands
from gate.logs import configure
from gate.settings import SETTINGS_HELP, GateSettings, load_settings
from gate.sync.client import SyncError
from shared.errors import BundleError, ConfigError

T = TypeVar("T")


def _settings() -> GateSettings:
    try:
        settings = load_settings()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    configure(settings.log_level)
    return settings


def _run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(coro)
    except (BundleError, ConfigError, ValueError, SyncError) as exc:
        raise click.ClickException(str(exc)) from exc


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Tessera gate: offline-first ticket check-in at a venue door.

    Settings come from GATE_* environment variables (see `gate run --help`).
    """


@cli.command(epilog="Settings (environment):\n\n" + SETTINGS_HELP.replace("\n", "\n\n"))
@click.option(
    "--source",
    "sources",
    multiple=True,
    default=["stdin"],
    show_default=True,
    help="Input source; repeat for several. stdin: one code per line (USB keyboard-wedge); "
    "serial:/dev/ttyACM0[?baud=9600] a USB-CDC/serial scanner (GATE_SERIAL_*); "
    "evdev:/dev/input/by-id/...-event-kbd[?layout=de] a HID scanner, grabbed (GATE_EVDEV_*); "
    "camera (GATE_CAMERA_SOURCE), a device (0, /dev/video0), a video file, a stream URL or a "
    "folder of images; a file or folder is replayed once through the camera path.",
)
@click.option("--check-config", is_flag=True, help="Check settings and database, then exit.")
def run(sources: tuple[str, ...], check_config: bool) -> None:
    """Scan and decide: one JSON line per decision on stdout, JSON logs on stderr.

    Each line has ticket_id, decision (admit/deny), reason, message, latency_ms, seq and more.
    A decision is printed only after it is committed to the journal.
    """
    settings = _settings()
    from gate.app import NAMED_SOURCES, looks_like_camera

    devices = _device_sources(settings, sources)
    unknown = [s for s in sources if s not in NAMED_SOURCES and s not in devices]
    unknown = [s for s in unknown if not looks_like_camera(s)]
    if unknown:
        raise click.BadParameter(
            f"unknown source {unknown}; known: {sorted(NAMED_SOURCES)}, serial:PATH, evdev:PATH"
        )
    if check_config:
        from gate.app import check_list

        _run(check_list(settings))
        report = _run(commands.check_config(settings))
        click.echo(json.dumps(report, indent=2))
        sys.exit(0 if report["ok"] else 2)
    if "stdin" in sources:
        _refuse_dead_stdin()
    _run(_serve(settings, sources, devices))


def _refuse_dead_stdin() -> None:
    """``--source stdin`` needs a terminal, pipe or file on standard input.

    Under systemd standard input is /dev/null (or closed): the source would end at once, the
    gate would exit 0 and ``Restart=always`` would start it again forever. Refuse instead
    (exit 2; the unit does not restart on it) and say what serves a scanner there.
    """
    try:
        info = os.fstat(0)
    except OSError:
        dead = True
    else:
        dead = stat.S_ISCHR(info.st_mode) and not os.isatty(0)
    if dead:
        raise click.UsageError(
            "--source stdin: standard input is no terminal, pipe or file (under systemd it is "
            "/dev/null); for a scanner use --source serial:PATH, evdev:PATH or kiosk (the "
            "kiosk page takes keyboard-wedge scans)"
        )


def _device_sources(settings: GateSettings, specs: tuple[str, ...]) -> dict[str, Any]:
    """The serial and evdev sources, built now so a bad option stops the start."""
    from gate.app import device_source

    try:
        built = {spec: device_source(spec, settings) for spec in specs}
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="--source") from exc
    return {spec: source for spec, source in built.items() if source is not None}


async def _serve(settings: GateSettings, sources: tuple[str, ...], devices: dict[str, Any]) -> None:
    from gate.app import gate_for

    app = gate_for(settings, sources, devices)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, app.stop)
    await app.run()


@cli.command("import-list")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def import_list(file: Path, quiet: bool) -> None:
    """Load a signed list bundle (keys and tickets) from FILE, e.g. from a USB stick.

    The bundle must be signed by a key this gate trusts (`gate trust`). A refused or broken
    bundle changes nothing: the old list stays in force.
    """
    result = _run(commands.import_list(_settings(), file, progress=not quiet))
    click.echo(
        f"Loaded {result.tickets:,} tickets for event {result.event_id} ({result.event_name}),"
        f" signed by {result.signer}, in {result.seconds:.1f} s"
    )


@cli.command(context_settings={"ignore_unknown_options": True, "help_option_names": ["--help"]})
@click.argument("public_key", required=False)
@click.option("--list", "list_keys", is_flag=True, help="List the keys this gate knows.")
def trust(public_key: str | None, list_keys: bool) -> None:
    """Pin PUBLIC_KEY (raw Ed25519, base64url) as trusted to sign list bundles."""
    settings = _settings()
    if public_key:
        kid = _run(commands.trust(settings, public_key))
        click.echo(f"Trusted key {kid}")
    elif not list_keys:
        raise click.UsageError("give a PUBLIC_KEY or --list")
    if list_keys:
        for line in _run(commands.list_keys(settings)):
            click.echo(line)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(as_json: bool) -> None:
    """Event, list size and age, journal, sync (online/offline, last sync, backlog, skew)."""
    stats = _run(commands.status(_settings()))
    click.echo(json.dumps(stats, indent=2) if as_json else commands.format_status(stats))


@cli.command()
@click.option("--server", required=True, help="syncd base URL, e.g. https://syncd.example")
@click.option("--code", required=True, help="One-time enrolment code from the organiser.")
@click.option("--device", default="", help="Name this device for the organiser (default: host).")
def enroll(server: str, code: str, device: str) -> None:
    """Enrol this gate with syncd: trade CODE for the gate's credential and load the list.

    The credential goes to GATE_CREDENTIAL_FILE (mode 0600; default DATA_DIR/credential) and
    is never printed. The event's keys are pinned, the snapshot and presence loaded; `gate run`
    then syncs on its own (a running gate that was revoked resumes within seconds).

    A gate syncd revoked comes back as a new gate: the scans syncd never got from it are sent
    as the new gate's, the rest of its old journal is kept on the gate (`gate status`).
    """
    result = _run(commands.enroll(_settings(), server, code, device))
    click.echo(
        f"Enrolled as {result['gate_name']} (gate #{result['gate_id']}) for event"
        f" {result['event_id']}: {result['tickets']:,} tickets, keys {', '.join(result['keys'])};"
        f" credential in {result['credential_file']}"
    )
    if carried := result["carried"]:
        from gate.sync.status import format_carried

        click.echo(format_carried(carried))


class _QueryError(click.ClickException):
    """A ticket number or search text that cannot be answered: exit 2, like a usage error."""

    exit_code = 2


def _run_query(coro: Coroutine[Any, Any, T]) -> T:
    from gate.store.search import SearchError

    try:
        return _run(coro)
    except click.ClickException as exc:
        if isinstance(exc.__cause__, SearchError):
            raise _QueryError(exc.message) from exc.__cause__
        raise


@cli.command()
@click.argument("query")
@click.option(
    "--limit", default=20, show_default=True, type=click.IntRange(1, 1000), help="Most results."
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def lookup(query: str, limit: int, as_json: bool) -> None:
    """Find tickets by ticket number or holder name: part of it, any case, accents optional
    ("muller" finds "Müller")."""
    rows = _run_query(commands.lookup(_settings(), query, limit))
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not rows:
        click.echo("No ticket found")
    for row in rows:
        click.echo(commands.format_match(row))


class _TicketNumber(click.ParamType):
    """A ticket number as door staff type it: ASCII digits only. ``int()`` alone would take
    "1_0" as ticket 10 and "١٢٣" as 123, admitting a ticket nobody typed; the range is checked
    where the list is (exit 2 too)."""

    name = "ticket number"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        text = str(value).strip()
        if not (text.isascii() and text.isdigit()):
            self.fail("a ticket number is digits 0-9 only", param, ctx)
        return int(text)


@cli.command()
@click.argument("ticket_id", type=_TicketNumber())
@click.option("--event", "event_id", type=int, help="Event, when the ticket number is ambiguous.")
@click.option("--direction", type=click.Choice(["in", "out"]), help="Default: the gate's.")
@click.option(
    "--group/--no-group",
    default=None,
    help="Let the rest of the ticket's group in too, each ticket checked on its own"
    " (default: as GATE_GROUP_ADMIT says).",
)
def admit(ticket_id: int, event_id: int | None, direction: str | None, group: bool | None) -> None:
    """Admit TICKET_ID by hand (unreadable code); recorded as a manual check-in.

    Every rule but the signature applies, as for a scan: an unknown, expired, not yet valid,
    revoked, blocked, wrong-zone or already admitted ticket is refused (exit 1). With --group,
    an admitted ticket's group follows it: each member is decided and journaled on its own
    (via "group"), and the output's "group" sums it up ("Group of 4: 3 admitted, ...").
    """
    decision = _run_query(commands.admit(_settings(), ticket_id, event_id, direction, group))
    click.echo(json.dumps(decision.to_json(), ensure_ascii=False))
    sys.exit(0 if decision.admitted else 1)


@cli.command()
@click.argument("seq", type=click.IntRange(1, 2**63 - 1), required=False)
@click.option(
    "--last", is_flag=True, help="The latest scan of this gate (a group scan: all its members)."
)
@click.option(
    "--group", "whole_scan", is_flag=True, help="With SEQ: every admission of its group scan."
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def annul(seq: int | None, last: bool, whole_scan: bool, as_json: bool) -> None:
    """Undo admission SEQ (its number in the journal, as `gate status` and the JSON decision
    show it), or the latest scan's with --last: the wrong person went through, or the turnstile
    did not turn. The ticket goes back to where it was (outside after an entry) at this gate, at
    syncd and at every gate of the event. Refused (exit 1) once the admission is older than
    GATE_ANNUL_WINDOW, already annulled, or the ticket has moved on since.

    After a group scan, --last (and SEQ --group) undo every member it admitted, each with its
    own journal row; a member that has moved on since stays as it is (the message counts it).
    """
    from gate.door.annul import AnnulRefused

    if (seq is None) == (not last):
        raise click.UsageError("give the admission's SEQ or --last (one of them)")
    try:
        done = _run(commands.annul(_settings(), seq, whole_scan or last))
    except AnnulRefused as exc:
        if as_json:
            click.echo(json.dumps({"annulled": False, "error": str(exc)}))
        else:
            click.echo(f"Not annulled: {exc}", err=True)
        sys.exit(1)
    click.echo(json.dumps(done.to_json(), ensure_ascii=False) if as_json else done.message)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option(
    "--camera/--no-camera",
    default=None,
    help="Drill the camera path, or skip it. Default: when GATE_CAMERA_SOURCE is set.",
)
@click.option(
    "--no-hooks", is_flag=True, help="Do not run the admit/deny hooks (a relay may open)."
)
def drill(as_json: bool, camera: bool | None, no_hooks: bool) -> None:
    """Pre-doors drill: check this gate, print a green/amber/red board, exit 1 on red.

    Checks the list (loaded, signed by a trusted key, its age), the pinned keys, a rendered
    test card through the camera path (never journaled) and the live camera, syncd (reachable,
    clock skew), the journal (drained), free disk for GATE_DRILL_HOURS of scans, the peers and
    the admit/deny hooks (run with TESSERA_DRILL=1). Each check is bounded by
    GATE_DRILL_TIMEOUT. An enrolled gate reports the board to syncd (`tessera gate list` shows
    it); a report that fails is shown, not fatal. Runs beside `gate run` or on its own.
    """
    settings = _settings()
    import logging

    from gate.drill.board import render
    from gate.drill.run import drill_gate

    logging.getLogger("gate.camera").setLevel(logging.ERROR)  # the test card's replay ends
    board = _run(drill_gate(settings, camera=camera, hooks=not no_hooks))
    if as_json:
        click.echo(json.dumps(board.as_json(), indent=2, ensure_ascii=False))
    else:
        colour = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
        click.echo(render(board), color=colour)
    sys.exit(board.exit_code)


@cli.command("staff-pin")
@click.password_option("--pin", prompt="Staff PIN", help="The PIN (prompted, hidden, twice).")
def staff_pin(pin: str) -> None:
    """Hash a staff PIN for the kiosk page; prints the GATE_STAFF_PIN line for gate.env.

    Only the salted scrypt hash is stored; the PIN itself is never written anywhere.
    """
    from gate.feedback.staff import hash_pin

    try:
        click.echo(f"GATE_STAFF_PIN={hash_pin(pin)}")
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="PIN") from None


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
