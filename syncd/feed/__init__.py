"""The per-event change feed: appended by writers (``append``), woken by Postgres NOTIFY
(``notify``), read by long-polling gates (``read``)."""
