"""Attendee list pushes: stream-parse and check rows (``parse``), then apply them set-based."""
