"""``tessera`` settings: ``TESSERA_CLI_URL`` and ``TESSERA_CLI_TOKEN`` (plus a timeout)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class CliSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TESSERA_CLI_", env_file=None, extra="ignore")

    url: str = Field(default="http://127.0.0.1:8080", description="syncd base URL.")
    token: SecretStr | None = Field(default=None, description="API token (syncd create-token).")
    timeout: float = Field(default=600.0, gt=0, description="Seconds per request.")
