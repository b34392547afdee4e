"""Every console script is installed and answers --help."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


@pytest.mark.parametrize("command", ["gate", "syncd", "tessera"])
def test_console_script_answers_help(command: str) -> None:
    result = subprocess.run(
        [str(BIN / command), "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout and "Tessera" in result.stdout


@pytest.mark.parametrize("script", ["fresh-check", "deploy-check"])
def test_ci_checks_answer_help_without_doing_anything(script: str) -> None:
    """The two root-only CI checks explain themselves on --help (and need no root for it)."""
    path = Path(__file__).resolve().parent.parent / "scripts" / script
    result = subprocess.run(
        [str(path), "--help"], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "Environment:" in result.stdout and "Whatever happen" in result.stdout
    assert not result.stdout.startswith("#!")
