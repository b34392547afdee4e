"""``syncd``: the server and its admin commands."""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Tessera syncd: events, keys, attendee lists, gate sync and check-in fan-out.

    Settings come from SYNCD_* environment variables.
    """


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
