"""The SQL behind ``syncd/api``: one module per resource, named like the handler module it serves.

Why a ``queries/`` package rather than ``<resource>_queries.py`` beside each handler: ``api/`` then
lists only handlers, every statement the HTTP API runs sits in one folder (one place to review
locking, indexes and tenancy filters), and ``queries/tickets.py`` pairs with ``tickets.py`` by name.

Contract: each query is a named function (or a column-list constant) taking the connection or
pool first; it runs exactly one statement and returns asyncpg's rows, value or cursor untouched.
The handlers keep what the contract of a request is made of: they open the transactions (and their
isolation), ask for a row lock (``lock=True``), check roles and tenancy, map "no row" to 404 and
shape the JSON. The SQL text is the text the handlers held before, moved verbatim.
"""

from __future__ import annotations

import asyncpg

Conn = asyncpg.Connection | asyncpg.Pool
"""A connection (inside a handler's transaction) or the pool (a single autocommit statement)."""
