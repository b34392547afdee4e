"""``syncd``: the server and its admin commands."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import asyncpg
import click
from pydantic import ValidationError

from shared.errors import ConfigError
from syncd import migrate as schema
from syncd.settings import SyncdSettings
from syncd.vault import new_master_key

T = TypeVar("T")


def _settings() -> SyncdSettings:
    try:
        return SyncdSettings()
    except ValidationError as exc:
        raise click.ClickException(f"bad SYNCD_* setting: {exc}") from None


def _run(work: Callable[[asyncpg.Connection], Awaitable[T]], wait: float = 0.0) -> T:
    """Run ``work`` with one database connection; errors become clean CLI messages. ``wait``:
    seconds to keep trying while Postgres is not (yet) accepting connections."""

    async def main() -> T:
        url = _settings().database_url.get_secret_value()
        deadline = time.monotonic() + wait
        while True:
            try:
                conn = await asyncpg.connect(url, timeout=10)
                break
            except (OSError, asyncpg.PostgresError) as exc:  # TimeoutError is an OSError
                if time.monotonic() >= deadline or not _starting_up(exc):
                    reason = str(exc) or type(exc).__name__  # a timeout has no message
                    raise ConfigError(f"cannot connect to Postgres: {reason}") from exc
                click.echo(f"waiting for Postgres: {exc}", err=True)
                await asyncio.sleep(1.0)
        try:
            return await work(conn)
        finally:
            await conn.close()

    try:
        return asyncio.run(main())
    except (ConfigError, asyncpg.PostgresError) as exc:
        raise click.ClickException(str(exc)) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Tessera syncd: events, keys, attendee lists, gate sync and check-in fan-out.

    Settings come from SYNCD_* environment variables (SYNCD_DATABASE_URL, SYNCD_AMQP_URL,
    SYNCD_HOST, SYNCD_PORT, SYNCD_MASTER_KEY, ...).
    """


def _starting_up(exc: BaseException) -> bool:
    """Postgres not there yet (refused, unreachable, starting, full): worth waiting for; a wrong
    password or database name is not."""
    if isinstance(exc, OSError):
        return True
    return isinstance(exc, (asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError))


@cli.command()
@click.option(
    "--wait",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Seconds to wait for Postgres to accept connections (a container started beside it).",
)
def migrate(wait: float) -> None:
    """Apply pending database migrations (safe to run on every deploy)."""
    applied, rerun = _run(schema.migrate_all, wait)
    for m in applied:
        click.echo(f"applied {m.label}")
    for r in rerun:
        click.echo(f"applied repeatable {r.name}")
    if not applied and not rerun:
        click.echo("schema is up to date")
    else:
        click.echo(f"{len(applied)} migration(s) applied, {len(rerun)} repeatable script(s)")


@cli.command()
@click.option("--host", default=None, help="Override SYNCD_HOST.")
@click.option("--port", type=int, default=None, help="Override SYNCD_PORT.")
@click.option("--check-config", is_flag=True, help="Check settings and schema, then exit.")
@click.option(
    "--workers",
    type=click.IntRange(1, 256),
    default=None,
    help="Processes serving the port together, one per core (overrides SYNCD_WORKERS).",
)
@click.option("--reuse-port", is_flag=True, hidden=True, help="Share the port (a worker).")
def serve(
    host: str | None, port: int | None, check_config: bool, workers: int | None, reuse_port: bool
) -> None:
    """Run the HTTP service (with --workers N, N processes on one port, SO_REUSEPORT)."""
    from syncd.app import create_app
    from syncd.web.logs import register_secret, setup_logging
    from syncd.web.server import serve as serve_app
    from syncd.web.workers import supervise, worker_command

    settings = _settings()
    updates: dict[str, Any] = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    settings = settings.model_copy(update=updates)
    count = workers if workers is not None else settings.workers
    if count > 1 and settings.port == 0:
        raise click.ClickException("--workers needs a fixed port (SYNCD_PORT), not 0")
    try:
        app = create_app(settings)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    behind = _run(schema.schema_behind)
    if behind:
        raise click.ClickException("database schema is behind; run: syncd migrate")
    if check_config:
        click.echo("configuration OK")
        return
    setup_logging(settings.log_level)
    if count > 1:
        raise SystemExit(supervise(count, worker_command(settings.host, settings.port)))
    register_secret(settings.master_key.get_secret_value() if settings.master_key else None)
    for url in (settings.database_url, settings.amqp_url):
        register_secret(_password(url.get_secret_value()))
    asyncio.run(serve_app(app, settings.host, settings.port, reuse_port=reuse_port))


def _password(url: str) -> str | None:
    """The password in a ``scheme://user:password@host`` URL (to keep it out of the logs)."""
    return urlsplit(url).password if "://" in url else None


@cli.command("create-org")
@click.argument("name")
def create_org(name: str) -> None:
    """Create an organisation (tenant) and print its id."""

    async def work(conn: asyncpg.Connection) -> int:
        return int(
            await conn.fetchval("INSERT INTO orgs (name) VALUES ($1) RETURNING org_id", name)
        )

    try:
        org_id = _run(work)
    except click.ClickException as exc:
        raise click.ClickException(f"cannot create organisation: {exc.message}") from None
    click.echo(f"org_id {org_id}")


@cli.command("create-token")
@click.option("--org", "org", required=True, help="Organisation id or name.")
@click.option(
    "--role",
    type=click.Choice(["admin", "organiser", "viewer"]),
    default="admin",
    show_default=True,
)
@click.option("--name", default="cli", show_default=True, help="A label for the token.")
def create_token(org: str, role: str, name: str) -> None:
    """Create an API token and print it. It is shown only this once."""
    from syncd.api.tokens import insert_token

    async def work(conn: asyncpg.Connection) -> tuple[int, str]:
        org_id = await conn.fetchval(
            "SELECT org_id FROM orgs WHERE name = $1 OR org_id::text = $1", org
        )
        if org_id is None:
            raise ConfigError(f"no organisation {org!r} (syncd create-org NAME)")
        return await insert_token(conn, org_id, name, role)

    token_id, token = _run(work)
    click.echo(token)
    click.echo(
        f"token_id {token_id}, role {role}; store it now, it cannot be shown again", err=True
    )


@cli.command("gen-master-key")
def gen_master_key() -> None:
    """Print a new random master key for SYNCD_MASTER_KEY."""
    click.echo(new_master_key())


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
