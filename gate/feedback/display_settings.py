"""Display settings (env prefix ``GATE_DISPLAY_``; the staff PIN hash is ``GATE_STAFF_PIN``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gate.feedback.staff import PinHash
from gate.unset import Unset


class DisplaySettings(BaseSettings):
    """The kiosk page the gate serves to its screen. Errors never echo a value: someone who
    puts the PIN itself into GATE_STAFF_PIN must not find it in the journal."""

    model_config = SettingsConfigDict(
        env_prefix="GATE_DISPLAY_", extra="forbid", populate_by_name=True, hide_input_in_errors=True
    )

    enabled: bool = Field(default=True, description="Serve the kiosk page.")
    host: str = Field(default="127.0.0.1", description="Address the page listens on.")
    port: int = Field(default=8090, ge=0, le=65535, description="Port (0 = any free port).")
    hold_seconds: float = Field(
        default=3.0, gt=0, le=3600, description="How long a result fills the screen."
    )
    preview_width: int = Field(default=320, ge=64, description="Camera preview width in pixels.")
    preview_fps: float = Field(default=4.0, gt=0, le=30, description="Preview refresh rate.")
    status_interval: float = Field(
        default=1.0, gt=0, le=3600, description="Seconds between status pushes."
    )
    allowed_hosts: str = Field(
        default="",
        max_length=2000,
        description="Extra host names the page answers to (comma-separated), besides the bind "
        "address, localhost, 127.0.0.1 and [::1].",
    )
    staff_pin: Annotated[str | None, Unset] = Field(
        default=None,
        validation_alias="GATE_STAFF_PIN",
        description="scrypt hash of the staff PIN made by `gate staff-pin` (never the PIN "
        "itself); unset = no staff actions on the page.",
    )
    staff_session_minutes: float = Field(
        default=30.0, gt=0, le=24 * 60, description="Minutes a staff session lasts after the PIN."
    )
    pin_max_failures: int = Field(
        default=5, ge=1, le=100, description="Wrong PINs in a row before a lock-out."
    )
    pin_lockout_seconds: float = Field(
        default=30.0, gt=0, le=900, description="First lock-out; each further round doubles it."
    )
    max_body_bytes: int = Field(
        default=16_384, ge=1024, le=1_048_576, description="Largest request body the page takes."
    )

    @field_validator("staff_pin")
    @classmethod
    def _a_hash(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return str(PinHash.parse(value))  # PinHashError is a ValueError: names GATE_STAFF_PIN

    def host_names(self) -> list[str]:
        return [part.strip() for part in self.allowed_hosts.split(",") if part.strip()]

    def pin_hash(self) -> PinHash | None:
        return PinHash.parse(self.staff_pin) if self.staff_pin else None
