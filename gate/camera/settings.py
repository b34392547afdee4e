"""Camera settings (env prefix ``GATE_CAMERA_``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gate.unset import Unset, blank_is_unset

Roi = tuple[float, float, float, float]


class CameraSettings(BaseSettings):
    """Where frames come from and how the capture thread treats them.

    ``source`` is a device index (``0``) or path (``/dev/video0``), a video file, a stream URL
    (``rtsp://...``, ``http://.../mjpg``) or a folder of images. ``roi`` is ``x,y,w,h`` as
    fractions of the frame, so it survives a change of resolution.
    """

    model_config = SettingsConfigDict(env_prefix="GATE_CAMERA_", extra="forbid")

    source: str = Field(
        default="0", description="Device (0, /dev/video0), video file, stream URL or image folder."
    )
    width: Annotated[int | None, Unset] = Field(
        default=None, gt=0, description="Requested capture width (devices)."
    )
    height: Annotated[int | None, Unset] = Field(
        default=None, gt=0, description="Requested capture height."
    )
    fps: Annotated[float | None, Unset] = Field(
        default=None, gt=0, description="Requested rate; replay pace."
    )
    roi: Roi | None = Field(default=None, description="Region of interest x,y,w,h (0..1).")
    stall_timeout: float = Field(default=3.0, gt=0, description="No frame this long = stalled.")
    backoff_initial: float = Field(default=0.5, gt=0, description="First reopen delay (s).")
    backoff_max: float = Field(default=10.0, gt=0, description="Longest reopen delay (s).")
    at_end: Literal["auto", "reopen", "stop"] = Field(
        default="auto", description="At end of source: auto = stop for files/folders, else reopen."
    )
    pace: bool = Field(default=True, description="Replay files/folders at their frame rate.")

    @field_validator("roi", mode="before")
    @classmethod
    def _parse_roi(cls, value: object) -> object:
        value = blank_is_unset(value)
        if isinstance(value, str):
            parts = [p.strip() for p in value.split(",") if p.strip()]
            if len(parts) != 4:
                raise ValueError("roi must be four numbers x,y,w,h (fractions of the frame)")
            return tuple(float(p) for p in parts)
        return value

    @field_validator("roi")
    @classmethod
    def _check_roi(cls, value: Roi | None) -> Roi | None:
        if value is None:
            return None
        x, y, w, h = value
        if not (0 <= x < 1 and 0 <= y < 1 and 0 < w <= 1 - x + 1e-9 and 0 < h <= 1 - y + 1e-9):
            raise ValueError("roi x,y,w,h must lie inside the frame (fractions 0..1)")
        return value
