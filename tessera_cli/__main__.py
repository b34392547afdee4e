"""``tessera``: the organisers' command-line client."""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Tessera organiser client: manage events, keys, attendee lists and gates on syncd.

    Settings come from TESSERA_CLI_* environment variables (server URL and API token).
    """


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
