"""Tests of gate/checkin/."""
