"""Settings: one place, read from the environment with the ``DISPATCH_`` prefix (DESIGN §9)."""

from __future__ import annotations

import ipaddress
import math
import secrets
from collections import Counter
from functools import cached_property
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from dispatcher.errors import ConfigError
from dispatcher.wallclock import known_timezone


def strong_enough(key: str) -> bool:
    """A production secret: 32 characters or more, no blanks at its ends, and real variety — at
    least 128 bits by its characters' own frequencies (32 spaces or one character repeated have
    none; a random 32-character base64 token has about 150)."""
    if len(key) < 32 or key != key.strip():
        return False
    counts = Counter(key)
    per_char = -sum(n / len(key) * math.log2(n / len(key)) for n in counts.values())
    return len(counts) >= 12 and per_char * len(key) >= 128


#: The value shipped in examples; production mode refuses it.
INSECURE_SECRET_KEYS = frozenset({"", "change-me", "dev", "development", "secret"})


class Settings(BaseSettings):
    """Everything configurable; nothing else reads the environment."""

    model_config = SettingsConfigDict(env_prefix="DISPATCH_", env_file=None, extra="ignore")

    env: Literal["development", "production"] = Field(
        default="development",
        description="`production` refuses to start without a strong `SECRET_KEY`, a `DATABASE_URL` "
        "and a `REDIS_URL` (no embedded defaults).",
    )
    data_dir: Path = Field(
        default=Path("./var"),
        description="Folder for the SQLite file, the embedded Redis socket, the generated secret key, "
        "rendered reports, the workers' metrics files and `dispatcher up`'s logs.",
    )
    database_url: str | None = Field(
        default=None,
        description="The database, e.g. `postgresql://user:password@host/dispatch` (psycopg 3); "
        "unset: SQLite (WAL) in `DATA_DIR`.",
    )
    redis_url: str | None = Field(
        default=None,
        description="The Redis server of the queues and the scheduler lease, e.g. `redis://host:6379/0`; "
        "unset: an embedded Redis on `DATA_DIR/redis.sock` (one machine only).",
    )
    org_file: Path | None = Field(
        default=None,
        description="Org directory (YAML) that `dispatcher up` loads on first start (unset: "
        "`examples/org.yaml`); elsewhere load one with `dispatcher org load FILE`.",
    )
    policy_file: Path | None = Field(
        default=None,
        description="The policy (YAML): clocks per kind, warnings, escalation, office hours, calendar "
        "overrides, monthly jobs; unset: the built-in defaults (= `examples/policy.yaml`).",
    )
    secret_key: str | None = Field(
        default=None,
        description="Derives the encryption, hashing and session keys; in production at least 32 random "
        "characters. Unset in development: generated once into `DATA_DIR/secret.key`.",
    )
    timezone: str = Field(
        default="Asia/Shanghai",
        description="Ledger years, deadlines and monthly periods (a policy file may say the same, "
        "not otherwise).",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        default="INFO",
        description="Lowest level of the records logged (any case; `WARN` is `WARNING`).",
    )
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="`text`: one readable line per record; `json`: one JSON object per line "
        "(time, level, logger, process, message, exception) for a log shipper.",
    )

    broker_namespace: str = Field(
        default="dispatch",
        description="Broker namespace (Redis key prefix); tests give each run its own.",
    )
    heartbeat_timeout_ms: int = Field(
        default=15_000,
        ge=1_000,
        description="A worker silent for this long is presumed dead and its messages are redelivered.",
    )
    maintenance_chance: int = Field(
        default=50_000,
        ge=1,
        le=1_000_000,
        description="Per-million chance that a broker command runs queue maintenance (requeueing dead "
        "workers' messages).",
    )
    worker_metrics_port: int = Field(
        default=9191,
        description="Port of the worker's Prometheus exposition (dramatiq's middleware); 0 turns it off.",
    )
    worker_metrics_host: str = Field(
        default="127.0.0.1",
        description="Address the workers' Prometheus exposition listens on; `0.0.0.0` lets a Prometheus "
        "on another machine (or container) scrape it.",
    )
    relay_after_seconds: float = Field(
        default=5.0,
        gt=0,
        description="An event committed but not routed after this many seconds is enqueued again by the "
        "outbox relay.",
    )
    relay_interval_seconds: float = Field(
        default=2.0, gt=0, description="How often the scheduler runs the outbox relay."
    )
    relay_max_backoff_seconds: float = Field(
        default=60.0, gt=0, description="Longest wait between two relays of the same event (backoff cap)."
    )

    source_rate: float = Field(
        default=50.0,
        gt=0,
        description="Default rate limit of a new source (requests per second); "
        "`dispatcher source add --rate` overrides it.",
    )
    source_burst: int = Field(
        default=200,
        ge=1,
        description="Default burst of a new source (requests above the rate allowed at once).",
    )
    max_body_bytes: int = Field(
        default=256 * 1024,
        description="Largest JSON body of an intake request (one event, a batch, a feedback); "
        "a larger one is `413`.",
    )
    max_attachment_bytes: int = Field(
        default=10 * 1024 * 1024,
        ge=1024,
        le=100 * 1024 * 1024,
        description="One attachment (photo, document) at most; the upload's body may be this plus "
        "64 KiB of form. A larger one is `413`.",
    )
    feedback_window_days: float | None = Field(
        default=None,
        gt=0,
        description="Overrides the policy's feedback clock (days the requester has to answer before "
        'the task closes as "no response"); unset: the policy\'s `clocks.<kind>.feedback` decides.',
    )
    feedback_sweep_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How often the scheduler closes tasks whose feedback window has passed.",
    )
    webhook_max_attempts: int = Field(
        default=6,
        ge=1,
        le=50,
        description="Tries of a webhook delivery before it is given up into the failed list.",
    )
    trusted_proxies: str = Field(
        default="",
        description="Reverse proxies whose `X-Forwarded-For` / `-Proto` the API believes (addresses or "
        "CIDR networks, comma separated); empty: nobody's, the peer's own address counts.",
    )
    scheduler_lease_seconds: float = Field(
        default=15.0,
        ge=1.0,
        le=600.0,
        description="The scheduler leader's lease in Redis, renewed every third of it: a standby "
        "takes over within this many seconds of the leader's death.",
    )
    max_batch: int = Field(
        default=500, description="Most events in one `POST /events:batch`; more is refused."
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_in_any_case(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        level = value.strip().upper()
        return "WARNING" if level == "WARN" else level  # as the logging module itself accepts

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        return known_timezone(value)

    @model_validator(mode="after")
    def _refuse_defaults_in_production(self) -> Settings:
        for entry in self.proxies:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(
                    f"DISPATCH_TRUSTED_PROXIES: {entry!r} is not an address or network"
                ) from None
        if self.env == "production":
            if (
                self.secret_key is None
                or self.secret_key in INSECURE_SECRET_KEYS
                or not strong_enough(self.secret_key)
            ):
                raise ValueError(
                    "DISPATCH_SECRET_KEY must be set to at least 32 random characters in production"
                )
            if self.database_url is None:
                raise ValueError("DISPATCH_DATABASE_URL must be set in production (no embedded SQLite)")
            if self.redis_url is None:
                raise ValueError("DISPATCH_REDIS_URL must be set in production (no embedded Redis)")
        return self

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'dispatch.sqlite3').resolve()}"

    @property
    def embedded_redis(self) -> bool:
        return self.redis_url is None

    @property
    def redis_socket(self) -> Path:
        """The embedded Redis server's unix socket (only when ``redis_url`` is unset)."""
        return (self.data_dir / "redis.sock").resolve()

    @property
    def resolved_redis_url(self) -> str:
        if self.redis_url:
            return self.redis_url
        return f"unix://{self.redis_socket}"

    @property
    def proxies(self) -> list[str]:
        """``TRUSTED_PROXIES`` as a list."""
        return [p.strip() for p in self.trusted_proxies.split(",") if p.strip()]

    @cached_property
    def resolved_secret_key(self) -> str:
        """The secret key; in development one is generated once and kept in ``DATA_DIR``."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret.key"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        try:
            with open(path, "x") as f:  # "x": two processes racing keep the first key
                f.write(key)
            path.chmod(0o600)
        except FileExistsError:
            return path.read_text().strip()
        return key


def load_settings() -> Settings:
    """Read the settings, turning validation errors into one readable ``ConfigError``."""
    from pydantic import ValidationError

    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(problems) from None
