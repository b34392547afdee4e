"""Gate settings, from ``GATE_*`` environment variables (pydantic-settings).

Every field is documented with its variable in ``SETTINGS_HELP`` (shown by ``gate run --help``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from shared.protocol import MAX_PUSH_BATCH, MAX_WAIT_SECONDS
from shared.ticket import DEFAULT_CLOCK_TOLERANCE

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
    reentry: Reentry | None = Field(
        default=None, description="never, after_exit or always; unset = the event's own policy"
    )
    clock_tolerance: float = Field(
        default=DEFAULT_CLOCK_TOLERANCE,
        ge=0,
        le=86_400,
        description="seconds of clock error forgiven",
    )
    debounce_seconds: float = Field(
        default=2.0,
        ge=0,
        le=60,
        description="a code seen again within this window is the same scan",
    )
    data_dir: Path = Field(
        default_factory=_default_data_dir, description="folder for the gate database"
    )
    server_url: str | None = Field(
        default=None,
        description="syncd base URL (https://syncd.example); unset = the URL `gate enroll` used",
    )
    credential_file: Path | None = Field(
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
    sync_timeout: float = Field(
        default=10.0, gt=0, le=300, description="seconds to connect, send or wait for an answer"
    )
    sync_backoff_initial: float = Field(
        default=0.5, gt=0, le=60, description="first retry waits up to this many seconds"
    )
    sync_backoff_max: float = Field(
        default=30.0, gt=0, le=3600, description="longest wait between retries (full jitter)"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="log level of the JSON logs on stderr"
    )

    @field_validator("zones", mode="before")
    @classmethod
    def _split_zones(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
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

    def initial_direction(self) -> Literal["in", "out"]:
        if self.mode == "entry":
            return "in"
        if self.mode == "exit":
            return "out"
        return self.direction


def env_name(field: str) -> str:
    info = GateSettings.model_fields[field]
    if isinstance(info.validation_alias, AliasChoices):
        return str(info.validation_alias.choices[-1])
    return f"GATE_{field.upper()}"


SETTINGS_HELP = "\n".join(
    f"{env_name(name)}: {info.description}" for name, info in GateSettings.model_fields.items()
)
