"""The end-to-end fixtures (``stack``: see tests/e2e/event_stack.py)."""

from tests.e2e.event_stack import stack  # noqa: F401  (the fixture, for every module here)
