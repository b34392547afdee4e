"""Display settings (env prefix ``GATE_DISPLAY_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class DisplaySettings(BaseSettings):
    """The kiosk page the gate serves to its screen."""

    model_config = SettingsConfigDict(env_prefix="GATE_DISPLAY_", extra="forbid")

    enabled: bool = Field(default=True, description="Serve the kiosk page.")
    host: str = Field(default="127.0.0.1", description="Address the page listens on.")
    port: int = Field(default=8090, ge=0, le=65535, description="Port (0 = any free port).")
    hold_seconds: float = Field(
        default=3.0, gt=0, description="How long a result fills the screen."
    )
    preview_width: int = Field(default=320, ge=64, description="Camera preview width in pixels.")
    preview_fps: float = Field(default=4.0, gt=0, le=30, description="Preview refresh rate.")
    status_interval: float = Field(default=1.0, gt=0, description="Seconds between status pushes.")
