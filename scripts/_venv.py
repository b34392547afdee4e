"""Let scripts/* run with any python3: re-execute under the .venv that scripts/setup made."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"


def use_venv(script: str) -> None:
    """Re-run ``script`` with the project's venv python unless this already is it."""
    if Path(sys.prefix).resolve() == (ROOT / ".venv").resolve():
        return
    if not VENV_PYTHON.exists():
        sys.exit(f"{Path(script).name}: the project is not installed; run scripts/setup first")
    os.execv(VENV_PYTHON, [str(VENV_PYTHON), script, *sys.argv[1:]])
