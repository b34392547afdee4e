"""Tests of syncd/web/."""
