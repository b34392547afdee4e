"""syncd settings: every value comes from a ``SYNCD_*`` environment variable (or the caller)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class SyncdSettings(BaseSettings):
    """Configuration of one syncd replica. Replicas share nothing but Postgres and RabbitMQ."""

    model_config = SettingsConfigDict(env_prefix="SYNCD_", env_file=None, extra="ignore")

    database_url: SecretStr = Field(
        default=SecretStr("postgresql://postgres:postgres@127.0.0.1:5432/tessera"),
        description="Postgres URL (asyncpg).",
    )
    amqp_url: SecretStr = Field(
        default=SecretStr("amqp://guest:guest@127.0.0.1:5672/"),
        description="RabbitMQ URL (aio-pika).",
    )
    host: str = Field(default="127.0.0.1", description="Address to bind.")
    workers: int = Field(
        default=1,
        ge=1,
        le=256,
        description="Processes serving the port together (SO_REUSEPORT), e.g. one per core;"
        " each has its own pools (SYNCD_POOL_MAX each).",
    )
    port: int = Field(default=8080, ge=0, le=65535, description="Port to bind.")
    master_key: SecretStr | None = Field(
        default=None,
        description="Secret that encrypts event private keys at rest (syncd gen-master-key).",
    )
    pool_min: int = Field(default=1, ge=0, description="Minimum Postgres connections.")
    pool_max: int = Field(default=10, ge=1, description="Maximum Postgres connections.")
    max_body_bytes: int = Field(
        default=1 << 20, ge=1024, description="Limit for JSON request bodies."
    )
    max_list_bytes: int = Field(
        default=256 << 20,
        ge=1024,
        description="Limit for one attendee list upload (spooled to a temp file before parsing).",
    )
    max_list_errors: int = Field(
        default=1000, ge=1, description="Row errors reported for a bad list."
    )
    list_max_rows: int = Field(
        default=2_000_000, ge=1, description="Most rows in one attendee list (more: 413)."
    )
    list_max_record_chars: int = Field(
        default=65_536,
        ge=1024,
        description="Most characters in one list record (a CSV record, JSON element or NDJSON"
        " line); a longer one is a 422 naming its row and column.",
    )
    list_spool_dir: Path | None = Field(
        default=None,
        description="Directory for list uploads while they are checked (default: the system's"
        " temp directory).",
    )
    upload_timeout: float = Field(
        default=300.0, gt=0, description="Seconds a list upload may take to arrive (then 408)."
    )
    uploads_per_org: int = Field(
        default=2, ge=1, description="List uploads one organisation runs at once per replica."
    )
    list_statement_timeout: float = Field(
        default=600.0,
        gt=0,
        description="Postgres statement_timeout (seconds) inside a list push's transaction.",
    )
    db_statement_timeout: float = Field(
        default=60.0, gt=0, description="Postgres statement_timeout (seconds) of pooled sessions."
    )
    db_idle_in_transaction_timeout: float = Field(
        default=60.0,
        gt=0,
        description="Postgres idle_in_transaction_session_timeout (seconds) of pooled sessions.",
    )
    list_batch_rows: int = Field(
        default=50_000, ge=1, description="Rows per statement when a checked list is applied."
    )
    log_level: str = Field(default="INFO", description="Python log level.")
    check_schema: bool = Field(
        default=True, description="Refuse to start when migrations are pending."
    )
    amqp_exchange: str = Field(
        default="tessera",
        min_length=1,
        max_length=118,  # + '.unrouted' fits AMQP's 127-byte names
        pattern=r"^[A-Za-z0-9_.:-]+$",  # the characters RabbitMQ allows in a name
        description="Durable topic exchange for check-in events; '<name>.dlx', '<name>.dead' and"
        " '<name>.unrouted' are declared beside it.",
    )
    relay_enabled: bool = Field(default=True, description="Run the outbox relay in this replica.")
    relay_batch: int = Field(
        default=2000, ge=1, le=20000, description="Most outbox rows the relay publishes per round."
    )
    relay_depth: int = Field(
        default=3, ge=1, le=16, description="Relay rounds published while awaiting confirms."
    )
    relay_vacuum_rows: int = Field(
        default=20_000,
        ge=0,
        description="The relay runs VACUUM on the outbox after deleting this many rows (0: never).",
    )
    relay_drain_seconds: float = Field(
        default=5.0,
        ge=0,
        le=60,
        description="On shutdown, the relay waits this long for the rounds in flight to be"
        " confirmed, so the next leader does not publish them again.",
    )
    relay_failover_seconds: int = Field(
        default=10,
        ge=5,
        le=600,
        description="When the leading relay's host vanishes (power, network), Postgres ends its"
        " session after this many seconds of silence (TCP keepalives, tcp_user_timeout) and"
        " another replica takes the relay over.",
    )
    checkout_interval: float = Field(
        default=60.0,
        ge=1,
        le=3600,
        description="Seconds between looks for events whose automatic check-out time passed"
        " (each is announced once, by the first replica to see it); the timer also wakes at"
        " the next check-out time it knows.",
    )
    push_concurrency: int = Field(
        default=2,
        ge=1,
        le=64,
        description="Gate push transactions this replica runs at once; more wait their turn.",
    )
    clock_warn_seconds: float = Field(
        default=30.0, gt=0, description="Warn when a gate's clock is off by more than this."
    )
    public_url: str | None = Field(
        default=None,
        pattern=r"^https?://[!-~]{1,190}$",
        description="Base URL holders reach syncd at (https://tickets.example), for wallet links;"
        " unset = the address the organiser's request came to.",
    )
    wallet_reclaim_seconds: float = Field(
        default=600.0,
        ge=0,
        description="Seconds after a wallet claim before the link may move the ticket to"
        " another phone (a lost phone); sooner is a 429.",
    )
    wallet_max_claims: int = Field(
        default=5,
        ge=1,
        description="Phones one wallet link may move a ticket to; then the organiser makes a"
        " new link.",
    )
    auth_cache_seconds: float = Field(
        default=30.0,
        ge=0,
        description="Seconds a credential's owner is remembered without asking Postgres (0: ask"
        " every time). Revocations apply at once while the LISTEN connection is up.",
    )
    stream_heartbeat: float = Field(
        default=15.0,
        gt=0,
        le=300,
        description="Seconds of silence after which a gate's feed stream gets a keepalive"
        " comment (nothing is read from Postgres for it).",
    )
    stream_write_timeout: float = Field(
        default=30.0,
        gt=0,
        description="Seconds a write to a gate's feed stream may wait for the gate to read;"
        " then the stream is closed.",
    )
    enroll_code_ttl: float = Field(
        default=86400.0, gt=0, description="Seconds an enrolment code stays usable."
    )
    dashboard_interval: float = Field(
        default=1.0,
        ge=0.1,
        le=60,
        description="Least seconds between two computations of one event's dashboard figures;"
        " the advances in between are folded into the next (one computation per event, written"
        " to all its open dashboards).",
    )
    dashboard_refresh: float = Field(
        default=10.0,
        ge=1,
        le=300,
        description="Seconds after which an event's open dashboards get its figures again with"
        " no check-in in between (gates going offline); also their keepalive.",
    )
    dashboard_streams_per_token: int = Field(
        default=8,
        ge=1,
        le=1000,
        description="Open dashboard streams one API token may hold on a replica; a newer one"
        " closes the oldest.",
    )
    gate_online_seconds: float = Field(
        default=60.0,
        ge=10,
        description="A gate counts as online on the dashboard when it pushed, long-polled or held"
        " a feed stream within this many seconds (more than the long-poll wait plus"
        " SYNCD_GATE_SEEN_INTERVAL).",
    )
    gate_seen_interval: float = Field(
        default=10.0,
        ge=1,
        le=60,
        description="Seconds between a replica's writes of the gates it saw (one statement;"
        " nothing when it saw none).",
    )
    feed_page: int = Field(
        default=1000, ge=1, le=10000, description="Changes per change-feed page."
    )
    feed_max_behind: int = Field(
        default=200_000,
        ge=1,
        description="A gate further behind than this many changes gets a snapshot instead.",
    )
    auth_fail_burst: int = Field(
        default=20,
        ge=1,
        description="Failed authentication or enrolment attempts (401s) one client address may"
        " make in a row before it gets 429 with Retry-After.",
    )
    auth_fail_per_minute: float = Field(
        default=10.0,
        gt=0,
        description="Failed attempts per minute a client address earns back after the burst.",
    )
    auth_fail_clients: int = Field(
        default=10_000,
        ge=1,
        description="Client addresses whose failures are tracked at once (the least recently"
        " seen is forgotten first); bounds the limiter's memory.",
    )
    auth_fail_exempt: str = Field(
        default="127.0.0.0/8,::1/128",
        description="Comma-separated addresses/networks never limited (local tools, tests).",
    )
    trusted_proxies: str = Field(
        default="",
        description="Comma-separated proxy addresses/networks whose X-Forwarded-For names the"
        " client (e.g. the nginx in deploy/proxy); empty: the TCP peer is the client.",
    )

    @field_validator("auth_fail_exempt", "trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        for part in value.split(","):
            if part.strip():
                ipaddress.ip_network(part.strip(), strict=False)  # ValueError names the entry
        return value
