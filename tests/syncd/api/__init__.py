"""Tests of syncd/api/."""
