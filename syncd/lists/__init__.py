"""Attendee list pushes: receive the body whole (``spool``), parse and check it in a worker
process (``worker``, ``parse``, ``rows``, ``refs``), then apply it set-based in one transaction
(``push``, ``apply``)."""
