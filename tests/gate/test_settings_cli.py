"""A typo in a GATE_* setting stops `gate run` (and --check-config) with the setting's name.

Regression: GATE_ZONES=VIPP started the gate, which then denied everyone with "Wrong entrance";
GATE_CAMERA_FPS=banana and GATE_DISPLAY_PORT=notaport passed --check-config.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic_settings import BaseSettings, SettingsConfigDict

from gate.settings import (
    PARTS,
    GateSettings,
    SettingsError,
    env_name,
    known_variables,
    load_settings,
)
from tessera_dev.sample_event import code
from tests.gate.scan.rungate import prepared

BAD = [
    ("GATE_ZONES", "VIPP", "unknown zone VIPP"),
    ("GATE_ZONES", "VIP,VIPP", "unknown zone VIPP"),
    ("GATE_ZONES", "17", "0-15"),
    ("GATE_CAMERA_FPS", "banana", "valid number"),
    ("GATE_DISPLAY_PORT", "notaport", "valid integer"),
    ("GATE_SCAN_DECODER", "opencv", "zxing"),
    ("GATE_SERIAL_BAUD", "fast", "valid integer"),
    ("GATE_EVDEV_LAYOUT", "dvorak", "'us' or 'de'"),
    ("GATE_HOOK_TIMEOUT", "-1", "greater than 0"),
    ("GATE_SYNC_TIMEOUT", "soon", "valid number"),
    ("GATE_ZONE", "VIP", "did you mean GATE_ZONES"),
    ("GATE_CAMERA_FSP", "10", "did you mean GATE_CAMERA_FPS"),
]


def gate(
    data_dir: Path, *args: str, stdin: str = "", **env: str
) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "GATE_DATA_DIR": str(data_dir), "GATE_DEBOUNCE_SECONDS": "0", **env}
    return subprocess.run(
        [sys.executable, "-m", "gate", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=environ,
        timeout=60,
    )


@pytest.mark.parametrize("check", [False, True], ids=["run", "check-config"])
@pytest.mark.parametrize(("name", "value", "why"), BAD, ids=[f"{n}={v}" for n, v, _ in BAD])
def test_a_bad_setting_refuses_to_start_and_names_it(
    tmp_path: Path, name: str, value: str, why: str, check: bool
) -> None:
    data_dir = prepared(tmp_path)
    args = ["run", "--source", "stdin", *(["--check-config"] if check else [])]
    result = gate(data_dir, *args, stdin=code(1, 11) + "\n", **{name: value})
    assert result.returncode != 0
    assert name in result.stderr and why in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_every_bad_setting_is_named_at_once(tmp_path: Path) -> None:
    env = {"GATE_CAMERA_FPS": "banana", "GATE_DISPLAY_PORT": "notaport", "GATE_NAME": ""}
    result = gate(prepared(tmp_path), "run", "--check-config", **env)
    assert result.returncode == 1
    assert all(name in result.stderr for name in env)


def test_values_are_not_echoed_in_the_error(tmp_path: Path) -> None:
    """A setting may be a secret (a hook command with a token): the error names, never shows."""
    result = gate(prepared(tmp_path), "run", "--check-config", GATE_HOOK_TIMEOUT="s3cr3t-token")
    assert "GATE_HOOK_TIMEOUT" in result.stderr and "s3cr3t-token" not in result.stderr


def test_known_zone_names_in_any_case_start_the_gate(tmp_path: Path) -> None:
    data_dir = prepared(tmp_path)
    result = gate(data_dir, "run", stdin=code(1, 11) + "\n", GATE_ZONES="main, 1")
    assert result.returncode == 0, result.stderr
    assert '"decision": "admit"' in result.stdout


def test_good_settings_of_every_part_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATE_CAMERA_FPS", "12.5")
    monkeypatch.setenv("GATE_SERIAL_BAUD", "115200")
    monkeypatch.setenv("GATE_EVDEV_LAYOUT", "de")
    settings = load_settings()
    from gate.camera.settings import CameraSettings
    from gate.scan.evdev_source import EvdevSettings
    from gate.scan.serial_source import SerialSettings

    assert settings.part(CameraSettings).fps == 12.5
    assert settings.part(SerialSettings).baud == 115200
    assert settings.part(EvdevSettings).layout == "de"


def test_every_part_setting_is_a_known_variable() -> None:
    """Each field under the variable it is read from (GATE_STAFF_PIN, not GATE_DISPLAY_...)."""
    known = known_variables()
    for cls in PARTS:
        assert {env_name(f, cls) for f in cls.model_fields} <= known
    assert "GATE_STAFF_PIN" in known and "GATE_DISPLAY_STAFF_PIN" not in known


def test_an_unknown_variable_is_a_settings_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATE_MODDE", "exit")
    with pytest.raises(SettingsError, match="GATE_MODDE: no such setting"):
        load_settings()


def test_every_gate_settings_class_is_composed() -> None:
    """A part's new settings class must be in PARTS, so GateSettings checks it at start."""
    from tests.test_deploy import settings_classes

    gate_classes = {
        cls
        for cls in settings_classes()
        if str(cls.model_config.get("env_prefix", "")).startswith("GATE_")
    }
    assert gate_classes == {GateSettings, *PARTS}


def test_a_settings_class_outside_the_composition_is_not_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Unknown-name checking must not refuse a variable some (not yet composed) part reads."""

    class ExtraSettings(BaseSettings):
        model_config = SettingsConfigDict(env_prefix="GATE_EXTRA_")
        thing: int = 1

    monkeypatch.setenv("GATE_EXTRA_THING", "2")
    assert "GATE_EXTRA_THING" in known_variables()
    load_settings()
