"""Settings: one table of options, read from flags and ``HUBBUB_*`` environment variables.

Precedence: command-line flag, then environment variable, then default. Every value is
validated here, at the boundary, so the rest of the code can trust ``Settings``.
"""

from __future__ import annotations

import argparse
import os
import secrets
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs


class ConfigError(Exception):
    """Configuration that cannot work. The message is one line saying what to fix."""


@attrs.frozen
class Option:
    """One setting: its attribute name, environment variable, parser and default."""

    name: str
    parse: Callable[[str], Any]
    default: Any
    help: str

    @property
    def env(self) -> str:
        return "HUBBUB_" + self.name.upper()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError("must be a positive integer")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise ValueError("must be a port number from 0 to 65535")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise ValueError("must be a positive number")
    return value


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return value

    return parse


def _optional_text(text: str) -> str | None:
    return text.strip() or None


OPTIONS: tuple[Option, ...] = (
    Option("host", str, "127.0.0.1", "address to listen on"),
    Option("port", _port, 8000, "port for HTTP and WebSocket (0 picks a free one)"),
    Option("data_dir", str, "./hubbub-data", "folder for the SQLite file, media and JWT secret"),
    Option(
        "database_url",
        _optional_text,
        None,
        "sqlite:///path.db or postgresql://...; default: SQLite in the data dir",
    ),
    Option(
        "database_timeout",
        _positive_float,
        10.0,
        "seconds a database call may take before it counts as unavailable",
    ),
    Option("redis_url", _optional_text, None, "redis://host:port/db; unset: one node, no Redis"),
    Option("jwt_secret", _optional_text, None, "token signing key; default: kept in the data dir"),
    Option("access_token_ttl", _positive_int, 900, "access token lifetime, seconds"),
    Option("refresh_token_ttl", _positive_int, 30 * 24 * 3600, "refresh token lifetime, seconds"),
    Option("direct_rate_limit", _positive_int, 20, "direct messages per user per window"),
    Option("group_rate_limit", _positive_int, 30, "group messages per user per window"),
    Option("rate_window", _positive_float, 60.0, "rate limit window, seconds"),
    Option("max_message_length", _positive_int, 4000, "characters of text per message"),
    Option("max_upload_bytes", _positive_int, 10 * 1024 * 1024, "largest image upload, bytes"),
    Option(
        "max_image_pixels",
        _positive_int,
        25_000_000,
        "largest image accepted, in pixels (width x height); checked before decoding",
    ),
    Option("outbound_queue", _positive_int, 512, "frames queued per connection before closing it"),
    Option("ping_interval", _positive_float, 20.0, "seconds between server keepalive pings"),
    Option("ping_timeout", _positive_float, 20.0, "seconds to wait for a pong before closing"),
    Option("log_level", _choice("debug", "info", "warning", "error"), "info", "log level"),
    Option("log_format", _choice("text", "json"), "text", "log line format"),
)


@attrs.frozen
class Settings:
    """Every option resolved and validated; build it with ``load_settings``."""

    host: str
    port: int
    data_dir: Path
    database_url: str
    database_timeout: float
    redis_url: str | None
    jwt_secret: str
    access_token_ttl: int
    refresh_token_ttl: int
    direct_rate_limit: int
    group_rate_limit: int
    rate_window: float
    max_message_length: int
    max_upload_bytes: int
    max_image_pixels: int
    outbound_queue: int
    ping_interval: float
    ping_timeout: float
    log_level: str
    log_format: str

    @property
    def media_dir(self) -> Path:
        return self.data_dir / "media"

    @property
    def storage_backend(self) -> str:
        return (
            "postgres"
            if self.database_url.startswith(("postgres://", "postgresql://"))
            else ("sqlite")
        )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add a flag per option. Defaults stay None so the environment can fill the gaps."""
    for option in OPTIONS:
        parser.add_argument(
            option.flag, dest=option.name, default=None, help=f"{option.help} [{option.env}]"
        )


def load_settings(
    flags: Mapping[str, str | None] | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    prepare_data_dir: bool = True,
) -> Settings:
    """Resolve every option and validate it.

    With ``prepare_data_dir`` the data dir and its media folder are created and the JWT
    secret is read from (or generated into) ``<data_dir>/jwt-secret``. Raises
    ``ConfigError`` with a one-line message on anything unusable."""
    flags = flags or {}
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for option in OPTIONS:
        raw = flags.get(option.name)
        source = option.flag
        if raw is None:
            raw = environ.get(option.env)
            source = option.env
        if raw is None:
            values[option.name] = option.default
            continue
        try:
            values[option.name] = option.parse(str(raw))
        except ValueError as error:
            raise ConfigError(f"{source}={raw!r}: {error}") from None

    data_dir = Path(values["data_dir"]).expanduser().resolve()
    values["data_dir"] = data_dir
    if values["database_url"] is None:
        values["database_url"] = f"sqlite:///{data_dir / 'hubbub.db'}"
    check_database_url(values["database_url"])
    if values["redis_url"] is not None:
        check_redis_url(values["redis_url"])
    if prepare_data_dir:
        _prepare_data_dir(data_dir)
        if values["jwt_secret"] is None:
            values["jwt_secret"] = _load_or_create_secret(data_dir / "jwt-secret")
    elif values["jwt_secret"] is None:
        values["jwt_secret"] = secrets.token_urlsafe(48)
    if len(values["jwt_secret"]) < 32:
        raise ConfigError("HUBBUB_JWT_SECRET must be at least 32 characters")
    return Settings(**values)


def check_database_url(url: str) -> None:
    """Raise ``ConfigError`` unless ``url`` is a usable SQLite or PostgreSQL URL."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        if not parts.path or parts.path == "/":
            raise ConfigError(f"database URL {url!r} names no file: use sqlite:///path/to/file.db")
        return
    if parts.scheme in ("postgres", "postgresql"):
        try:
            _ = parts.port
        except ValueError:
            raise ConfigError(f"database URL {url!r} has a malformed port") from None
        if not parts.hostname and "host=" not in parts.query:
            raise ConfigError(f"database URL {url!r} names no host: postgresql://user@host/db")
        return
    raise ConfigError(
        f"database URL {url!r} is not understood: use sqlite:///path.db or postgresql://..."
    )


def check_redis_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(f"Redis URL {url!r} is not understood: use redis://host:port/db")
    try:
        _ = parts.port
    except ValueError:
        raise ConfigError(f"Redis URL {url!r} has a malformed port") from None


def _prepare_data_dir(data_dir: Path) -> None:
    try:
        (data_dir / "media").mkdir(parents=True, exist_ok=True)
        probe = data_dir / ".write-probe"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise ConfigError(
            f"data dir {str(data_dir)!r} is not writable ({error.strerror}): "
            "set HUBBUB_DATA_DIR or --data-dir to a folder you can write"
        ) from None


def _load_or_create_secret(path: Path) -> str:
    try:
        secret = path.read_text().strip()
        if secret:
            return secret
    except FileNotFoundError:
        pass
    secret = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    return secret


def describe(settings: Settings, *, hidden: Sequence[str] = ("jwt_secret",)) -> dict[str, Any]:
    """The settings as a plain dict for the start-up log, with secrets and passwords masked."""
    shown: dict[str, Any] = {}
    for field in attrs.fields(Settings):
        value = getattr(settings, field.name)
        if field.name in hidden:
            value = "***"
        elif field.name in ("database_url", "redis_url") and value:
            value = _mask_password(value)
        shown[field.name] = str(value) if isinstance(value, Path) else value
    return shown


def _mask_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)
