"""The process environment, checked once at start (PROCESS.md's variables)."""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class SettingsError(Exception):
    """One line naming the variable at fault."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MAILROOM_", extra="ignore", env_ignore_empty=True)

    database_url: str = "sqlite:///./mailroom.db"
    admin_token: SecretStr | None = None
    secret_key: SecretStr | None = None
    timezone: str = "UTC"
    poll_seconds: float = 60.0
    extra_ca_file: str | None = None
    dns_servers: str | None = None
    allow_private_hosts: bool = False
    seal_every: int = 10_000

    @field_validator("database_url")
    @classmethod
    def _url(cls, value: str) -> str:
        parse_database_url(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("poll_seconds")
    @classmethod
    def _poll(cls, value: float) -> float:
        if not 0 < value <= 86_400:
            raise ValueError("must be between 0 and 86400 seconds")
        return value

    @field_validator("extra_ca_file")
    @classmethod
    def _ca(cls, value: str | None) -> str | None:
        if value and not Path(value).is_file():
            raise ValueError(f"no such file {value!r}")
        if value:
            try:  # loaded the way adapters/mailserver.py loads it, so a bad file stops the start
                ssl.create_default_context().load_verify_locations(cafile=value)
            except (ssl.SSLError, OSError, ValueError) as exc:
                raise ValueError(f"{value!r} is not a readable PEM file of CA certificates ({exc})") from None
        return value or None

    @field_validator("admin_token")
    @classmethod
    def _admin(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters")
        return value

    @field_validator("secret_key")
    @classmethod
    def _key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters")
        return value

    @field_validator("dns_servers")
    @classmethod
    def _dns(cls, value: str | None) -> str | None:
        for server in (value or "").split(","):
            # HOST or HOST:PORT; a bare IPv6 address has several colons and no port.
            port = server.strip().rpartition(":")[2] if server.count(":") == 1 else ""
            if server.count(":") == 1 and not (port.isdigit() and 0 < int(port) < 65536):
                raise ValueError(f"bad port in {server.strip()!r}")
        return value or None

    @field_validator("seal_every")
    @classmethod
    def _seal(cls, value: int) -> int:
        if value < 0:
            raise ValueError("must be 0 (seal only by command) or a positive number of events")
        return value

    @property
    def is_postgres(self) -> bool:
        return "POSTGRES_DBNAME" in parse_database_url(self.database_url)

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite database file, or None with PostgreSQL."""
        path = parse_database_url(self.database_url).get("SQLITE_DBNAME")
        return Path(path).expanduser() if path is not None else None


def check_sqlite_path(path: Path) -> None:
    """The database file can be opened or created there: checked without creating anything."""
    if path.is_dir():
        raise ValueError(f"{str(path)!r} is a directory")
    if path.exists():
        if not os.access(path, os.R_OK | os.W_OK):
            raise ValueError(f"{str(path)!r} is not readable and writable")
        with path.open("rb") as handle:
            header = handle.read(16)
        if header and header != b"SQLite format 3\x00":
            raise ValueError(f"{str(path)!r} is not an SQLite database")
        return
    ancestor = path.resolve().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ValueError(f"{str(ancestor)!r} is not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ValueError(f"cannot create the database in {str(ancestor)!r}")


def check_key_file(database: Path) -> None:
    """With SQLite and no MAILROOM_SECRET_KEY, an existing key file beside the database must hold a key."""
    key = Path(str(database) + ".key")
    if not key.exists():
        return
    try:
        content = key.read_text().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"MAILROOM_SECRET_KEY: unset, and the key file {str(key)!r} cannot be read "
                            f"({exc})") from None
    if len(content) < 16:
        raise SettingsError(f"MAILROOM_SECRET_KEY: unset, and the key file {str(key)!r} holds no key "
                            "(16+ characters)")


def parse_database_url(url: str) -> dict[str, str]:
    """The eventsourcing environment for a mailroom database URL."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        path = unquote(url[len("sqlite:///"):]) if url.startswith("sqlite:///") else ""
        if not path:
            raise ValueError("expected sqlite:///PATH")
        return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": path}
    if parts.scheme in ("postgresql", "postgres"):
        dbname = parts.path.lstrip("/")
        if not parts.hostname or not dbname:
            raise ValueError("expected postgresql://USER:PASS@HOST:PORT/DB")
        try:
            port = parts.port or 5432
        except ValueError:
            raise ValueError("bad port") from None
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": unquote(dbname),
            "POSTGRES_HOST": parts.hostname,
            "POSTGRES_PORT": str(port),
            "POSTGRES_USER": unquote(parts.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(parts.password or ""),
            "POSTGRES_POOL_SIZE": "4",
            "POSTGRES_MAX_OVERFLOW": "16",
            "POSTGRES_CONNECT_TIMEOUT": "10",
            "POSTGRES_LOCK_TIMEOUT": "10",
        }
    raise ValueError(f"unsupported scheme {parts.scheme!r}; use sqlite:/// or postgresql://")


def load_settings() -> Settings:
    """Settings from the environment, or SettingsError with one line naming the variable.

    Everything is checked here, before any database, table or key file is touched."""
    try:
        settings = Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "MAILROOM_" + str(first["loc"][0]).upper() if first["loc"] else "MAILROOM_*"
        message = str(first["msg"]).removeprefix("Value error, ")
        raise SettingsError(f"{name}: {message}") from None
    if settings.is_postgres and settings.secret_key is None:
        raise SettingsError("MAILROOM_SECRET_KEY: required with a PostgreSQL database")
    database = settings.sqlite_path
    if database is not None:
        try:
            check_sqlite_path(database)
        except (ValueError, OSError) as exc:
            raise SettingsError(f"MAILROOM_DATABASE_URL: {exc}") from None
        if settings.secret_key is None:
            check_key_file(database)
    return settings
