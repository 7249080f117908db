"""Storage: one async interface (``Storage``), two backends, chosen by URL.

Usage::

    async with open_storage("sqlite:///hubbub.db") as storage:
        await storage.migrate()

Callers catch ``StorageError`` and its subclasses, never a driver's exceptions.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Literal
from urllib.parse import SplitResult, unquote, urlsplit, urlunsplit

import attrs

from hubbub.storage import records
from hubbub.storage.errors import Conflict, InvalidData, StorageError, StorageUnavailable
from hubbub.storage.interface import Storage
from hubbub.storage.records import *  # noqa: F403 -- the records are part of the interface
from hubbub.storage.sqlite import open_sqlite

__all__ = [
    *records.__all__,
    "Conflict",
    "DatabaseUrl",
    "DatabaseUrlError",
    "InvalidData",
    "Storage",
    "StorageError",
    "StorageUnavailable",
    "open_storage",
    "parse_database_url",
]

_ACCEPTED = (
    "use sqlite:///relative/path.db, sqlite:////absolute/path.db,"
    " or postgresql://user:password@host:port/database (postgres:// also works)"
)


class DatabaseUrlError(ValueError):
    """A database URL hubbub cannot use. The message is one line that says what to fix,
    and never shows a password."""


@attrs.frozen
class DatabaseUrl:
    """A database URL understood: which backend, and what to open."""

    backend: Literal["sqlite", "postgres"]
    #: SQLite: the database file (relative to the working directory unless absolute).
    path: Path | None = None
    #: PostgreSQL: the URL as given, for the driver.
    dsn: str | None = None


def parse_database_url(url: str) -> DatabaseUrl:
    """The backend and target of ``url``, or ``DatabaseUrlError``.

    Accepted: ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` (a file name,
    no host, query or fragment), and ``postgresql://`` or ``postgres://`` URLs with a host
    (in the authority, or as ``?host=`` for a Unix socket) and a numeric port if any."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. an unbalanced "[" in the host
        raise DatabaseUrlError(f"malformed database URL ({exc}): {_ACCEPTED}") from None
    if parts.scheme == "sqlite":
        return DatabaseUrl("sqlite", path=_sqlite_path(url, parts))
    if parts.scheme in ("postgresql", "postgres"):
        _check_postgres_url(parts)
        return DatabaseUrl("postgres", dsn=url)
    raise DatabaseUrlError(
        f"unsupported database URL scheme {parts.scheme or '(none)'!r}: {_ACCEPTED}"
    )


def _sqlite_path(url: str, parts: SplitResult) -> Path:
    # "sqlite:///x" has an empty host and the path "/x", which names "x" (relative);
    # "sqlite:////x" has the path "//x", which names "/x".
    if parts.netloc or not parts.path.startswith("/") or parts.query or parts.fragment:
        raise DatabaseUrlError(f"malformed SQLite URL {url!r}: {_ACCEPTED}")
    path = unquote(parts.path[1:])
    if not path or path.endswith("/"):
        raise DatabaseUrlError(f"SQLite URL {url!r} names no file: {_ACCEPTED}")
    return Path(path)


def _check_postgres_url(parts: SplitResult) -> None:
    shown = _without_password(parts)
    try:
        parts.port  # noqa: B018 -- raises ValueError for a non-numeric or out-of-range port
    except ValueError:
        raise DatabaseUrlError(
            f"PostgreSQL URL {shown!r} has a malformed port: {_ACCEPTED}"
        ) from None
    if not parts.hostname and "host=" not in parts.query:
        raise DatabaseUrlError(f"PostgreSQL URL {shown!r} names no host: {_ACCEPTED}")


def _without_password(parts: SplitResult) -> str:
    user, at, host = parts.netloc.rpartition("@")
    if at and ":" in user:
        user = user.partition(":")[0] + ":***"
    return urlunsplit(parts._replace(netloc=f"{user}{at}{host}"))


@asynccontextmanager
async def open_storage(
    database_url: str, *, timeout: float = 10.0, pool_size: int = 10
) -> AsyncIterator[Storage]:
    """Connect to the database named by ``database_url`` and close everything on exit.

    Does not migrate: call ``await storage.migrate()``. Raises ``DatabaseUrlError`` (a
    ``ValueError``) for a URL ``parse_database_url`` refuses, and ``StorageUnavailable``
    if the database cannot be reached within ``timeout`` seconds. ``timeout`` also bounds
    every later call (see ``open_sqlite`` for what it bounds there). ``pool_size`` is the
    most PostgreSQL connections held at once (ignored for SQLite, which uses one)."""
    target = parse_database_url(database_url)
    if target.path is not None:
        async with open_sqlite(target.path, timeout=timeout) as storage:
            yield storage
    else:
        # Imported here: a node on SQLite has no reason to load asyncpg.
        from hubbub.storage.postgres import open_postgres

        async with open_postgres(database_url, pool_size=pool_size, timeout=timeout) as storage:
            yield storage
