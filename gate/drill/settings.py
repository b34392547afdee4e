"""Drill settings (env prefix ``GATE_DRILL_``): the thresholds of `gate drill`'s board."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class DrillSettings(BaseSettings):
    """What the pre-doors drill counts as good enough. Every check also has ``timeout``: the
    whole drill ends within a few seconds even with syncd, a peer or a hook hanging."""

    model_config = SettingsConfigDict(env_prefix="GATE_DRILL_", extra="forbid")

    timeout: float = Field(
        default=5.0, gt=0, le=60, description="seconds each check may take (they run together)"
    )
    list_max_age: float = Field(
        default=12.0,
        gt=0,
        le=24 * 30,
        description="hours: a list older than this is red (an enrolled gate's list is as fresh"
        " as its last pull of the change feed)",
    )
    scans_per_hour: int = Field(
        default=3600, ge=1, le=1_000_000, description="scans an hour the disk must hold room for"
    )
    hours: float = Field(
        default=12.0, gt=0, le=24 * 7, description="hours of scans the disk must hold room for"
    )
    clock_warn: float = Field(
        default=2.0,
        ge=0,
        le=86_400,
        description="seconds of clock skew against syncd that turn the clock amber (red beyond"
        " GATE_CLOCK_TOLERANCE); rotating codes change every few seconds",
    )
