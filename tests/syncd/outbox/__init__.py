"""Tests of syncd/outbox/."""
