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
from urllib.parse import unquote, urlsplit

from hubbub.storage.base import Storage
from hubbub.storage.errors import Conflict, InvalidData, StorageError, StorageUnavailable
from hubbub.storage.records import (
    DirectMessage,
    Group,
    GroupMember,
    GroupMessage,
    MemberRole,
    MessageStatus,
    NewDirectMessage,
    NewGroupMessage,
    StoredDirect,
    StoredGroup,
    User,
    UserRef,
)
from hubbub.storage.sqlite import open_sqlite

__all__ = [
    "Conflict",
    "DirectMessage",
    "Group",
    "GroupMember",
    "GroupMessage",
    "InvalidData",
    "MemberRole",
    "MessageStatus",
    "NewDirectMessage",
    "NewGroupMessage",
    "Storage",
    "StorageError",
    "StorageUnavailable",
    "StoredDirect",
    "StoredGroup",
    "User",
    "UserRef",
    "open_storage",
]

_ACCEPTED = (
    "use sqlite:///relative/path.db, sqlite:////absolute/path.db,"
    " or postgresql://user:password@host:port/database (postgres:// also works)"
)


def _sqlite_path(url: str) -> Path:
    parts = urlsplit(url)
    # "sqlite:///x" has an empty host and the path "/x", which names "x" (relative);
    # "sqlite:////x" has the path "//x", which names "/x".
    if parts.netloc or not parts.path.startswith("/") or parts.query or parts.fragment:
        raise ValueError(f"malformed SQLite URL {url!r}: {_ACCEPTED}")
    path = unquote(parts.path[1:])
    if not path or path.endswith("/"):
        raise ValueError(f"SQLite URL {url!r} names no file: {_ACCEPTED}")
    return Path(path)


def _check_postgres_url(url: str) -> None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError for a non-numeric port
    except ValueError as exc:
        raise ValueError(f"malformed PostgreSQL URL: {exc}; {_ACCEPTED}") from None
    if not parts.hostname and "host=" not in parts.query:
        raise ValueError(f"PostgreSQL URL names no host: {_ACCEPTED}")


@asynccontextmanager
async def open_storage(
    database_url: str, *, timeout: float = 10.0, pool_size: int = 10
) -> AsyncIterator[Storage]:
    """Connect to the database named by ``database_url`` and close everything on exit.

    Does not migrate: call ``await storage.migrate()``. Raises ``ValueError`` for a URL of
    another form, and ``StorageUnavailable`` if the database cannot be reached within
    ``timeout`` seconds. ``timeout`` also bounds every later PostgreSQL call, and how long
    an SQLite write waits for another process's lock. ``pool_size`` is the most PostgreSQL
    connections held at once (ignored for SQLite, which uses one)."""
    scheme = database_url.partition("://")[0].lower() if "://" in database_url else ""
    if scheme == "sqlite":
        async with open_sqlite(_sqlite_path(database_url), busy_timeout=timeout) as storage:
            yield storage
    elif scheme in ("postgresql", "postgres"):
        _check_postgres_url(database_url)
        # Imported here: trio-asyncio patches asyncio's loop functions when imported, and a
        # node on SQLite has no reason to load it (or asyncpg).
        from hubbub.storage.postgres import open_postgres

        async with open_postgres(database_url, pool_size=pool_size, timeout=timeout) as storage:
            yield storage
    else:
        raise ValueError(f"unsupported database URL scheme {scheme or '(none)'!r}: {_ACCEPTED}")
