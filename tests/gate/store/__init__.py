"""Tests of gate/store/."""
