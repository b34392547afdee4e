"""`gate enroll`, `gate run --source stdin` and `gate status` as real processes over real HTTP."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

from tessera_dev.sample_event import code
from tests.gate.sync.fakesyncd import CREDENTIAL, FakeSyncd
from tests.gate.sync.realserver import serving
from tests.gate.test_cli import gate


def test_enrol_run_and_status_sync_end_to_end(tmp_path: Path) -> None:
    fake = FakeSyncd()
    with serving(fake) as url:
        enrolled = gate(tmp_path, "enroll", "--server", url, "--code", "CODE-1")
        assert enrolled.returncode == 0, enrolled.stderr
        assert "Enrolled as Gate B (gate #2) for event 7: 6 tickets" in enrolled.stdout
        assert CREDENTIAL not in enrolled.stdout + enrolled.stderr
        cred = tmp_path / "data" / "credential"
        assert stat.S_IMODE(cred.stat().st_mode) == 0o600

        scans = f"{code(1, 11)}\n{code(2, 22)}\nnot a ticket\n"
        run = gate(
            tmp_path, "run", "--source", "stdin", stdin=scans, debounce_seconds="0", server_url=url
        )
        assert run.returncode == 0, run.stderr
        lines = [json.loads(line) for line in run.stdout.splitlines()]
        assert [d["decision"] for d in lines] == ["admit", "admit", "deny"]
        assert CREDENTIAL not in run.stderr
        assert sorted(fake.stored) == [1, 2, 3]  # the last push went out before exit

        status = gate(tmp_path, "status", "--json")
        sync = json.loads(status.stdout)["sync"]
        assert (sync["backlog"], sync["acked_seq"], sync["server_url"]) == (0, 3, url)
        assert "Sync:" in gate(tmp_path, "status").stdout


def test_enrol_with_a_bad_code_fails_clearly(tmp_path: Path) -> None:
    with serving(FakeSyncd()) as url:
        refused = gate(tmp_path, "enroll", "--server", url, "--code", "WRONG")
    assert refused.returncode == 1 and "refused" in refused.stderr
    assert not (tmp_path / "data" / "credential").exists()


def test_enrol_with_syncd_down_says_so(tmp_path: Path) -> None:
    refused = gate(tmp_path, "enroll", "--server", "http://127.0.0.1:9", "--code", "X")
    assert refused.returncode == 1 and "unreachable" in refused.stderr


def test_enrol_is_documented() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "gate", "enroll", "--help"], capture_output=True, text=True
    ).stdout
    assert "--server" in out and "0600" in out
