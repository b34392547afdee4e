"""The `gate` command line, run as real subprocesses against a real data folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gate.__main__ import cli
from gate.checkin.messages import day_time
from gate.settings import GateSettings
from shared.bundle import BundleTicket
from shared.ticket import generate_private_key, public_key_to_b64
from tessera_dev.sample_event import KEY, code, write_bundle_file

COMMANDS = ["run", "import-list", "trust", "status", "lookup", "admit"]


def gate(
    tmp_path: Path, *args: str, stdin: str = "", **env: str
) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "GATE_DATA_DIR": str(tmp_path / "data"), "GATE_NAME": "Gate B"}
    environ.update({f"GATE_{k.upper()}": v for k, v in env.items()})
    return subprocess.run(
        [sys.executable, "-m", "gate", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=environ,
        timeout=60,
    )


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_answers_help(command: str) -> None:
    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output


def test_run_help_documents_every_setting() -> None:
    output = CliRunner().invoke(cli, ["run", "--help"]).output
    for name in GateSettings.model_fields:
        env = "GATE_NAME" if name == "gate_name" else f"GATE_{name.upper()}"
        assert env in output


def test_offline_session_from_trust_to_status(tmp_path: Path) -> None:
    bundle = write_bundle_file(tmp_path / "list.gz")
    refused = gate(tmp_path, "import-list", "-q", str(bundle))
    assert refused.returncode == 1 and "trusts no key" in refused.stderr
    assert gate(tmp_path, "trust", public_key_to_b64(KEY.public_key())).returncode == 0
    loaded = gate(tmp_path, "import-list", "-q", str(bundle))
    assert "Loaded 6 tickets" in loaded.stdout, loaded.stderr

    scans = f"{code(1, 11)}\r\n\n{code(1, 11)}\nhello\n"
    run = gate(tmp_path, "run", "--source", "stdin", stdin=scans, debounce_seconds="0")
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert [(d["ticket_id"], d["decision"], d["reason"]) for d in lines] == [
        (1, "admit", None),
        (1, "deny", "already_inside"),
        (None, "deny", "not_a_ticket"),
    ]
    assert {"message", "latency_ms", "seq"} <= lines[0].keys()
    assert all(json.loads(line)["level"] for line in run.stderr.splitlines())

    assert "Grace Hopper" in gate(tmp_path, "lookup", "GRACE").stdout
    admitted = gate(tmp_path, "admit", "5")
    assert admitted.returncode == 0 and json.loads(admitted.stdout)["via"] == "manual"
    assert gate(tmp_path, "admit", "3").returncode == 1  # revoked
    found = json.loads(gate(tmp_path, "lookup", "--json", "5").stdout)[0]
    assert (found["inside"], found["timezone"]) == (True, "Europe/Berlin")
    berlin = day_time(found["last_in_at"], "Europe/Berlin")
    assert f"inside since {berlin}" in gate(tmp_path, "lookup", "5").stdout

    status = json.loads(gate(tmp_path, "status", "--json").stdout)
    assert (status["list_size"], status["journal_size"], status["unsynced"]) == (6, 5, 5)
    assert (status["admitted_today"] >= 0, status["inside_now"]) == (True, 2)
    assert "Fest (#7)" in gate(tmp_path, "status").stdout


def test_debounce_in_gate_run(tmp_path: Path) -> None:
    write_bundle_file(tmp_path / "list.gz")
    gate(tmp_path, "trust", public_key_to_b64(KEY.public_key()))
    gate(tmp_path, "import-list", "-q", str(tmp_path / "list.gz"))
    run = gate(tmp_path, "run", stdin=f"{code(1, 11)}\n" * 5 + f"{code(5, 55)}\n")
    assert [json.loads(line)["ticket_id"] for line in run.stdout.splitlines()] == [1, 5]


def test_unsigned_bundle_via_cli_keeps_old_list(tmp_path: Path) -> None:
    gate(tmp_path, "trust", public_key_to_b64(KEY.public_key()))
    gate(tmp_path, "import-list", "-q", str(write_bundle_file(tmp_path / "a.gz")))
    evil = write_bundle_file(
        tmp_path / "evil.gz", tickets=[BundleTicket(77, 1)], signer=generate_private_key()
    )
    result = gate(tmp_path, "import-list", "-q", str(evil))
    assert result.returncode == 1 and "untrusted key" in result.stderr
    run = gate(tmp_path, "run", stdin=code(5, 55) + "\n")
    assert json.loads(run.stdout)["decision"] == "admit"


def test_bad_settings_and_check_config(tmp_path: Path) -> None:
    bad = gate(tmp_path, "run", "--check-config", mode="sideways")
    assert bad.returncode == 1 and "GATE_" in bad.stderr
    ok = gate(tmp_path, "run", "--check-config")
    assert ok.returncode == 0 and json.loads(ok.stdout)["problems"]
    assert gate(tmp_path, "trust", "not-a-key").returncode == 1


def test_trust_accepts_a_key_whose_base64url_starts_with_a_dash(tmp_path: Path) -> None:
    """Regression: one key in 64 encodes to '-...', which click took for an option."""
    seed = next(
        i
        for i in range(10_000)
        if _key_b64(i).startswith("-")  # the first such seed is found within a few hundred
    )
    result = gate(tmp_path, "trust", _key_b64(seed))
    assert result.returncode == 0, result.stderr
    assert "Trusted key" in result.stdout


def _key_b64(seed: int) -> str:
    private = Ed25519PrivateKey.from_private_bytes(seed.to_bytes(32, "big"))
    return public_key_to_b64(private.public_key())


def test_trust_takes_a_key_that_starts_with_a_dash(tmp_path: Path) -> None:
    """Regression: base64url keys may start with '-'; "-Th..." was read as the options -T -h
    and printed the help (1 key in 64 starts with '-'). Only --help is help for `gate trust`."""
    key = next(
        text
        for text in (public_key_to_b64(generate_private_key().public_key()) for _ in range(10**4))
        if text.startswith("-") and "h" in text[1:4]
    )
    result = gate(tmp_path, "trust", key)
    assert result.returncode == 0 and "Trusted key" in result.stdout, result.stdout
