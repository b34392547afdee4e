"""``tessera``: the organisers' command-line client."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
from tqdm import tqdm

from tessera_cli import door_commands
from tessera_cli.client import Api, ApiFailureError, CliError
from tessera_cli.settings import CliSettings

CHUNK = 1 << 16
TYPES = {"csv": "text/csv", "json": "application/json", "ndjson": "application/x-ndjson"}


def _api() -> Api:
    return Api(CliSettings())


def _out(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


class _Group(click.Group):
    """Turns ``CliError`` into a clean message and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ApiFailureError as exc:
            click.echo(f"error: {exc}", err=True)
            for p in exc.problems[:50]:
                where = f"row {p['row']}" if "row" in p else p.get("field", "")
                click.echo(f"  {where}, {p.get('column', '')}: {p['problem']}", err=True)
            ctx.exit(1)
        except CliError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Tessera organiser client: manage events, keys, attendee lists and gates on syncd.

    Settings come from TESSERA_CLI_* environment variables (server URL and API token).
    """


@cli.command()
def whoami() -> None:
    """Show the token's organisation and role."""
    with _api() as api:
        _out(api.json("GET", "/api/v1/whoami"))


@cli.group(cls=_Group)
def events() -> None:
    """Create, list, show and change events."""


@events.command("list")
def events_list() -> None:
    """List your organisation's events."""
    with _api() as api:
        for e in api.json("GET", "/api/v1/events")["events"]:
            click.echo(f"{e['event_id']}\t{e['name']}\t{e['starts_at'] or '-'}\t{e['venue']}")


def _capacity(values: tuple[str, ...]) -> dict[str, int]:
    """``--capacity ZONE=N`` (or ``N`` alone: the whole event) as the API's capacity map."""
    capacity: dict[str, int] = {}
    for value in values:
        zone, _, number = value.rpartition("=")
        if not number.strip().isdigit():
            raise click.BadParameter(
                f"{value!r}: use ZONE=N, or N for the whole event", param_hint="--capacity"
            )
        capacity[zone.strip() or "*"] = int(number)
    return capacity


def _event_fields(**kw: Any) -> dict[str, Any]:
    no_checkout = kw.pop("no_checkout", False)
    no_capacity = kw.pop("no_capacity", False)
    capacity = _capacity(kw.pop("capacity", ()))
    fields = {k: v for k, v in kw.items() if v not in (None, ())}
    if capacity or no_capacity:
        if capacity and no_capacity:
            raise click.UsageError("--capacity and --no-capacity exclude each other")
        fields["capacity"] = capacity
    if "zones" in fields:
        fields["zones"] = list(fields["zones"])
    if no_checkout:
        if "checkout_time" in fields:
            raise click.UsageError("--checkout-time and --no-checkout exclude each other")
        fields["checkout_time"] = None
    return fields


_EVENT_OPTIONS = [
    click.option("--venue"),
    click.option("--starts", "starts_at", help="ISO 8601 with offset"),
    click.option("--ends", "ends_at", help="ISO 8601 with offset"),
    click.option("--timezone", help="e.g. Europe/Berlin"),
    click.option("--zone", "zones", multiple=True, help="Zone name; repeat, in bit order."),
    click.option("--reentry", type=click.Choice(["never", "after_exit", "always"])),
    click.option(
        "--rotating/--no-rotating",
        default=None,
        help="Admit only holder-bound rotating codes from the wallet (static QR codes refused).",
    ),
    click.option(
        "--rotation-period",
        type=click.IntRange(2, 300),
        help="Seconds a rotating code lives (default 10).",
    ),
    click.option(
        "--checkout-time",
        metavar="HH:MM",
        help="Automatic check-out: everyone counts as outside at this local time every day"
        " (e.g. 04:00, in the event's time zone).",
    ),
    click.option(
        "--no-checkout", is_flag=True, help="Turn the automatic check-out off (the default)."
    ),
    click.option(
        "--capacity",
        multiple=True,
        metavar="ZONE=N",
        help="Most people inside a zone at once (N alone: the whole event); repeat. Replaces"
        " the event's capacities; the dashboard shows inside now against them.",
    ),
    click.option("--no-capacity", is_flag=True, help="Remove every capacity."),
]


def _with_event_options(f: Any) -> Any:
    for option in reversed(_EVENT_OPTIONS):
        f = option(f)
    return f


@events.command("create")
@click.argument("name")
@_with_event_options
def events_create(name: str, **kw: Any) -> None:
    """Create an event (syncd generates its signing key)."""
    with _api() as api:
        _out(api.json("POST", "/api/v1/events", json={"name": name, **_event_fields(**kw)}))


@events.command("update")
@click.argument("event_id", type=int)
@click.option("--name")
@_with_event_options
def events_update(event_id: int, **kw: Any) -> None:
    """Change an event's details (zones can be renamed or added)."""
    with _api() as api:
        _out(api.json("PATCH", f"/api/v1/events/{event_id}", json=_event_fields(**kw)))


@events.command("show")
@click.argument("event_id", type=int)
def events_show(event_id: int) -> None:
    """Show an event with its ticket counts."""
    with _api() as api:
        _out(api.json("GET", f"/api/v1/events/{event_id}"))


@cli.group(cls=_Group)
def keys() -> None:
    """List, rotate and retire an event's signing keys."""


@keys.command("list")
@click.argument("event_id", type=int)
def keys_list(event_id: int) -> None:
    """List public keys (private keys never leave syncd), one per line, tab-separated:
    kid, status (and "signer"), the raw Ed25519 public key in base64url.

    The public key is what `gate trust PUBLIC_KEY` pins on an offline gate before it loads a
    bundle saved with `tessera bundle`.
    """
    with _api() as api:
        for k in api.json("GET", f"/api/v1/events/{event_id}/keys")["keys"]:
            flag = " signer" if k["signer"] else ""
            click.echo(f"{k['kid']}\t{k['status']}{flag}\t{k['public_key']}")


@keys.command("rotate")
@click.argument("event_id", type=int)
def keys_rotate(event_id: int) -> None:
    """Make a new key the signer; old keys stay valid until retired."""
    with _api() as api:
        click.echo(api.json("POST", f"/api/v1/events/{event_id}/keys")["kid"])


@keys.command("retire")
@click.argument("event_id", type=int)
@click.argument("kid")
def keys_retire(event_id: int, kid: str) -> None:
    """Retire a key; its valid tickets are reissued under the signer."""
    with _api() as api:
        result = api.json("POST", f"/api/v1/events/{event_id}/keys/{kid}/retire")
        click.echo(f"retired {kid}; {result['reissued']} ticket(s) reissued")


def _file_chunks(path: Path, bar: tqdm) -> Iterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            bar.update(len(chunk))
            yield chunk


@cli.command()
@click.argument("event_id", type=int)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(sorted(TYPES)),
    default=None,
    help="Default: from the file name (.csv, .json, .ndjson/.jsonl).",
)
@click.option("--complete", is_flag=True, help="Revoke tickets missing from this list.")
@click.option("--dry-run", is_flag=True, help="Check and count only; change nothing.")
def push(event_id: int, file: Path, fmt: str | None, complete: bool, dry_run: bool) -> None:
    """Push an attendee list (CSV, JSON or NDJSON); applied whole or not at all."""
    fmt = fmt or {".json": "json", ".ndjson": "ndjson", ".jsonl": "ndjson"}.get(file.suffix, "csv")
    params = {"complete": "1" if complete else "0", "dry_run": "1" if dry_run else "0"}
    with (
        _api() as api,
        tqdm(
            total=file.stat().st_size, unit="B", unit_scale=True, desc="upload", file=sys.stderr
        ) as bar,
    ):
        result = api.upload(
            f"/api/v1/events/{event_id}/list", _file_chunks(file, bar), TYPES[fmt], params
        )
    _out(result)


@cli.group(cls=_Group)
def tickets() -> None:
    """List tickets; revoke, block, unblock, reissue; get QR codes."""


@tickets.command("list")
@click.argument("event_id", type=int)
@click.option("--ref", help="Only this external reference.")
@click.option("--status", type=click.Choice(["valid", "revoked", "blocked"]))
@click.option("--group", help="Only the tickets of this group (an order, a family).")
def tickets_list(event_id: int, ref: str | None, status: str | None, group: str | None) -> None:
    """List tickets as tab-separated lines (all pages): id, external ref, status, holder."""
    params: dict[str, str] = {"limit": "1000"}
    filters = (("external_ref", ref), ("status", status), ("group", group))
    params.update({k: v for k, v in filters if v})
    with _api() as api:
        while True:
            page = api.json("GET", f"/api/v1/events/{event_id}/tickets", params=params)
            for t in page["tickets"]:
                click.echo(
                    f"{t['ticket_id']}\t{t['external_ref']}\t{t['status']}\t{t['holder_name']}"
                )
            if page["next_after"] is None:
                break
            params["after"] = str(page["next_after"])


def _action(name: str, help_text: str) -> None:
    @tickets.command(name, help=help_text)
    @click.argument("event_id", type=int)
    @click.argument("ticket_id", type=int)
    def command(event_id: int, ticket_id: int) -> None:
        with _api() as api:
            t = api.json("POST", f"/api/v1/events/{event_id}/tickets/{ticket_id}/{name}")
            click.echo(f"{t['ticket_id']}\t{t['status']}\tnonce {t['nonce']}")


_action("revoke", "Revoke a ticket.")
_action("block", "Block a ticket (temporarily).")
_action("unblock", "Unblock a blocked ticket.")
_action("reissue", "Reissue a ticket: its old QR stops working.")


@tickets.command("show")
@click.argument("event_id", type=int)
@click.argument("ticket_id", type=int)
def tickets_show(event_id: int, ticket_id: int) -> None:
    """Show a ticket, with its wallet: link, claims, the phone that claimed it last."""
    with _api() as api:
        _out(api.json("GET", f"/api/v1/events/{event_id}/tickets/{ticket_id}"))


@tickets.command("wallet-link")
@click.argument("event_id", type=int)
@click.argument("ticket_id", type=int)
def tickets_wallet_link(event_id: int, ticket_id: int) -> None:
    """Print the ticket's wallet claim link for the holder's e-mail (shown once; a new link
    replaces the old). Opening it on a phone binds the ticket to that phone."""
    with _api() as api:
        link = api.json("POST", f"/api/v1/events/{event_id}/tickets/{ticket_id}/wallet-link")
    click.echo(link["url"])


@tickets.command("qr")
@click.argument("event_id", type=int)
@click.argument("ticket_id", type=int)
@click.option("--format", "fmt", type=click.Choice(["text", "png", "svg"]), default="text")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path))
def tickets_qr(event_id: int, ticket_id: int, fmt: str, output: Path | None) -> None:
    """Print the ticket's QR text, or save it as PNG/SVG."""
    if fmt != "text" and output is None:
        raise click.UsageError("--format png/svg needs -o FILE")
    with _api() as api:
        resp = api.request(
            "GET", f"/api/v1/events/{event_id}/tickets/{ticket_id}/qr", params={"format": fmt}
        )
    if output is None:
        click.echo(resp.text)
    else:
        output.write_bytes(resp.content)
        click.echo(f"wrote {output}")


def _download(path: str, output: Path, params: dict[str, str] | None = None) -> None:
    part = output.with_name(output.name + ".part")
    with (
        _api() as api,
        api.stream(path, params) as resp,
        part.open("wb") as f,
        tqdm(unit="B", unit_scale=True, desc="download", file=sys.stderr) as bar,
    ):
        for chunk in resp.iter_bytes():
            f.write(chunk)
            bar.update(len(chunk))
    part.replace(output)
    click.echo(f"wrote {output}")


@cli.command()
@click.argument("event_id", type=int)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path))
def export(event_id: int, output: Path) -> None:
    """Save all tickets with their QR text as CSV (for mail-merge)."""
    _download(f"/api/v1/events/{event_id}/export.csv", output)


@cli.command()
@click.argument("event_id", type=int)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--ref", help="Only this external reference.")
@click.option("--after", type=int, default=0, help="Continue after this ticket id.")
@click.option("--limit", type=click.IntRange(1, 500), default=100)
def sheet(event_id: int, output: Path, ref: str | None, after: int, limit: int) -> None:
    """Save a printable HTML sheet of tickets with QR codes."""
    params = {"after": str(after), "limit": str(limit), **({"external_ref": ref} if ref else {})}
    _download(f"/api/v1/events/{event_id}/sheet.html", output, params)


@cli.command()
@click.argument("event_id", type=int)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--names", is_flag=True, help="Include holder names (shown to door staff).")
def bundle(event_id: int, output: Path, names: bool) -> None:
    """Save the event's signed list bundle for `gate import-list FILE`."""
    _download(f"/api/v1/events/{event_id}/bundle", output, {"names": "1" if names else "0"})


@cli.group(cls=_Group)
def tokens() -> None:
    """Manage your organisation's API tokens (admin)."""


@tokens.command("list")
def tokens_list() -> None:
    """List tokens (never their text)."""
    with _api() as api:
        for t in api.json("GET", "/api/v1/tokens")["tokens"]:
            click.echo(
                f"{t['token_id']}\t{t['role']}\t{t['name']}\t"
                f"{'revoked' if t['revoked_at'] else 'active'}"
            )


@tokens.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(["admin", "organiser", "viewer"]), required=True)
def tokens_create(name: str, role: str) -> None:
    """Create a token and print it once."""
    with _api() as api:
        click.echo(api.json("POST", "/api/v1/tokens", json={"name": name, "role": role})["token"])


@tokens.command("revoke")
@click.argument("token_id", type=int)
def tokens_revoke(token_id: int) -> None:
    """Revoke a token."""
    with _api() as api:
        api.json("DELETE", f"/api/v1/tokens/{token_id}")
        click.echo(f"revoked {token_id}")


door_commands.register(cli, _Group, _api, _out)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
