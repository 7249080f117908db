"""Settings: one attrs class, read from flags and ``HUBBUB_*`` environment variables.

Each field of ``Settings`` is declared once, with its parser, default and help text as
metadata (a ``Spec``); its environment variable (``HUBBUB_<NAME>``) and flag
(``--<name>``, underscores as dashes) come from the field's name. ``add_arguments``,
``load_settings`` and ``describe`` are derived from the fields, and a test keeps the
README's configuration table equal to them.

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
class Spec:
    """How one setting is read.

    ``default`` is text, as a flag or a variable would carry it, and goes through
    ``parse`` like them: the default is valid by the same rule, and the README shows it
    as it is. ``parse`` raises ``ValueError`` saying what is wrong. An empty default
    parses to None for a value worked out at load time; ``default_text`` then says what
    it will be (for ``--help`` and the README)."""

    parse: Callable[[str], Any]
    default: str
    help: str
    default_text: str | None = None

    @property
    def shown_default(self) -> str:
        """The default as ``--help`` and the README's table show it."""
        return self.default_text if self.default_text is not None else self.default


_SPEC_KEY = "hubbub.spec"


def spec(field: attrs.Attribute[Any]) -> Spec:
    """The ``Spec`` of one of ``attrs.fields(Settings)``."""
    return field.metadata[_SPEC_KEY]


def env_var(name: str) -> str:
    """``HUBBUB_<NAME>``: the environment variable of the setting ``name``."""
    return "HUBBUB_" + name.upper()


def flag(name: str) -> str:
    """``--<name>`` with dashes: the command-line flag of the setting ``name``."""
    return "--" + name.replace("_", "-")


def _setting(
    parse: Callable[[str], Any], default: str, help: str, *, default_text: str | None = None
) -> Any:
    return attrs.field(metadata={_SPEC_KEY: Spec(parse, default, help, default_text)})


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


def _optional_path(text: str) -> Path | None:
    return Path(text.strip()).expanduser().resolve() if text.strip() else None


def _directory(text: str) -> Path:
    # Resolved once, here: the node never changes directory, but a relative path in the
    # start-up log would not say where the data went.
    return Path(text).expanduser().resolve()


@attrs.frozen
class Settings:
    """Every setting resolved and validated; build it with ``load_settings``.

    The help texts are the README's configuration table (``meaning`` column), word for
    word; ``--help`` shows them without the Markdown backticks."""

    host: str = _setting(str, "127.0.0.1", "address to listen on")
    port: int = _setting(_port, "8000", "HTTP and WebSocket port (0: any free port)")
    workers: int = _setting(
        _positive_int,
        "1",
        "node processes sharing the port (SO_REUSEPORT), supervised; above 1 needs "
        "PostgreSQL and `HUBBUB_REDIS_URL` (each worker is a node, docs/scaling.md)",
    )
    # RUF009 takes _setting for a shared mutable default; it is an attrs field definition.
    data_dir: Path = _setting(  # noqa: RUF009
        _directory, "./hubbub-data", "SQLite file, `media/`, and the generated `jwt-secret`"
    )
    database_url: str = _setting(
        _optional_text,
        "",
        "`sqlite:///path.db` or `postgresql://user:pass@host:5432/db`",
        default_text="SQLite in the data dir",
    )
    database_timeout: float = _setting(
        _positive_float,
        "10",
        "seconds a database call may take before it counts as unavailable "
        "(`storage unavailable`, 503)",
    )
    redis_url: str | None = _setting(
        _optional_text,
        "",
        "`redis://host:6379/0`, for several nodes; "
        "`redis+cluster://host:port[,host:port...]` for a Redis Cluster",
        default_text="unset (one node)",
    )
    jwt_secret: str = _setting(
        _optional_text,
        "",
        "token signing key, at least 32 characters; set the same on every node "
        "(required with `HUBBUB_REDIS_URL`)",
        default_text="generated, kept in the data dir (one node only)",
    )
    access_token_ttl: int = _setting(_positive_int, "900", "access token lifetime, seconds")
    refresh_token_ttl: int = _setting(_positive_int, "2592000", "refresh token lifetime, seconds")
    # The product's own tokens (docs/integrations.md); hubbub.auth.product_keys loads them.
    jwt_public_key_file: Path | None = _setting(  # noqa: RUF009
        _optional_path,
        "",
        "PEM public key of the product's own tokens (RSA: RS256, EC P-256: ES256, Ed25519: "
        "EdDSA); needs `HUBBUB_JWT_ISSUER` and `HUBBUB_JWT_AUDIENCE`",
        default_text="unset (hubbub's tokens only)",
    )
    jwks_file: Path | None = _setting(  # noqa: RUF009
        _optional_path,
        "",
        "JWKS document of the product's keys, picked by `kid` (instead of a PEM key)",
        default_text="unset",
    )
    jwt_issuer: str | None = _setting(
        _optional_text, "", "the `iss` every product token must carry", default_text="unset"
    )
    jwt_audience: str | None = _setting(
        _optional_text, "", "the `aud` every product token must carry", default_text="unset"
    )
    direct_rate_limit: int = _setting(_positive_int, "20", "direct messages per user per window")
    group_rate_limit: int = _setting(_positive_int, "30", "group messages per user per window")
    rate_window: float = _setting(_positive_float, "60", "rate-limit window, seconds")
    max_message_length: int = _setting(_positive_int, "4000", "characters of text per message")
    max_upload_bytes: int = _setting(_positive_int, "10485760", "largest image upload")
    max_image_pixels: int = _setting(
        _positive_int,
        "25000000",
        "largest image accepted, width x height in pixels (413 past it, judged from the "
        "header before any decoding)",
    )
    outbound_queue: int = _setting(
        _positive_int,
        "512",
        "frames queued per connection before it is closed as too slow (1013)",
    )
    max_connections_per_user: int = _setting(
        _positive_int,
        "20",
        "WebSocket connections one user may hold on one node; past it the newest "
        'connection is refused with close 1008 "too many connections"',
    )
    ping_interval: float = _setting(
        _positive_float, "20", "seconds of silence before the server pings a connection"
    )
    ping_timeout: float = _setting(
        _positive_float,
        "20",
        "seconds to wait for the pong (or a stuck write) before closing",
    )
    drain_timeout: float = _setting(
        _positive_float,
        "10",
        "seconds a node stopped with SIGTERM may take to drain its connections before it exits",
    )
    ops_token: str | None = _setting(
        _optional_text,
        "",
        "operator credential: `Authorization: Bearer <token>` for the data of `/ops` "
        "(the operator page), beside any live server API key",
        default_text="unset",
    )
    stream_retention_days: float = _setting(
        _positive_float,
        "30",
        "days stream events are kept for resuming; older cursors get recovered: false",
    )
    stream_sweep_interval: float = _setting(
        _positive_float, "3600", "seconds between sweeps of expired stream events"
    )
    webhook_url: str | None = _setting(
        _optional_text,
        "",
        "`http(s)://...`: POST webhook events there (docs/integrations.md)",
        default_text="unset (no webhooks)",
    )
    webhook_secret: str | None = _setting(
        _optional_text,
        "",
        "HMAC-SHA256 key of the `X-Hubbub-Signature` header, at least 16 characters "
        "(required with `HUBBUB_WEBHOOK_URL`)",
        default_text="unset",
    )
    webhook_undelivered_after: float = _setting(
        _positive_float,
        "30",
        "seconds a direct message stays pending before `message.undelivered` is sent",
    )
    webhook_retry_horizon: float = _setting(
        _positive_float,
        "86400",
        "seconds a webhook event is retried (with back-off) before it is given up",
    )
    webhook_timeout: float = _setting(
        _positive_float,
        "5",
        "seconds the receiver has to answer a webhook POST before it counts as failed",
    )
    webhook_lease: float = _setting(
        _positive_float,
        "15",
        "seconds the node that sends webhooks holds its lease; another node takes over "
        "this long after it dies",
    )
    log_level: str = _setting(
        _choice("debug", "info", "warning", "error"),
        "info",
        "`debug`, `info`, `warning`, `error`",
    )
    log_format: str = _setting(
        _choice("text", "json"), "text", "`text`, or `json` for one JSON object per line"
    )

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
    """Add a flag per setting. Defaults stay None so the environment can fill the gaps."""
    for field in attrs.fields(Settings):
        about = spec(field)
        text = f"{about.help} (default: {about.shown_default}) [{env_var(field.name)}]"
        # argparse formats help with %: a literal one must be doubled.
        text = text.replace("`", "").replace("%", "%%")
        parser.add_argument(flag(field.name), dest=field.name, default=None, help=text)


def load_settings(
    flags: Mapping[str, str | None] | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    prepare_data_dir: bool = True,
) -> Settings:
    """Resolve every setting (flag, else environment, else default) and validate it.

    With ``prepare_data_dir`` the data dir and its media folder are created and the JWT
    secret is read from (or generated into) ``<data_dir>/jwt-secret``. With a Redis URL
    (several nodes) the secret must be given: one generated per node would make each
    node refuse the others' tokens. Raises ``ConfigError`` with a one-line message on
    anything unusable."""
    flags = flags or {}
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for field in attrs.fields(Settings):
        about = spec(field)
        raw = flags.get(field.name)
        source = flag(field.name)
        if raw is None:
            raw = environ.get(env_var(field.name))
            source = env_var(field.name)
        if raw is None:
            raw, source = about.default, f"the default of {field.name}"
        try:
            values[field.name] = about.parse(str(raw))
        except ValueError as error:
            raise ConfigError(f"{source}={raw!r}: {error}") from None

    data_dir: Path = values["data_dir"]
    if values["database_url"] is None:
        values["database_url"] = f"sqlite:///{data_dir / 'hubbub.db'}"
    check_database_url(values["database_url"])
    check_workers(values["workers"], values["database_url"], values["redis_url"])
    if values["redis_url"] is not None:
        check_redis_url(values["redis_url"])
        if values["jwt_secret"] is None:
            raise ConfigError(
                "HUBBUB_REDIS_URL is set (several nodes) but HUBBUB_JWT_SECRET is not: "
                "set HUBBUB_JWT_SECRET to the same value on every node"
            )
    check_product_keys(values)
    check_webhooks(values["webhook_url"], values["webhook_secret"])
    if prepare_data_dir:
        _prepare_data_dir(data_dir)
        if values["jwt_secret"] is None:
            values["jwt_secret"] = _load_or_create_secret(data_dir / "jwt-secret")
    elif values["jwt_secret"] is None:
        values["jwt_secret"] = secrets.token_urlsafe(48)
    if len(values["jwt_secret"]) < 32:
        raise ConfigError("HUBBUB_JWT_SECRET must be at least 32 characters")
    return Settings(**values)


def check_product_keys(values: Mapping[str, Any]) -> None:
    """Raise ``ConfigError`` unless the product-token settings go together: at most one
    of the two key files, and with one, both issuer and audience (a token is never
    accepted on its signature alone). The files themselves are read when a node starts
    (``hubbub.auth.product_keys``)."""
    files = [name for name in ("jwt_public_key_file", "jwks_file") if values[name] is not None]
    claims = [name for name in ("jwt_issuer", "jwt_audience") if values[name] is not None]
    if len(files) == 2:
        raise ConfigError(
            "HUBBUB_JWT_PUBLIC_KEY_FILE and HUBBUB_JWKS_FILE are both set: set one of them"
        )
    if files and len(claims) < 2:
        missing = [env_var(n) for n in ("jwt_issuer", "jwt_audience") if n not in claims]
        raise ConfigError(
            f"{env_var(files[0])} is set but {' and '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not: a product token is checked "
            "against both"
        )
    if claims and not files:
        raise ConfigError(
            f"{env_var(claims[0])} is set but no key to check product tokens with: set "
            "HUBBUB_JWT_PUBLIC_KEY_FILE or HUBBUB_JWKS_FILE"
        )


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


def check_workers(workers: int, database_url: str, redis_url: str | None) -> None:
    """Raise ``ConfigError`` if ``workers`` > 1 cannot share state: each worker is a node
    of its own, and nodes share only through PostgreSQL and Redis."""
    if workers == 1:
        return
    missing = [
        what
        for what, absent in (
            ("PostgreSQL (HUBBUB_DATABASE_URL is SQLite)", not database_url.startswith("postgres")),
            ("HUBBUB_REDIS_URL (unset)", redis_url is None),
        )
        if absent
    ]
    if missing:
        raise ConfigError(
            f"--workers {workers} runs {workers} separate nodes, which share state only "
            f"through PostgreSQL and Redis: missing {' and '.join(missing)}"
        )


def check_redis_url(url: str) -> None:
    """Raise ``ConfigError`` unless ``url`` is a ``redis://``, ``rediss://`` or ``unix://``
    URL with a well-formed port, or a well-formed Redis Cluster URL (``cluster_nodes``)."""
    parts = urlsplit(url)
    if parts.scheme in CLUSTER_SCHEMES:
        cluster_nodes(url)
        return
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(
            f"Redis URL {url!r} is not understood: use redis://host:port/db, "
            "or redis+cluster://host:port[,host:port...] for a Redis Cluster"
        )
    try:
        _ = parts.port
    except ValueError:
        raise ConfigError(f"Redis URL {url!r} has a malformed port") from None


def check_webhooks(url: str | None, secret: str | None) -> None:
    """Raise ``ConfigError`` unless webhooks are off, or have an http(s) URL with a host
    and a secret of at least 16 characters."""
    if url is None:
        return
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"HUBBUB_WEBHOOK_URL {url!r} is not understood: use http(s)://host[:port]/path"
        )
    try:
        _ = parts.port
    except ValueError:
        raise ConfigError(f"HUBBUB_WEBHOOK_URL {url!r} has a malformed port") from None
    if secret is None:
        raise ConfigError(
            "HUBBUB_WEBHOOK_URL is set but HUBBUB_WEBHOOK_SECRET is not: set it to a long "
            "random string your receiver knows (it signs every webhook)"
        )
    if len(secret) < 16:
        raise ConfigError("HUBBUB_WEBHOOK_SECRET must be at least 16 characters")


#: URL schemes that select a Redis Cluster (the second one with TLS).
CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")


def is_cluster_url(url: str) -> bool:
    """Whether ``url`` names a Redis Cluster rather than one Redis server."""
    return urlsplit(url).scheme in CLUSTER_SCHEMES


def cluster_nodes(url: str) -> list[tuple[str, int]]:
    """The start-up nodes of ``redis+cluster://[user:password@]host:port[,host:port...]``
    (any of a cluster's masters will do; the client learns the rest from them). Raises
    ``ConfigError`` on a malformed list, a missing port or a database number (a cluster
    has only database 0)."""
    parts = urlsplit(url)
    usage = "use redis+cluster://host:port[,host:port...]"
    if parts.scheme not in CLUSTER_SCHEMES:
        raise ConfigError(f"Redis Cluster URL {url!r} is not understood: {usage}")
    if parts.path not in ("", "/", "/0") or parts.query:
        raise ConfigError(f"Redis Cluster URL {url!r}: a cluster has no databases but 0; {usage}")
    hosts = parts.netloc.rpartition("@")[2]
    nodes = []
    for entry in hosts.split(","):
        host, _, port = entry.strip().rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"Redis Cluster URL {url!r}: {entry!r} is not host:port; {usage}")
        nodes.append((host.strip("[]"), int(port)))
    return nodes


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


def describe(
    settings: Settings, *, hidden: Sequence[str] = ("jwt_secret", "ops_token", "webhook_secret")
) -> dict[str, Any]:
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
