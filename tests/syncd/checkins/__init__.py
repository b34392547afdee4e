"""Tests of syncd/checkins/."""
