"""A disk that fills up under a running gate, on every path a check-in takes: a QR typed into
the kiosk page (wedge), the kiosk's manual admit, and `gate admit`.

Real full filesystem (the tmpfs fixture of ``test_full_disk``), real ``gate run`` subprocess,
real HTTP to its kiosk page.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from gate.feedback.staff import hash_pin
from tessera_dev.sample_event import code
from tests.gate.store.test_full_disk import _ready_list, fill, small_disk

__all__ = ["small_disk"]  # the fixture, used by name
PIN = "739164"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(data: Path, port: int) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GATE_")}
    return {
        **clean,
        "GATE_DATA_DIR": str(data),
        "GATE_DEBOUNCE_SECONDS": "0",
        "GATE_DISPLAY_PORT": str(port),
        "GATE_STAFF_PIN": str(hash_pin(PIN)),
    }


def _kiosk(port: int) -> httpx.Client:
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            client.get("/api/staff")
            break
        except httpx.TransportError:
            time.sleep(0.1)
    assert client.post("/api/staff/login", json={"pin": PIN}).status_code == 200
    return client


def test_kiosk_and_manual_denials_on_a_full_disk_carry_the_reason_ticket_and_path(
    small_disk: Path,
) -> None:
    """Scenario: the disk fills while the gate runs; a wedge scan on the kiosk page, a manual
    admit from the page are each DENY not_recorded with the ticket id, and report the path they
    came by (they said via=scanner); `gate admit` refuses in one line; nobody is admitted."""
    data = asyncio.run(_ready_list(small_disk))
    port = _free_port()
    env = _env(data, port)
    gate = subprocess.Popen(
        [sys.executable, "-m", "gate", "run", "--source", "kiosk"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    kiosk: httpx.Client | None = None
    try:
        kiosk = _kiosk(port)
        assert kiosk.post("/api/scan", json={"text": code(1, 11)}).json()["decision"] == "admit"
        filler = fill(small_disk)
        scan = kiosk.post("/api/scan", json={"text": f" {code(2, 22)}\t"})
        manual = kiosk.post("/api/admit", json={"ticket_id": 5})
        cli = subprocess.run(
            [sys.executable, "-m", "gate", "admit", "6"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert (scan.status_code, manual.status_code) == (200, 200)
        for answer, ticket, via in ((scan.json(), 2, "kiosk"), (manual.json(), 5, "manual")):
            assert (answer["decision"], answer["reason"]) == ("deny", "not_recorded"), answer
            assert (answer["ticket_id"], answer["via"]) == (ticket, via), answer
        # `gate admit` opens the database itself: on a full disk it refuses in one line
        assert cli.returncode == 1 and not cli.stdout and "Traceback" not in cli.stderr
        assert "cannot open the gate database" in cli.stderr and "disk is full" in cli.stderr
        filler.unlink()
        again = kiosk.post("/api/admit", json={"ticket_id": 5}).json()
        assert (again["decision"], again["ticket_id"], again["via"]) == ("admit", 5, "manual")
    finally:
        if kiosk is not None:
            kiosk.close()
        gate.terminate()
        _out, err = gate.communicate(timeout=30)
    assert gate.returncode == 0 and "Traceback" not in err
