"""Tests of syncd/lists/."""
