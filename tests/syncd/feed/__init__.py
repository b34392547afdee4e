"""Tests of syncd/feed/."""
