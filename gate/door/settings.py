"""Passage confirmation settings (env prefix ``GATE_PASSAGE_``)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gate.unset import Unset

_GPIO = re.compile(r"^(/dev/gpiochip\d{1,3}|gpiochip\d{1,3}):\d{1,4}(:(rising|falling))?$")


class PassageSettings(BaseSettings):
    """A turnstile or light beam that says someone went through.

    With ``confirm`` on, every admission waits for a passage (``POST /api/passage`` on the
    kiosk page's port, or an edge on the GPIO line ``gpio``): the oldest admission waiting is
    marked passed; one still waiting after ``timeout`` seconds is annulled by itself (the
    person did not go through, their ticket is good again); a passage with nothing waiting is
    recorded as a tailgate.
    """

    model_config = SettingsConfigDict(env_prefix="GATE_PASSAGE_", extra="forbid")

    confirm: bool = Field(
        default=False,
        description="admissions wait for a passage signal; unconfirmed ones are annulled",
    )
    timeout: float = Field(
        default=10.0,
        ge=1,
        le=600,
        description="seconds an admission waits for its passage before it is annulled",
    )
    gpio: Annotated[str | None, Unset] = Field(
        default=None,
        description="GPIO line of the turnstile or beam, CHIP:LINE[:rising|falling], e.g."
        " gpiochip0:17 (needs the gpiod package); unset = HTTP only",
    )
    token: Annotated[SecretStr | None, Unset] = Field(
        default=None,
        description="bearer token POST /api/passage must carry; unset = only callers on this"
        " machine (loopback) may signal a passage",
    )

    @field_validator("gpio")
    @classmethod
    def _check_gpio(cls, value: str | None) -> str | None:
        if value is not None and not _GPIO.match(value):
            raise ValueError("write the line as CHIP:LINE[:rising|falling], e.g. gpiochip0:17")
        return value

    @field_validator("token")
    @classmethod
    def _check_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("use at least 16 characters")
        return value
