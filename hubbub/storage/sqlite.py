"""The embedded backend: one SQLite file, stdlib ``sqlite3`` in worker threads.

One connection serves every call, one call at a time (a ``trio.Lock``), each in a worker
thread so the event loop never blocks. WAL mode with ``synchronous=FULL`` makes a returned
write durable: the commit has been fsynced to the write-ahead log, so a SIGKILL or power cut
right after loses nothing. Timestamps are stored as INTEGER microseconds since the epoch.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import trio

from hubbub.storage.base import Storage
from hubbub.storage.errors import Conflict, StorageError, StorageUnavailable
from hubbub.storage.migrate import load_migrations
from hubbub.storage.records import (
    DirectMessage,
    Group,
    GroupMember,
    GroupMessage,
    MemberRole,
    NewDirectMessage,
    NewGroupMessage,
    StoredDirect,
    StoredGroup,
    User,
    UserRef,
)

T = TypeVar("T")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_NO_UPPER_BOUND = 2**63 - 1

_USER = "id, username, email, password_hash, created_at, last_seen"
_DIRECT = "id, author_id, recipient_id, body, image_url, client_id, status, created_at"
_GROUP = "id, name, created_by, created_at"
_GROUP_MESSAGE = "id, group_id, author_id, body, image_url, client_id, created_at"
_MEMBER = (
    "m.group_id, m.user_id, u.username, m.role, m.last_read_message_id, m.joined_at"
    " FROM group_members m JOIN users u ON u.id = m.user_id"
)

# The text after "UNIQUE constraint failed: " for each rule callers may hit.
_CONFLICTS = {
    "users.username": "username",
    "users.email": "email",
    "group_members.group_id, group_members.user_id": "member",
}
# Error codes that mean the database cannot serve now, as opposed to a refused statement.
_UNAVAILABLE = ("SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_IOERR", "SQLITE_FULL", "SQLITE_CANTOPEN")


def _micros(when: datetime) -> int:
    if when.tzinfo is None:
        raise ValueError("storage needs timezone-aware datetimes; got a naive one")
    return (when - _EPOCH) // _MICROSECOND


def _datetime(micros: int) -> datetime:
    return _EPOCH + micros * _MICROSECOND


def _now() -> int:
    return _micros(datetime.now(UTC))


def _user(row: tuple) -> User:
    *head, created_at, last_seen = row
    return User(*head, _datetime(created_at), None if last_seen is None else _datetime(last_seen))


def _direct(row: tuple) -> DirectMessage:
    return DirectMessage(*row[:-1], _datetime(row[-1]))


def _group(row: tuple) -> Group:
    return Group(*row[:-1], _datetime(row[-1]))


def _group_message(row: tuple) -> GroupMessage:
    return GroupMessage(*row[:-1], _datetime(row[-1]))


def _member(row: tuple) -> GroupMember:
    return GroupMember(*row[:-1], _datetime(row[-1]))


def _id_list(ids: Iterable[int]) -> str:
    """Ids as a JSON array, for ``IN (SELECT value FROM json_each(?))``: no limit on count."""
    return json.dumps([int(i) for i in ids])


def _translate(exc: sqlite3.Error) -> StorageError:
    message = str(exc)
    if isinstance(exc, sqlite3.IntegrityError):
        field = _CONFLICTS.get(message.removeprefix("UNIQUE constraint failed: "))
        if field is not None:
            return Conflict(field)
        if "FOREIGN KEY" in message:
            return StorageError("the user, group or message referred to does not exist")
        return StorageError(f"SQLite refused the write: {message}")
    if getattr(exc, "sqlite_errorname", "").startswith(_UNAVAILABLE):
        return StorageUnavailable(f"SQLite cannot serve now ({message}); check the disk")
    return StorageError(f"SQLite error: {message}")


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE (take the write lock now, so no other process can slip in between our
    read and our write), COMMIT on success, ROLLBACK on any failure including of COMMIT."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _statements(script: str) -> Iterator[str]:
    """Split a migration into statements (``execute`` takes one; ``executescript`` would
    commit our transaction first)."""
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            yield pending
            pending = ""
    if pending.strip():
        yield pending  # a trailing comment, or an unterminated statement sqlite will reject


def _insert_idempotent(
    conn: sqlite3.Connection, table: str, columns: str, values: tuple, returning: str
) -> tuple[tuple, bool]:
    """Insert one message unless its (author_id, client_id) exists; the stored row either way.

    Expects ``values`` to start with ``author_id`` and to end with ``client_id``."""
    placeholders = ", ".join("?" * len(values))
    rows = conn.execute(
        f"INSERT INTO {table} ({columns}) VALUES ({placeholders})"
        f" ON CONFLICT (author_id, client_id) DO NOTHING RETURNING {returning}",
        values,
    ).fetchall()
    if rows:
        return rows[0], True
    existing = conn.execute(
        f"SELECT {returning} FROM {table} WHERE author_id = ? AND client_id = ?",
        (values[0], values[-1]),
    ).fetchall()
    return existing[0], False


class SqliteStorage(Storage):
    """``Storage`` on one SQLite connection. Build it with ``open_sqlite``."""

    backend = "sqlite"

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._lock = trio.Lock()

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` in a worker thread, alone on the connection."""
        async with self._lock:
            try:
                return await trio.to_thread.run_sync(fn, *args)
            except sqlite3.Error as exc:
                raise _translate(exc) from exc

    async def _rows(self, sql: str, *params: Any) -> list[tuple]:
        return await self._run(lambda: self._conn.execute(sql, params).fetchall())

    async def _close(self) -> None:
        async with self._lock:
            await trio.to_thread.run_sync(self._conn.close)

    # -- lifecycle -------------------------------------------------------

    async def migrate(self) -> int:
        return await self._run(self._migrate)

    def _migrate(self) -> int:
        conn = self._conn
        for migration in load_migrations("sqlite"):
            with _transaction(conn):
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations"
                    " (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL) STRICT"
                )
                applied = conn.execute(
                    "SELECT 1 FROM schema_migrations WHERE version = ?", (migration.version,)
                ).fetchall()
                if applied:
                    continue
                for statement in _statements(migration.sql):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                    (migration.version, _now()),
                )
        return self._schema_version()

    async def schema_version(self) -> int:
        return await self._run(self._schema_version)

    def _schema_version(self) -> int:
        exists = self._conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
        ).fetchall()
        if not exists:
            return 0
        return self._conn.execute(
            "SELECT coalesce(max(version), 0) FROM schema_migrations"
        ).fetchall()[0][0]

    async def ping(self) -> None:
        await self._rows("SELECT 1")

    # -- users -----------------------------------------------------------

    async def create_user(self, username: str, email: str, password_hash: str) -> User:
        rows = await self._rows(
            "INSERT INTO users (username, email, password_hash, created_at)"
            f" VALUES (?, ?, ?, ?) RETURNING {_USER}",
            username,
            email,
            password_hash,
            _now(),
        )
        return _user(rows[0])

    async def user_by_id(self, user_id: int) -> User | None:
        rows = await self._rows(f"SELECT {_USER} FROM users WHERE id = ?", user_id)
        return _user(rows[0]) if rows else None

    async def user_by_username(self, username: str) -> User | None:
        # The column is COLLATE NOCASE, so = compares case-insensitively and uses the index.
        rows = await self._rows(f"SELECT {_USER} FROM users WHERE username = ?", username)
        return _user(rows[0]) if rows else None

    async def list_users(self) -> list[UserRef]:
        rows = await self._rows("SELECT id, username FROM users ORDER BY id")
        return [UserRef(*row) for row in rows]

    async def usernames(self, user_ids: Iterable[int]) -> dict[int, str]:
        rows = await self._rows(
            "SELECT id, username FROM users WHERE id IN (SELECT value FROM json_each(?))",
            _id_list(user_ids),
        )
        return dict(rows)

    async def set_last_seen(self, user_id: int, when: datetime) -> None:
        await self._rows("UPDATE users SET last_seen = ? WHERE id = ?", _micros(when), user_id)

    # -- direct messages -------------------------------------------------

    async def store_direct_messages(
        self, batch: Sequence[NewDirectMessage], delivered_ids: Sequence[int] = ()
    ) -> list[StoredDirect]:
        return await self._run(self._store_direct, list(batch), list(delivered_ids))

    def _store_direct(
        self, batch: list[NewDirectMessage], delivered_ids: list[int]
    ) -> list[StoredDirect]:
        now = _now()
        stored = []
        with _transaction(self._conn):
            if delivered_ids:
                self._mark_delivered(delivered_ids)
            for m in batch:
                row, created = _insert_idempotent(
                    self._conn,
                    "direct_messages",
                    "author_id, recipient_id, body, image_url, created_at, client_id",
                    (m.author_id, m.recipient_id, m.body, m.image_url, now, m.client_id),
                    _DIRECT,
                )
                stored.append(StoredDirect(_direct(row), created))
        return stored

    async def mark_delivered(self, message_ids: Sequence[int]) -> None:
        if message_ids:
            await self._run(self._mark_delivered, list(message_ids))

    def _mark_delivered(self, message_ids: list[int]) -> None:
        self._conn.execute(
            "UPDATE direct_messages SET status = 'delivered' WHERE status = 'pending'"
            " AND id IN (SELECT value FROM json_each(?))",
            (_id_list(message_ids),),
        )

    async def direct_message(self, message_id: int) -> DirectMessage | None:
        rows = await self._rows(f"SELECT {_DIRECT} FROM direct_messages WHERE id = ?", message_id)
        return _direct(rows[0]) if rows else None

    async def direct_by_client_id(self, author_id: int, client_id: str) -> DirectMessage | None:
        rows = await self._rows(
            f"SELECT {_DIRECT} FROM direct_messages WHERE author_id = ? AND client_id = ?",
            author_id,
            client_id,
        )
        return _direct(rows[0]) if rows else None

    async def group_by_client_id(self, author_id: int, client_id: str) -> GroupMessage | None:
        rows = await self._rows(
            f"SELECT {_GROUP_MESSAGE} FROM group_messages WHERE author_id = ? AND client_id = ?",
            author_id,
            client_id,
        )
        return _group_message(rows[0]) if rows else None

    async def mark_read(self, message_id: int) -> DirectMessage | None:
        rows = await self._rows(
            f"UPDATE direct_messages SET status = 'read' WHERE id = ? RETURNING {_DIRECT}",
            message_id,
        )
        return _direct(rows[0]) if rows else None

    async def pending_direct_messages(self, recipient_id: int, limit: int) -> list[DirectMessage]:
        rows = await self._rows(
            f"SELECT {_DIRECT} FROM direct_messages WHERE recipient_id = ?"
            " AND status = 'pending' ORDER BY id LIMIT ?",
            recipient_id,
            max(limit, 0),
        )
        return [_direct(row) for row in rows]

    async def direct_history(
        self, user_id: int, other_id: int, before: int | None, limit: int
    ) -> list[DirectMessage]:
        # The expressions match direct_messages_conversation_idx, so this is one index range.
        rows = await self._rows(
            f"SELECT {_DIRECT} FROM direct_messages"
            " WHERE min(author_id, recipient_id) = ? AND max(author_id, recipient_id) = ?"
            " AND id < ? ORDER BY id DESC LIMIT ?",
            min(user_id, other_id),
            max(user_id, other_id),
            _NO_UPPER_BOUND if before is None else before,
            max(limit, 0),
        )
        return [_direct(row) for row in reversed(rows)]

    async def conversation_partners(self, user_id: int) -> set[int]:
        rows = await self._rows(
            "SELECT recipient_id FROM direct_messages WHERE author_id = ?"
            " UNION SELECT author_id FROM direct_messages WHERE recipient_id = ?",
            user_id,
            user_id,
        )
        return {row[0] for row in rows} - {user_id}

    # -- groups ----------------------------------------------------------

    async def create_group(self, name: str, creator_id: int) -> Group:
        return await self._run(self._create_group, name, creator_id)

    def _create_group(self, name: str, creator_id: int) -> Group:
        now = _now()
        with _transaction(self._conn):
            row = self._conn.execute(
                f"INSERT INTO groups (name, created_by, created_at) VALUES (?, ?, ?)"
                f" RETURNING {_GROUP}",
                (name, creator_id, now),
            ).fetchall()[0]
            self._conn.execute(
                "INSERT INTO group_members (group_id, user_id, role, joined_at)"
                " VALUES (?, ?, 'admin', ?)",
                (row[0], creator_id, now),
            )
        return _group(row)

    async def group(self, group_id: int) -> Group | None:
        rows = await self._rows(f"SELECT {_GROUP} FROM groups WHERE id = ?", group_id)
        return _group(rows[0]) if rows else None

    async def add_member(self, group_id: int, user_id: int, role: MemberRole = "member") -> None:
        await self._rows(
            "INSERT INTO group_members (group_id, user_id, role, last_read_message_id, joined_at)"
            " VALUES (?, ?, ?, (SELECT coalesce(max(id), 0) FROM group_messages"
            " WHERE group_id = ?), ?)",
            group_id,
            user_id,
            role,
            group_id,
            _now(),
        )

    async def remove_member(self, group_id: int, user_id: int) -> bool:
        rows = await self._rows(
            "DELETE FROM group_members WHERE group_id = ? AND user_id = ? RETURNING 1",
            group_id,
            user_id,
        )
        return bool(rows)

    async def set_member_role(self, group_id: int, user_id: int, role: MemberRole) -> bool:
        rows = await self._rows(
            "UPDATE group_members SET role = ? WHERE group_id = ? AND user_id = ? RETURNING 1",
            role,
            group_id,
            user_id,
        )
        return bool(rows)

    async def group_members(self, group_id: int) -> list[GroupMember]:
        rows = await self._rows(
            f"SELECT {_MEMBER} WHERE m.group_id = ? ORDER BY m.user_id", group_id
        )
        return [_member(row) for row in rows]

    async def member(self, group_id: int, user_id: int) -> GroupMember | None:
        rows = await self._rows(
            f"SELECT {_MEMBER} WHERE m.group_id = ? AND m.user_id = ?", group_id, user_id
        )
        return _member(rows[0]) if rows else None

    async def groups_of(self, user_id: int) -> list[Group]:
        rows = await self._rows(
            "SELECT g.id, g.name, g.created_by, g.created_at FROM groups g"
            " JOIN group_members m ON m.group_id = g.id WHERE m.user_id = ? ORDER BY g.id",
            user_id,
        )
        return [_group(row) for row in rows]

    async def co_members(self, user_id: int) -> set[int]:
        rows = await self._rows(
            "SELECT DISTINCT other.user_id FROM group_members mine"
            " JOIN group_members other ON other.group_id = mine.group_id"
            " WHERE mine.user_id = ? AND other.user_id <> ?",
            user_id,
            user_id,
        )
        return {row[0] for row in rows}

    async def store_group_messages(self, batch: Sequence[NewGroupMessage]) -> list[StoredGroup]:
        return await self._run(self._store_group, list(batch))

    def _store_group(self, batch: list[NewGroupMessage]) -> list[StoredGroup]:
        now = _now()
        stored = []
        with _transaction(self._conn):
            for m in batch:
                row, created = _insert_idempotent(
                    self._conn,
                    "group_messages",
                    "author_id, group_id, body, image_url, created_at, client_id",
                    (m.author_id, m.group_id, m.body, m.image_url, now, m.client_id),
                    _GROUP_MESSAGE,
                )
                stored.append(StoredGroup(_group_message(row), created))
        return stored

    async def group_history(
        self, group_id: int, before: int | None, limit: int
    ) -> list[GroupMessage]:
        rows = await self._rows(
            f"SELECT {_GROUP_MESSAGE} FROM group_messages WHERE group_id = ? AND id < ?"
            " ORDER BY id DESC LIMIT ?",
            group_id,
            _NO_UPPER_BOUND if before is None else before,
            max(limit, 0),
        )
        return [_group_message(row) for row in reversed(rows)]

    async def group_messages_after(
        self, group_id: int, after_id: int, limit: int
    ) -> list[GroupMessage]:
        rows = await self._rows(
            f"SELECT {_GROUP_MESSAGE} FROM group_messages WHERE group_id = ? AND id > ?"
            " ORDER BY id LIMIT ?",
            group_id,
            after_id,
            max(limit, 0),
        )
        return [_group_message(row) for row in rows]

    async def latest_group_message_id(self, group_id: int) -> int:
        rows = await self._rows(
            "SELECT coalesce(max(id), 0) FROM group_messages WHERE group_id = ?", group_id
        )
        return rows[0][0]

    async def advance_group_read(self, group_id: int, user_id: int, message_id: int) -> int | None:
        rows = await self._rows(
            "UPDATE group_members SET last_read_message_id = max(last_read_message_id,"
            " min(?, (SELECT coalesce(max(id), 0) FROM group_messages WHERE group_id = ?)))"
            " WHERE group_id = ? AND user_id = ? RETURNING last_read_message_id",
            message_id,
            group_id,
            group_id,
            user_id,
        )
        return rows[0][0] if rows else None


def _connect(path: Path, busy_timeout: float) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    # isolation_level=None: we issue BEGIN/COMMIT ourselves. check_same_thread=False: each
    # call may land on a different worker thread; the lock keeps them one at a time.
    conn = sqlite3.connect(
        path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
    )
    try:
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchall()[0][0]
        if mode != "wal":
            raise sqlite3.OperationalError(f"could not switch {path} to WAL mode (got {mode})")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
    except BaseException:
        conn.close()
        raise
    return conn


@asynccontextmanager
async def open_sqlite(path: Path, *, busy_timeout: float = 10.0) -> AsyncIterator[SqliteStorage]:
    """Open (creating it and its folder if missing) the database file at ``path``; close it
    on exit. Does not migrate. Raises ``StorageUnavailable`` if the file cannot be opened.

    ``busy_timeout`` bounds how long a write waits for another process's write lock."""
    try:
        conn = await trio.to_thread.run_sync(_connect, path, busy_timeout)
    except (OSError, sqlite3.Error) as exc:
        raise StorageUnavailable(f"cannot open the SQLite database {path}: {exc}") from exc
    storage = SqliteStorage(conn)
    try:
        yield storage
    finally:
        # Even when cancelled: the in-flight call finishes, then the file is closed cleanly.
        with trio.CancelScope(shield=True):
            await storage._close()
