"""The gate's credential on disk: one line in a file only its owner can read (mode 0600).

The credential is a bearer secret: it is written with ``O_CREAT`` mode 0600 (and re-chmodded
when the file already existed), read back stripped, and never logged.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from shared.protocol import GATE_CREDENTIAL_PREFIX

log = logging.getLogger(__name__)


def write_credential(path: Path, credential: str) -> None:
    """Write atomically (temp file + rename), mode 0600 from the first byte."""
    write_secret(path, credential.encode() + b"\n")


def write_secret(path: Path, data: bytes) -> None:
    """Write ``data`` atomically (temp file + rename), mode 0600 from the first byte."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def read_credential(path: Path) -> str | None:
    """The credential, or None when the file does not exist. Raises ``ValueError`` if bad."""
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning(
            "gate credential file is readable by others; chmod 600 it",
            extra={"credential_file": str(path)},
        )
    if not text.startswith(GATE_CREDENTIAL_PREFIX):
        raise ValueError(f"{path} does not hold a gate credential ({GATE_CREDENTIAL_PREFIX}...)")
    return text
