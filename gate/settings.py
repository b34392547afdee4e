"""Gate settings, from ``GATE_*`` environment variables (pydantic-settings).

Every field is documented with its variable in ``SETTINGS_HELP`` (shown by ``gate run --help``).

``GateSettings`` is composed: building it also builds every part's settings (``GATE_CAMERA_*``,
``GATE_SCAN_*``, ``GATE_DISPLAY_*``, ``GATE_HOOK_*``, ``GATE_SERIAL_*``, ``GATE_EVDEV_*``,
``GATE_PEER_*``, ``GATE_PASSAGE_*``, ``GATE_DRILL_*``;
``settings.camera``, ``settings.part(CameraSettings)``), so a typo anywhere fails at start, not
when a part first reads it. The composition root (``gate.app``) hands each part its own
settings from this one object; nothing else reads them from the environment again.
``load_settings()`` is what the CLI uses: it also refuses ``GATE_*`` variables no setting
knows, and turns every failure into one ``SettingsError`` that names the variable (values are
not repeated: a setting may be a secret). Zone names are checked against the
loaded list by ``check_zones`` when the gate starts.
"""

from __future__ import annotations

import difflib
import importlib
import os
import pkgutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AliasChoices, Field, PrivateAttr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from gate.camera.settings import CameraSettings
from gate.door.settings import PassageSettings
from gate.drill.settings import DrillSettings
from gate.feedback.display_settings import DisplaySettings
from gate.feedback.hooks import HookSettings
from gate.peer.settings import PeerSettings
from gate.scan.evdev_source import EvdevSettings
from gate.scan.serial_source import SerialSettings
from gate.scan.settings import ScanSettings
from gate.unset import Unset
from shared.errors import ConfigError
from shared.protocol import MAX_PUSH_BATCH, MAX_WAIT_SECONDS
from shared.ticket import DEFAULT_CLOCK_TOLERANCE

P = TypeVar("P", bound=BaseSettings)
PARTS: tuple[type[BaseSettings], ...] = (
    CameraSettings,
    ScanSettings,
    DisplaySettings,
    HookSettings,
    SerialSettings,
    EvdevSettings,
    PeerSettings,
    PassageSettings,
    DrillSettings,
)
"""The parts' settings classes a GateSettings builds (each with its own GATE_..._ prefix)."""
MAX_ZONE_BIT = 15


class SettingsError(ConfigError):
    """A GATE_* setting is missing, malformed or unknown; the message names the variable."""


Mode = Literal["entry", "exit", "both"]
Reentry = Literal["never", "after_exit", "always"]


def _default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "tessera-gate"


class GateSettings(BaseSettings):
    """How this gate behaves. Built from the environment; tests pass values directly."""

    model_config = SettingsConfigDict(
        env_prefix="GATE_", extra="ignore", populate_by_name=True, frozen=True
    )

    gate_name: str = Field(
        default="Gate",
        min_length=1,
        max_length=64,
        validation_alias=AliasChoices("gate_name", "GATE_NAME"),
        description="name shown to staff, e.g. 'Gate B'",
    )
    mode: Mode = Field(default="entry", description="entry, exit, or both with a direction switch")
    direction: Literal["in", "out"] = Field(
        default="in", description="starting direction when mode is 'both'"
    )
    zones: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="zones this gate opens, names or bit indexes, comma-separated; empty = all",
    )
    reentry: Annotated[Reentry | None, Unset] = Field(
        default=None, description="never, after_exit or always; unset = the event's own policy"
    )
    clock_tolerance: float = Field(
        default=DEFAULT_CLOCK_TOLERANCE,
        ge=0,
        le=86_400,
        description="seconds of clock error forgiven",
    )
    rotation_tolerance: float = Field(
        default=0,
        ge=0,
        le=60,
        description="seconds of phone clock error forgiven on rotating (T2) codes, beyond the one"
        " step either side always allowed; each second keeps a screenshot good that much longer",
    )
    annul_window: float = Field(
        default=300,
        ge=0,
        le=86_400,
        description="seconds after an admission in which staff may annul it (gate annul, kiosk)",
    )
    debounce_seconds: float = Field(
        default=2.0,
        ge=0,
        le=60,
        description="a code seen again within this window is the same scan",
    )
    group_admit: bool = Field(
        default=False,
        description="an admitted ticket lets the rest of its group (the list's group column) in,"
        " each member checked and journaled on its own; off: only staff admit a group"
        " (gate admit --group, the kiosk's Admit group)",
    )
    group_max: int = Field(
        default=20,
        ge=2,
        le=500,
        description="most tickets a group may have to be admitted from one scan; a larger"
        " group's tickets are scanned one by one",
    )
    print_holders: bool = Field(
        default=True,
        description="print holder names in the decision lines on stdout; the systemd unit sets"
        " false: there stdout is the system journal, which a wipe on revoke cannot reach",
    )
    data_dir: Path = Field(
        default_factory=_default_data_dir, description="folder for the gate database"
    )
    server_url: Annotated[str | None, Unset] = Field(
        default=None,
        description="syncd base URL (https://syncd.example); unset = the URL `gate enroll` used",
    )
    credential_file: Annotated[Path | None, Unset] = Field(
        default=None,
        description="file holding the gate credential (mode 0600); unset = DATA_DIR/credential",
    )
    sync_batch_size: int = Field(
        default=500, ge=1, le=MAX_PUSH_BATCH, description="most check-ins per push"
    )
    sync_push_interval: float = Field(
        default=5.0, gt=0, le=3600, description="seconds between pushes when no scan wakes one"
    )
    sync_long_poll: float = Field(
        default=25.0,
        ge=0,
        le=MAX_WAIT_SECONDS,
        description="seconds syncd may hold a change-feed request open while online",
    )
    sync_stream: bool = Field(
        default=True,
        description="follow the change feed as syncd pushes it (one open connection); false:"
        " long-poll it (older syncd versions are long-polled either way)",
    )
    sync_timeout: float = Field(
        default=10.0, gt=0, le=300, description="seconds to connect, send or wait for an answer"
    )
    sync_backoff_initial: float = Field(
        default=0.5, gt=0, le=60, description="first retry waits up to this many seconds"
    )
    sync_backoff_max: float = Field(
        default=30.0, gt=0, le=3600, description="longest wait between retries (full jitter)"
    )
    sync_probe_interval: float = Field(
        default=3.0,
        gt=0,
        le=300,
        description="seconds between cheap probes (GET /healthz, jittered) while syncd is "
        "unreachable; the push follows as soon as one answers",
    )
    sync_probe_timeout: float = Field(
        default=2.0, gt=0, le=60, description="seconds a probe waits for syncd's answer"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="log level of the JSON logs on stderr"
    )

    _parts: dict[type[BaseSettings], BaseSettings] = PrivateAttr(default_factory=dict)

    def __init__(self, *, parts: Iterable[BaseSettings] = (), **values: Any) -> None:
        """Also build every part's settings now (those not in ``parts``), so a bad
        GATE_CAMERA_FPS fails at start; ``parts`` are ones already built (tests, load_settings)."""
        super().__init__(**values)
        given = {type(part): part for part in parts}
        for cls in PARTS:
            self._parts[cls] = given[cls] if cls in given else cls()

    def part(self, cls: type[P]) -> P:
        """This gate's settings for one part, e.g. ``settings.part(CameraSettings)``."""
        found = self._parts[cls]
        assert isinstance(found, cls)
        return found

    @property
    def camera(self) -> CameraSettings:
        return self.part(CameraSettings)

    @property
    def scan(self) -> ScanSettings:
        return self.part(ScanSettings)

    @property
    def display(self) -> DisplaySettings:
        return self.part(DisplaySettings)

    @property
    def hooks(self) -> HookSettings:
        return self.part(HookSettings)

    @property
    def serial(self) -> SerialSettings:
        return self.part(SerialSettings)

    @property
    def evdev(self) -> EvdevSettings:
        return self.part(EvdevSettings)

    @property
    def peer(self) -> PeerSettings:
        return self.part(PeerSettings)

    @property
    def passage(self) -> PassageSettings:
        return self.part(PassageSettings)

    @property
    def drill(self) -> DrillSettings:
        return self.part(DrillSettings)

    @field_validator("zones", mode="before")
    @classmethod
    def _split_zones(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("zones")
    @classmethod
    def _check_zone_bits(cls, value: list[str]) -> list[str]:
        bad = [zone for zone in value if zone.isdigit() and int(zone) > MAX_ZONE_BIT]
        if bad:
            raise ValueError(f"zone bit indexes run 0-{MAX_ZONE_BIT}, not {', '.join(bad)}")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @property
    def db_path(self) -> Path:
        return self.data_dir / "gate.sqlite3"

    @property
    def credential_path(self) -> Path:
        return self.credential_file or self.data_dir / "credential"

    @property
    def peer_key_path(self) -> Path:
        """This gate's peer private key (mode 0600), beside the credential."""
        return self.credential_path.with_name("peer.key")

    def initial_direction(self) -> Literal["in", "out"]:
        if self.mode == "entry":
            return "in"
        if self.mode == "exit":
            return "out"
        return self.direction


def env_name(field: str, cls: type[BaseSettings] | None = None) -> str:
    """The variable that sets ``field`` of ``cls`` (default: GateSettings)."""
    cls = cls or GateSettings
    info = cls.model_fields[field]
    if isinstance(info.validation_alias, AliasChoices):
        return str(info.validation_alias.choices[-1])
    if isinstance(info.validation_alias, str):  # e.g. GATE_STAFF_PIN in GATE_DISPLAY_*
        return info.validation_alias.upper()
    return f"{cls.model_config.get('env_prefix', '')}{field}".upper()


def _all_classes() -> tuple[type[BaseSettings], ...]:
    return (GateSettings, *PARTS)


def known_variables() -> set[str]:
    """Every GATE_* variable some setting reads."""
    return {
        env_name(field, cls)
        for cls in (*_all_classes(), *_gate_settings_classes())
        for field in cls.model_fields
    }


def _gate_settings_classes() -> list[type[BaseSettings]]:
    """Settings classes with a GATE_ prefix defined outside PARTS (so none is refused)."""
    found: list[type[BaseSettings]] = []
    todo = list(BaseSettings.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if str(cls.model_config.get("env_prefix", "")).upper().startswith("GATE_"):
            found.append(cls)
    return found


def _import_gate_modules() -> None:
    import gate

    for info in pkgutil.walk_packages(gate.__path__, prefix="gate."):
        if not info.name.endswith("__main__"):
            importlib.import_module(info.name)


def load_settings() -> GateSettings:
    """GateSettings from the environment, or one SettingsError naming every bad variable."""
    given = sorted(name for name in os.environ if name.startswith("GATE_"))
    known = known_variables()
    if not set(given) <= known:  # a part's settings class may not be imported yet: import all
        _import_gate_modules()
        known = known_variables()
    problems = [_unknown(name, known) for name in given if name not in known]
    parts: list[BaseSettings] = []
    for cls in PARTS:  # each part on its own, so every bad variable is named at once
        try:
            parts.append(cls())
        except ValidationError as exc:
            problems += describe_errors(exc)
    try:
        settings = GateSettings(parts=parts)
    except ValidationError as exc:  # a bad part is built again here, its errors named above
        own = [line for line in describe_errors(exc) if line.split(":")[0] in _own_variables()]
        problems += own
    if problems:
        raise SettingsError("bad GATE_* setting:\n" + "\n".join(f"  {p}" for p in problems))
    return settings


def _own_variables() -> set[str]:
    return {env_name(field) for field in GateSettings.model_fields}


def _unknown(name: str, known: set[str]) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=1)
    return f"{name}: no such setting" + (f" (did you mean {close[0]}?)" if close else "")


def describe_errors(exc: ValidationError) -> list[str]:
    """One line per error: the variable's name and what is wrong (never the value)."""
    cls = next((c for c in _all_classes() if c.__name__ == exc.title), GateSettings)
    lines = []
    for error in exc.errors(include_input=False, include_url=False):
        field = str(error["loc"][0]) if error["loc"] else ""
        name = _field_env_name(cls, field)
        lines.append(f"{name}: {error['msg']}")
    return lines


def _field_env_name(cls: type[BaseSettings], field: str) -> str:
    if field in cls.model_fields:
        return env_name(field, cls)
    for name, info in cls.model_fields.items():
        alias = info.validation_alias
        if alias == field or (isinstance(alias, AliasChoices) and field in alias.choices):
            return env_name(name, cls)
    return f"{cls.model_config.get('env_prefix', '')}{field}".upper()


def check_zones(zones: Iterable[str], event_zones: Iterable[Mapping[int, str]]) -> None:
    """Every zone name in GATE_ZONES must be a zone of a loaded event (any case).

    A name no event defines would silently open nothing, and the gate would then deny
    everyone with "Wrong entrance". Without a loaded list there is nothing to check yet.
    """
    tables = list(event_zones)
    if not tables:
        return
    names = {name.casefold() for table in tables for name in table.values()}
    unknown = [z for z in zones if not z.isdigit() and z.casefold() not in names]
    if unknown:
        known = ", ".join(sorted({n for t in tables for n in t.values()})) or "none"
        raise SettingsError(
            f"GATE_ZONES: unknown zone {', '.join(unknown)}; the loaded list has: {known}"
        )


SETTINGS_HELP = "\n".join(
    f"{env_name(name, cls)}: {info.description}"
    for cls in _all_classes()
    for name, info in cls.model_fields.items()
)
