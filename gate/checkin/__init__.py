"""Check-in: the pure decision (decide.py) and the pipeline (verify, decide, commit, feedback)."""

from gate.checkin.decision import Decision

__all__ = ["Decision"]
