"""Scan settings (env prefix ``GATE_SCAN_``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ScanSettings(BaseSettings):
    """How frames are decoded. ``zxing`` is the default because it measured better
    (scripts/bench_scan): a higher decode rate on degraded frames at a lower cost per frame."""

    model_config = SettingsConfigDict(env_prefix="GATE_SCAN_", extra="forbid")

    decoder: Literal["zxing", "zbar"] = Field(default="zxing", description="QR decoder library.")
    downscale_width: int = Field(
        default=640, ge=160, description="Try a frame this wide first; full frame if nothing found."
    )
    full_frame: bool = Field(default=True, description="Fall back to the full-resolution frame.")
    try_invert: bool = Field(default=True, description="Also read light-on-dark codes.")
    escalate: bool = Field(
        default=True,
        description="Try harder (crop, rectify, enhance, zbar) on a code zxing-cpp located but "
        "could not read.",
    )
