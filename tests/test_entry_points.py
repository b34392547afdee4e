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
