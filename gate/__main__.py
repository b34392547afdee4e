"""``gate``: the gate daemon and its tools."""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Tessera gate: offline-first ticket check-in at a venue door.

    Settings come from GATE_* environment variables (see `gate run --help`).
    """


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
