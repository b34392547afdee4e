"""Peer mesh settings (env prefix ``GATE_PEER_``, and ``GATE_PEERS``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from gate.unset import Unset
from shared.protocol import MAX_PEER_URLS


def _split(value: object) -> object:
    if isinstance(value, str):
        return [part.strip().rstrip("/") for part in value.split(",") if part.strip()]
    return value


def _check_urls(urls: list[str]) -> list[str]:
    for url in urls:
        if not url.startswith(("http://", "https://")) or len(url) > 200:
            raise ValueError(f"{url[:60]!r} is not a base URL like http://10.0.0.12:8766")
    return urls


class PeerSettings(BaseSettings):
    """Where this gate serves its admissions to its peers, and which peers it follows.

    The mesh is on when ``port`` is set; peers come from syncd (every enrolled gate of the event
    reports its URLs) and from ``GATE_PEERS`` for a venue where syncd cannot be reached.
    """

    model_config = SettingsConfigDict(env_prefix="GATE_PEER_", extra="forbid")

    port: Annotated[int | None, Unset] = Field(
        default=None, ge=1, le=65535, description="serve peers on this TCP port; unset = no mesh"
    )
    host: str = Field(
        default="0.0.0.0",  # noqa: S104 - peers are other machines on the venue LAN
        description="address the peer server listens on",
    )
    advertise: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="base URLs peers reach this gate at (comma-separated); empty = "
        "http://HOST:PORT, with the address of the LAN interface when HOST is 0.0.0.0",
    )
    peers: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        validation_alias=AliasChoices("peers", "GATE_PEERS"),
        description="peer base URLs to follow besides those syncd lists (comma-separated)",
    )
    timeout: float = Field(
        default=2.0, gt=0, le=60, description="seconds to connect to a peer and prove identity"
    )
    retry_max: float = Field(
        default=5.0, gt=0, le=300, description="longest wait before reconnecting to a lost peer"
    )
    heartbeat: float = Field(
        default=1.0, gt=0, le=60, description="seconds between heartbeats; 4 missed = peer lost"
    )
    refresh: float = Field(
        default=15.0, gt=0, le=3600, description="seconds between peer-list refreshes from syncd"
    )
    max_followers: int = Field(
        default=64, ge=1, le=1024, description="most gates this gate serves at once"
    )

    @field_validator("advertise", "peers", mode="before")
    @classmethod
    def _split_urls(cls, value: object) -> object:
        return _split(value)

    @field_validator("advertise", "peers")
    @classmethod
    def _urls(cls, value: list[str]) -> list[str]:
        if len(value) > MAX_PEER_URLS * 8:
            raise ValueError("too many URLs")
        return _check_urls(value)
