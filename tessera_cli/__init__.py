"""``tessera``: the organisers' command-line client for syncd."""
