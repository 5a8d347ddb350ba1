"""All configuration in one place, read once from ``CLOSELOOP_*`` environment variables.

``Settings.event_store_env()`` maps it onto eventsourcing's own persistence settings:
an SQLite file under the var directory by default, PostgreSQL when
``CLOSELOOP_DATABASE_URL=postgresql://...`` is set.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CLOSELOOP_", extra="ignore")

    var_dir: Path = Field(Path("var"), description="Where embedded state lives (SQLite, Temporal).")
    database_url: str | None = Field(
        None,
        description="postgresql://user:password@host:port/dbname[?schema=NAME]; unset = SQLite.",
    )
    db_pool_size: int = Field(5, ge=1, description="PostgreSQL connections kept per process.")
    db_max_overflow: int = Field(10, ge=0, description="Extra connections under load.")
    db_max_waiting: int = Field(
        50, ge=0, description="Callers queued for a connection before failing fast (0 = no limit)."
    )
    db_pre_ping: bool = Field(True, description="Check a pooled connection before use.")

    sla_profile: str = Field("standard", description="standard | demo | drill (see sla.json).")
    policy_dir: Path | None = Field(
        None, description="Directory whose JSON files replace the packaged policies."
    )

    temporal_address: str = Field("localhost:7233", description="Temporal frontend host:port.")
    temporal_namespace: str = Field("default")
    temporal_task_queue: str = Field("closeloop")
    temporal_tls_cert: Path | None = Field(None, description="Client certificate (mTLS).")
    temporal_tls_key: Path | None = Field(None, description="Client key (mTLS).")
    temporal_tls_ca: Path | None = Field(None, description="Server CA certificate.")
    temporal_ui_port: int = Field(8233)

    api_host: str = Field("127.0.0.1")
    api_port: int = Field(8000)
    public_base_url: str | None = Field(
        None,
        pattern=r"^https?://[^/\s?#]+(/[^\s?#]*)?$",
        description="Where clients reach the API (e.g. https://12345.example.gov.cn), named "
        "by Open311 discovery; unset: http://API_HOST:API_PORT.",
    )
    max_body_bytes: int = Field(64 * 1024, description="Largest request body accepted (413 above).")
    api_keep_alive: int = Field(
        75,
        ge=1,
        description="Seconds uvicorn keeps an idle connection; above every client's and proxy's.",
    )
    api_graceful_timeout: int = Field(
        8, ge=0, description="Seconds in-flight requests get to finish on SIGTERM."
    )
    rate_limits: bool = Field(
        True, description="Rate limits per client address and token (off: for load tests)."
    )
    rate_limit_address: str = Field(
        "100/second;6000/minute",
        description="Requests per client address ('' = unlimited); a call centre behind one NAT "
        "is one address.",
    )
    rate_limit_token: str = Field(
        "30/second;1200/minute", description="Requests per valid token ('' = unlimited)."
    )
    rate_limit_failed_auth: str = Field(
        "30/minute", description="Invalid credentials per address before it gets only 429s."
    )
    open311_filing_quota: str = Field(
        "10/minute;200/day", description="Grievances one Open311 client may file."
    )
    rate_limit_storage: str = Field(
        "memory://", description="Where the counters live: memory:// (per process) or redis://."
    )
    blob_store: Literal["files", "s3"] = Field(
        "files",
        description="Where attachments are kept: files (under the var dir) or s3 (S3-compatible).",
    )
    blob_dir: Path | None = Field(None, description="files: the directory; unset = var/blobs.")
    s3_endpoint_url: str | None = Field(
        None, description="s3: the endpoint, e.g. https://minio.internal:9000; unset = AWS."
    )
    s3_bucket: str | None = Field(None, description="s3: the bucket (must exist).")
    s3_prefix: str = Field("", description="s3: a key prefix inside the bucket, e.g. closeloop/.")
    s3_region: str = Field("us-east-1", description="s3: the region name the store expects.")
    s3_access_key_id: str | None = Field(None, description="s3: access key (a secret file).")
    s3_secret_access_key: str | None = Field(None, description="s3: secret key (a secret file).")
    s3_addressing_style: Literal["path", "virtual", "auto"] = Field(
        "path", description="s3: path (MinIO, Ceph RGW) or virtual-hosted buckets."
    )
    attachment_max_bytes: int = Field(
        10 * 1024 * 1024, ge=1, description="Largest attachment accepted (413 above)."
    )
    attachment_types: str = Field(
        "image/jpeg,image/png,image/webp,application/pdf",
        description="Accepted attachment types, judged by content (a subset of the default).",
    )
    webhook_secrets_file: Path | None = Field(
        None, description="JSON {department: {url, secret}} for signed outbound notifications."
    )

    metrics_host: str = Field(
        "127.0.0.1", description="Address the worker, relay and projector serve /metrics on."
    )
    metrics_port: int | None = Field(
        None, description="Port of /metrics for worker, relay, projector; unset = none."
    )
    tracing: Literal["off", "console", "otlp"] = Field(
        "off", description="OpenTelemetry traces: off, console (stderr) or otlp."
    )
    otlp_endpoint: str | None = Field(
        None, description="OTLP/HTTP traces endpoint, e.g. http://collector:4318/v1/traces."
    )

    log_format: Literal["auto", "json", "console"] = Field(
        "auto", description="auto = console on a terminal, JSON otherwise."
    )
    log_level: str = Field("INFO")

    @field_validator("database_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        assert value is not None
        scheme = urlsplit(value).scheme
        if scheme not in ("postgresql", "postgres"):
            raise ValueError("CLOSELOOP_DATABASE_URL must be a postgresql:// URL")
        return value

    @field_validator(
        "rate_limit_address", "rate_limit_token", "rate_limit_failed_auth", "open311_filing_quota"
    )
    @classmethod
    def _check_rates(cls, value: str) -> str:
        from limits import parse_many

        if value.strip():
            parse_many(value)  # ValueError names what it could not read
        return value.strip()

    @field_validator("attachment_types")
    @classmethod
    def _check_types(cls, value: str) -> str:
        known = {"image/jpeg", "image/png", "image/webp", "application/pdf"}
        given = [v.strip() for v in value.split(",") if v.strip()]
        if not given or not set(given) <= known:
            raise ValueError(f"CLOSELOOP_ATTACHMENT_TYPES must be some of {sorted(known)}")
        return ",".join(given)

    @property
    def blob_path(self) -> Path:
        return self.blob_dir or self.var_dir / "blobs"

    @property
    def uses_postgres(self) -> bool:
        return self.database_url is not None

    @property
    def sqlite_path(self) -> Path:
        return self.var_dir / "events.sqlite"

    def postgres_params(self) -> dict[str, str]:
        """Connection parameters from the URL (for eventsourcing and psycopg alike)."""
        assert self.database_url is not None
        url = urlsplit(self.database_url)
        query = parse_qs(url.query)
        return {
            "dbname": unquote(url.path.lstrip("/")) or "postgres",
            "host": url.hostname or "127.0.0.1",
            "port": str(url.port or 5432),
            "user": unquote(url.username or "postgres"),
            "password": unquote(url.password or ""),
            "schema": query.get("schema", [""])[0],
        }

    def event_store_env(self) -> dict[str, str]:
        """The environment eventsourcing's Application reads its persistence from."""
        env = {"SLA_PROFILE": self.sla_profile}
        if self.policy_dir is not None:
            env["POLICY_DIR"] = str(self.policy_dir)
        if self.database_url is None:
            self.var_dir.mkdir(parents=True, exist_ok=True)
            env.update(
                PERSISTENCE_MODULE="eventsourcing.sqlite",
                SQLITE_DBNAME=str(self.sqlite_path),
                SQLITE_LOCK_TIMEOUT="10",
            )
            return env
        p = self.postgres_params()
        env.update(
            PERSISTENCE_MODULE="eventsourcing.postgres",
            POSTGRES_DBNAME=p["dbname"],
            POSTGRES_HOST=p["host"],
            POSTGRES_PORT=p["port"],
            POSTGRES_USER=p["user"],
            POSTGRES_PASSWORD=p["password"],
            POSTGRES_POOL_SIZE=str(self.db_pool_size),
            POSTGRES_MAX_OVERFLOW=str(self.db_max_overflow),
            POSTGRES_MAX_WAITING=str(self.db_max_waiting),
            POSTGRES_PRE_PING="y" if self.db_pre_ping else "n",
            POSTGRES_LOCK_TIMEOUT="5",
        )
        if p["schema"]:
            env["POSTGRES_SCHEMA"] = p["schema"]
        return env


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once (call ``get_settings.cache_clear()`` in tests).

    ``CLOSELOOP_SECRETS_DIR`` names a directory of secret files (Docker/Kubernetes
    secrets), one per setting, named like the variable (``closeloop_database_url``);
    an environment variable of the same name wins over its file.
    """
    secrets_dir = os.environ.get("CLOSELOOP_SECRETS_DIR") or None
    return Settings(_secrets_dir=secrets_dir)  # type: ignore[call-arg]  # pydantic-settings init kwarg
