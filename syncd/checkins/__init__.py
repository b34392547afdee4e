"""Storing gate pushes: the group-commit ``Pusher`` and the ``tessera_store_push`` function it
calls (``store_push.sql``, a repeatable script that ``syncd migrate`` keeps current)."""
