"""deploy/: every setting is documented in an env example, and the deployment files hold together.

The settings classes are found, not listed: every module of the packages is imported and every
``BaseSettings`` subclass defined there is checked, so a new setting fails this test until its
env example documents it (a comment above the line, with its default).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import AliasChoices, SecretStr
from pydantic_settings import BaseSettings

from syncd.settings import SyncdSettings

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
PACKAGES = ("shared", "gate", "syncd", "tessera_cli")
ENV_FILES = {  # env prefix -> example file; the longest matching prefix wins
    "SYNCD_": DEPLOY / "env" / "syncd.env.example",
    "GATE_": DEPLOY / "env" / "gate.env.example",
    "TESSERA_CLI_": DEPLOY / "env" / "tessera-cli.env.example",
}
_ASSIGN = re.compile(r"^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$")


@dataclass(frozen=True)
class Entry:
    """One ``NAME=value`` line of an env example; ``active`` unless it is commented out."""

    name: str
    value: str
    active: bool
    comment: list[str]  # the comment block right above the line


def settings_classes() -> list[type[BaseSettings]]:
    """Every BaseSettings subclass defined in the packages (each module imported once)."""
    found: dict[str, type[BaseSettings]] = {}
    for package in PACKAGES:
        pkg = importlib.import_module(package)
        for info in pkgutil.walk_packages(pkg.__path__, prefix=f"{package}."):
            module = importlib.import_module(info.name)
            for _, obj in inspect.getmembers(module, inspect.isclass):
                if issubclass(obj, BaseSettings) and obj.__module__ == module.__name__:
                    found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return [found[key] for key in sorted(found)]


def env_names(cls: type[BaseSettings], field: str) -> list[str]:
    """The environment variable names that set ``field`` (aliases replace the prefix)."""
    info = cls.model_fields[field]
    alias = info.validation_alias or info.alias
    if isinstance(alias, str):
        return [alias.upper()]
    if isinstance(alias, AliasChoices):
        return sorted({c.upper() for c in alias.choices if isinstance(c, str)})
    return [f"{cls.model_config.get('env_prefix', '')}{field}".upper()]


def example_for(cls: type[BaseSettings]) -> Path:
    prefix = str(cls.model_config.get("env_prefix", "")).upper()
    matches = [p for p in ENV_FILES if prefix.startswith(p)]
    assert matches, (
        f"{cls.__module__}.{cls.__qualname__} has env prefix {prefix!r} with no env example: "
        f"add deploy/env/<component>.env.example and map it in ENV_FILES"
    )
    return ENV_FILES[max(matches, key=len)]


def parse_example(path: Path) -> dict[str, Entry]:
    entries: dict[str, Entry] = {}
    comment: list[str] = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        match = _ASSIGN.match(line)
        if match:
            name = match.group(2)
            assert name not in entries, f"{path.name}:{number}: {name} appears twice"
            value = match.group(3).strip().strip('"')
            entries[name] = Entry(name, value, match.group(1) is None, comment)
            comment = []
        elif line.startswith("#"):
            comment = [*comment, line.lstrip("#").strip()]
        else:
            comment = []
    return entries


def all_fields() -> list[tuple[type[BaseSettings], str]]:
    return [(cls, name) for cls in settings_classes() for name in cls.model_fields]


def test_the_walk_finds_every_component() -> None:
    names = {cls.__name__ for cls in settings_classes()}
    assert {"SyncdSettings", "GateSettings", "CameraSettings", "CliSettings"} <= names
    assert {"ScanSettings", "DisplaySettings", "HookSettings"} <= names


def test_every_setting_is_documented_with_its_default() -> None:
    missing, bare = [], []
    for cls, field in all_fields():
        entries = parse_example(example_for(cls))
        names = env_names(cls, field)
        entry = next((entries[n] for n in names if n in entries), None)
        if entry is None:
            missing.append(f"{names[0]} ({cls.__name__}.{field}) in {example_for(cls).name}")
        elif not entry.comment or "default" not in " ".join(entry.comment).lower():
            bare.append(f"{entry.name} in {example_for(cls).name}")
    assert not missing, "settings missing from the env examples:\n" + "\n".join(missing)
    assert not bare, "needs a comment above it (meaning, 'Default: ...', unit):\n" + "\n".join(bare)


def test_env_examples_name_only_real_settings() -> None:
    """A renamed or removed setting must not live on in the examples."""
    known = {name for cls, field in all_fields() for name in env_names(cls, field)}
    for path in ENV_FILES.values():
        stale = sorted(set(parse_example(path)) - known)
        assert not stale, f"{path.name} documents settings that do not exist: {stale}"


@pytest.mark.parametrize("cls", settings_classes(), ids=lambda c: c.__name__)
def test_documented_defaults_are_the_real_defaults(
    cls: type[BaseSettings], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A '# NAME=value' line says what happens when NAME is unset, so it must be the default."""
    entries = parse_example(example_for(cls))
    shown = {}
    for field in cls.model_fields:
        entry = next((entries[n] for n in env_names(cls, field) if n in entries), None)
        if entry is not None and not entry.active and entry.value:
            monkeypatch.setenv(entry.name, entry.value)
            shown[field] = entry.name
    loaded = cls()
    for field, name in shown.items():
        default = cls.model_fields[field].get_default(call_default_factory=True)
        value = getattr(loaded, field)
        if isinstance(value, SecretStr) and isinstance(default, SecretStr):
            value, default = value.get_secret_value(), default.get_secret_value()
        assert value == default, f"{name}: example shows {value!r}, default is {default!r}"


@pytest.mark.parametrize("cls", settings_classes(), ids=lambda c: c.__name__)
def test_active_example_values_are_valid(
    cls: type[BaseSettings], monkeypatch: pytest.MonkeyPatch
) -> None:
    for entry in parse_example(example_for(cls)).values():
        if entry.active:
            monkeypatch.setenv(entry.name, entry.value)
    cls()  # raises ValidationError on a bad example value


def test_compose_runs_the_whole_stack() -> None:
    text = (DEPLOY / "compose.yaml").read_text(encoding="utf-8")
    for needle in (
        "postgres:15",
        "rabbitmq:3-management",
        "migrate:",
        "syncd-1:",
        "syncd-2:",
        "proxy:",
        "consumer:",
        "env/syncd.env.example",
        "syncd.Dockerfile",
        "service_completed_successfully",
        "pg_isready",
    ):
        assert needle in text, f"compose.yaml lacks {needle!r}"


def test_proxy_balances_both_replicas_and_lets_long_polls_through() -> None:
    text = (DEPLOY / "proxy" / "nginx.conf").read_text(encoding="utf-8")
    assert "server syncd-1:8080" in text and "server syncd-2:8080" in text
    changes = text.split("location /api/v1/gate/changes", 1)[1].split("}", 1)[0]
    assert "proxy_buffering off" in changes
    timeout = re.search(r"proxy_read_timeout\s+(\d+)s", changes)
    assert timeout and int(timeout.group(1)) > 30  # shared.protocol.MAX_WAIT_SECONDS = 30


def test_proxy_gives_up_on_a_vanished_replica_within_a_second() -> None:
    """deploy-check: with a 5 s connect timeout and max_fails=3, 6 of 20 requests after a
    replica was killed waited 5 s on its address."""
    text = (DEPLOY / "proxy" / "nginx.conf").read_text(encoding="utf-8")
    assert re.search(r"\n\s*proxy_connect_timeout 1s;", text)
    for replica in ("syncd-1", "syncd-2"):
        assert f"server {replica}:8080 max_fails=1 fail_timeout=10s;" in text


def test_proxy_sends_a_push_a_vanished_replica_leaves_unanswered_to_the_other() -> None:
    """deploy-check: a `podman kill`ed replica's kept-alive connection looked open and a push
    took 33 s to reach the other replica. A push (idempotent) is retried on the other one after
    a read timeout below the gate's own, with its body buffered so that it can be sent again."""
    from gate.settings import GateSettings

    text = (DEPLOY / "proxy" / "nginx.conf").read_text(encoding="utf-8")
    push = text.split("location = /api/v1/gate/checkins", 1)[1].split("}", 1)[0]
    assert re.search(r"proxy_next_upstream\s+error timeout non_idempotent;", push)
    assert "proxy_request_buffering on;" in push
    timeout = re.search(r"proxy_read_timeout\s+(\d+)s", push)
    assert timeout and int(timeout.group(1)) < GateSettings.model_fields["sync_timeout"].default
    body = re.search(r"client_max_body_size\s+(\d+)m", push)
    limit = SyncdSettings.model_fields["max_body_bytes"].default
    assert body and int(body.group(1)) << 20 == limit


def test_proxy_passes_feed_streams_unbuffered_beyond_a_keepalive() -> None:
    """A buffering proxy would hold a gate's pushed changes until its buffer fills."""
    text = (DEPLOY / "proxy" / "nginx.conf").read_text(encoding="utf-8")
    stream = text.split("location /api/v1/gate/stream", 1)[1].split("}", 1)[0]
    assert "proxy_buffering off" in stream
    timeout = re.search(r"proxy_read_timeout\s+(\d+)s", stream)
    heartbeat = SyncdSettings.model_fields["stream_heartbeat"].default
    assert timeout and int(timeout.group(1)) >= 3 * heartbeat


def test_proxy_body_limit_is_syncds_list_limit() -> None:
    """nginx allowed 1 GiB while syncd refuses lists over SYNCD_MAX_LIST_BYTES: keep them equal,
    so a too-large list gets syncd's named 413 from either."""
    from syncd.settings import SyncdSettings

    text = (DEPLOY / "proxy" / "nginx.conf").read_text(encoding="utf-8")
    found = re.search(r"client_max_body_size\s+(\d+)m;", text)
    assert found, "nginx.conf states client_max_body_size in MiB"
    assert int(found.group(1)) << 20 == SyncdSettings().max_list_bytes


def test_dockerfiles_run_as_a_user_with_the_right_entrypoints() -> None:
    syncd = (DEPLOY / "syncd.Dockerfile").read_text(encoding="utf-8")
    gate = (DEPLOY / "gate.Dockerfile").read_text(encoding="utf-8")
    for text in (syncd, gate):
        assert "ARG BASE=python:3.11-slim-bookworm\nFROM ${BASE}\n" in text
        assert "\nUSER tessera" in text
    assert "HEALTHCHECK" in syncd and "/healthz" in syncd and '"syncd"' in syncd
    assert "libzbar0" in gate and '"gate"' in gate and '"run"' in gate


def test_gate_unit_has_the_key_directives() -> None:
    text = (DEPLOY / "gate" / "tessera-gate.service").read_text(encoding="utf-8")
    for directive in (
        "Restart=always",
        "User=tessera",
        "SupplementaryGroups=video",
        "StateDirectory=tessera-gate",
        "EnvironmentFile=/etc/tessera/gate.env",
        "DeviceAllow=char-video4linux rw",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ExecStart=/opt/tessera/venv/bin/gate run --source camera",
        "Environment=GATE_PRINT_HOLDERS=false",  # stdout is the system journal
    ):
        assert f"\n{directive}" in text, f"tessera-gate.service lacks {directive}"
    assert "PrivateDevices=yes" not in text  # it would hide /dev/video*


def test_kiosk_opens_the_local_display_page() -> None:
    unit = (DEPLOY / "gate" / "tessera-kiosk.service").read_text(encoding="utf-8")
    assert "http://127.0.0.1:8090/" in unit and "--kiosk" in unit and "Restart=always" in unit
    setup = (DEPLOY / "gate" / "setup-kiosk").read_text(encoding="utf-8")
    assert setup.startswith("#!/bin/sh") and "set -eu" in setup
    assert "tessera-gate.service" in setup and "tessera-kiosk.service" in setup
