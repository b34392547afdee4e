"""Tests of the developer tools (tessera_dev/) and of the scripts/ entry points."""
