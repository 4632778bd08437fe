"""Settings, read once from the environment (HOOKLINE_*) when a process starts."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.operations import parse_thresholds


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HOOKLINE_", extra="ignore")

    database_url: str = "sqlite:///./var/hookline.sqlite3"
    max_payload_bytes: int = Field(default=256 * 1024, ge=1024)
    max_request_bytes: int = Field(default=16 * 1024 * 1024, ge=64 * 1024)
    # A template may repeat a payload's values: its body for one event stops at this size (at least
    # the largest template, so that any template without placeholders fits).
    max_rendered_bytes: int = Field(default=4 * 1024 * 1024, ge=64 * 1024)
    # Parsed GraphQL documents kept for reuse, in bytes in all; 0: none kept.
    document_cache_bytes: int = Field(default=16 * 1024 * 1024, ge=0)
    database_pool_size: int = Field(default=5, ge=1, le=200)
    redis_url: str | None = None
    secret_key: SecretStr | None = None
    # Signs the audit export's checkpoints (Ed25519; base64 of the 32-byte private key); unset: a key
    # generated once into var_dir. Checked where it is used, so that no error shows its value.
    audit_signing_key: SecretStr | None = None
    allow_private_targets: bool = False
    log_level: str = "info"
    delivery_concurrency: int = Field(default=64, ge=1, le=10_000)
    # Jobs one `hookline worker` runs at once. A worker killed mid-send has this many sends whose
    # outcome it never recorded, and they are sent again: kept modest, and workers added instead.
    worker_jobs: int = Field(default=20, ge=1, le=1_000)
    # sendTest's requests in flight at once, on connections of their own: apart from deliveries', so
    # that neither can take the other's (one beyond waits for a connection, within the timeouts).
    send_test_connections: int = Field(default=8, ge=1, le=1_000)
    connect_timeout_seconds: float = Field(default=5.0, gt=0)
    request_timeout_seconds: float = Field(default=15.0, gt=0)
    # Comma-separated seconds between attempts, e.g. "5,300,1800"; unset: the default schedule.
    retry_schedule: str | None = None
    # A webhook whose deliveries have all failed for this long is switched off ("failing").
    disable_after_hours: float = Field(default=120.0, gt=0)
    # A webhook's consecutive failed attempts at which `hookline.webhook.failing` is published, once
    # each per failing streak: comma-separated, increasing.
    failing_thresholds: str = "5,20,100"
    # How often `serve` re-reads the store for jobs lost from Redis (distributed mode).
    sweep_seconds: float = Field(default=5.0, gt=0)
    # How often `serve` removes what organisations' retention policies no longer keep.
    retention_sweep_seconds: float = Field(default=300.0, gt=0)
    # A finished verifyAuditLog answers its organisation's callers this long while its trail has not
    # grown (the answer would be the same): many asked at once cost one verification.
    audit_verify_reuse_seconds: float = Field(default=2.0, ge=0, le=60)
    # Every target and token request goes through this forward proxy (http://host:port; CONNECT for
    # https targets), except to the hosts (and their subdomains) in egress_no_proxy, comma-separated.
    egress_proxy: str | None = None
    egress_no_proxy: str | None = None

    @field_validator("egress_proxy")
    @classmethod
    def _proxy_is_an_http_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        parts = urlsplit(value)
        if parts.scheme != "http" or not parts.hostname or parts.path not in ("", "/"):
            raise ValueError("must be http://host:port (an HTTP forward proxy)")
        return value

    @field_validator("failing_thresholds")
    @classmethod
    def _thresholds_parse(cls, value: str) -> str:
        parse_thresholds(value)
        return value

    @property
    def no_proxy_hosts(self) -> tuple[str, ...]:
        return tuple(h.strip() for h in (self.egress_no_proxy or "").split(",") if h.strip())

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite file of a sqlite:/// URL (relative to the working directory), else None."""
        parts = urlsplit(self.database_url)
        if parts.scheme != "sqlite":
            return None
        path = unquote(parts.path)
        # sqlite:///relative/path and sqlite:////absolute/path, as SQLAlchemy reads them.
        return Path(path[1:] if path.startswith("/") else path)

    @property
    def var_dir(self) -> Path:
        path = self.sqlite_path
        return path.parent if path is not None else Path("var")
