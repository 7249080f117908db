"""The embedded backend: one SQLite file, stdlib ``sqlite3`` in worker threads.

One connection serves every call, one call at a time, each in a worker thread so the event
loop never blocks, and each within the storage's timeout (``sqlite_calls`` says exactly
what that bounds). WAL mode with ``synchronous=FULL`` makes a returned write durable: the
commit has been fsynced to the write-ahead log, so a SIGKILL or power cut right after loses
nothing. Timestamps are stored as INTEGER microseconds since the epoch.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import attrs
import trio

from hubbub.storage import records, sql, values
from hubbub.storage.errors import Conflict, InvalidData, StorageError, StorageUnavailable
from hubbub.storage.migrate import load_migrations
from hubbub.storage.refresh_tokens import decide
from hubbub.storage.sqlite_calls import SqliteCalls

T = TypeVar("T")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
# The text after "UNIQUE constraint failed: " for each rule callers may hit.
_CONFLICTS = {
    "users.username": "username",
    "users.email": "email",
    "group_members.group_id, group_members.user_id": "member",
}
_MIGRATION_TIMEOUT = 120.0
# Error codes that mean the database cannot serve now, as opposed to a refused statement.
_UNAVAILABLE = ("SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_IOERR", "SQLITE_FULL", "SQLITE_CANTOPEN")


def _micros(when: datetime) -> int:
    if when.tzinfo is None:
        raise ValueError("storage needs timezone-aware datetimes; got a naive one")
    return (when - _EPOCH) // _MICROSECOND


def _datetime(value: Any) -> datetime:
    return _EPOCH + value * _MICROSECOND


def _now() -> int:
    return _micros(datetime.now(UTC))


def _id_list(ids: Iterable[int]) -> str:
    """Ids as a JSON array, for ``IN (SELECT value FROM json_each(?))``: no limit on count."""
    return json.dumps([int(i) for i in ids])


def _translate(exc: Exception) -> StorageError:
    """The storage error for what sqlite3 raised (``sqlite_calls.SQLITE_FAILURES``)."""
    message = str(exc)
    if isinstance(exc, sqlite3.IntegrityError):
        field = _CONFLICTS.get(message.removeprefix("UNIQUE constraint failed: "))
        if field is not None:
            return Conflict(field)
        if "FOREIGN KEY" in message:
            return InvalidData("the user, group or message referred to does not exist")
        return InvalidData(f"SQLite refused the data: {message}")
    if isinstance(exc, (sqlite3.DataError, OverflowError, UnicodeEncodeError)):
        return InvalidData(f"SQLite cannot hold the data: {message}")
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
        # Twice at most: the deadline's interrupt (see sqlite_calls) may hit the first
        # ROLLBACK, and the connection must never stay inside a transaction.
        for _ in range(2):
            if not conn.in_transaction:
                break
            with contextlib.suppress(sqlite3.OperationalError):
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


@attrs.frozen
class _MessageKind:
    """How one kind of message is stored: one idempotent INSERT per message, inside the
    batch's transaction (SQLite statements cost no round trip)."""

    #: The fields of the new message record, each stored in the column of its name.
    fields: tuple[str, ...]
    insert: str
    existing: str
    to_record: Callable[[Any, sql.Stamp], Any]
    answer: Callable[[Any, bool], Any]

    @classmethod
    def of(cls, table: str, new: type, returning: str, to_record: Any, answer: Any) -> _MessageKind:
        fields = tuple(field.name for field in attrs.fields(new))
        columns = ", ".join((*fields, "created_at"))
        placeholders = ", ".join("?" * (len(fields) + 1))
        insert = (
            f"INSERT INTO {table} ({columns}) VALUES ({placeholders})"
            f" ON CONFLICT (author_id, client_id) DO NOTHING RETURNING {returning}"
        )
        existing = f"SELECT {returning} FROM {table} WHERE author_id = ? AND client_id = ?"
        return cls(fields, insert, existing, to_record, answer)

    def store(self, conn: sqlite3.Connection, message: Any, now: int) -> Any:
        """Insert ``message`` unless its (author_id, client_id) exists; answer the stored
        row either way, and whether this call created it."""
        params = (*(getattr(message, field) for field in self.fields), now)
        rows = conn.execute(self.insert, params).fetchall()
        created = bool(rows)
        if not created:
            rows = conn.execute(self.existing, (message.author_id, message.client_id)).fetchall()
        return self.answer(self.to_record(rows[0], _datetime), created)


_DIRECT = _MessageKind.of(
    "direct_messages", records.NewDirectMessage, sql.DIRECT, sql.to_direct, records.StoredDirect
)
_GROUP = _MessageKind.of(
    "group_messages",
    records.NewGroupMessage,
    sql.GROUP_MESSAGE,
    sql.to_group_message,
    records.StoredGroup,
)


class SqliteStorage(sql.SqlStorage):
    """``Storage`` on one SQLite connection. Build it with ``open_sqlite``."""

    backend = "sqlite"

    def __init__(self, conn: sqlite3.Connection, timeout: float) -> None:
        self._conn = conn
        self._calls = SqliteCalls(conn, timeout, _translate)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)``, a write, alone on the connection (see ``sqlite_calls``)."""
        return await self._calls.run(fn, *args)

    async def _rows(self, statement: str, *params: Any) -> list[tuple]:
        # Only what starts with SELECT counts as a read, to be abandoned at the deadline.
        return await self._calls.run(
            lambda: self._conn.execute(statement, params).fetchall(),
            writes=not statement.startswith("SELECT"),
        )

    _sql = sql.sqlite_queries(
        # The column is COLLATE NOCASE, so = compares case-insensitively and uses the index.
        user_by_username=f"SELECT {sql.USER} FROM users WHERE username = ?1",
        usernames="SELECT id, username FROM users WHERE id IN (SELECT value FROM json_each(?1))",
        mark_delivered="UPDATE direct_messages SET status = 'delivered' WHERE status = 'pending'"
        " AND id IN (SELECT value FROM json_each(?1))",
        # BEGIN IMMEDIATE has taken the write lock: the rows cannot change until COMMIT.
        refresh_family=sql.for_sqlite(sql.REFRESH_FAMILY),
    )
    _id_array = staticmethod(_id_list)
    _stamp = staticmethod(_datetime)
    _stored_time = staticmethod(_micros)

    # -- lifecycle -------------------------------------------------------

    async def migrate(self) -> int:
        return await self._calls.run(self._migrate, timeout=_MIGRATION_TIMEOUT)

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
        return await self._calls.run(self._schema_version, writes=False)

    def _schema_version(self) -> int:
        exists = self._conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
        ).fetchall()
        if not exists:
            return 0
        return self._conn.execute(
            "SELECT coalesce(max(version), 0) FROM schema_migrations"
        ).fetchall()[0][0]

    # -- users -----------------------------------------------------------

    async def create_user(self, username: str, email: str, password_hash: str) -> records.User:
        values.check_text(username=username, email=email, password_hash=password_hash)
        rows = await self._rows(
            "INSERT INTO users (username, email, password_hash, created_at)"
            f" VALUES (?, ?, ?, ?) RETURNING {sql.USER}",
            username,
            email,
            password_hash,
            _now(),
        )
        return sql.to_user(rows[0], _datetime)

    # -- direct messages -------------------------------------------------

    async def store_direct_messages(
        self, batch: Sequence[records.NewDirectMessage], delivered_ids: Sequence[int] = ()
    ) -> list[records.StoredDirect]:
        values.check_messages(batch)
        delivered = values.possible_ids(delivered_ids)
        return await self._run(self._store, _DIRECT, list(batch), delivered)

    def _store(self, kind: _MessageKind, batch: list, delivered_ids: list[int]) -> list:
        now = _now()
        with _transaction(self._conn):
            if delivered_ids:
                self._conn.execute(self._sql.mark_delivered, (_id_list(delivered_ids),))
            return [kind.store(self._conn, message, now) for message in batch]

    # -- groups ----------------------------------------------------------

    async def create_group(self, name: str, creator_id: int) -> records.Group:
        values.check_text(name=name)
        values.check_ids(creator_id=creator_id)
        return await self._run(self._create_group, name, creator_id)

    def _create_group(self, name: str, creator_id: int) -> records.Group:
        now = _now()
        with _transaction(self._conn):
            row = self._conn.execute(
                f"INSERT INTO groups (name, created_by, created_at) VALUES (?, ?, ?)"
                f" RETURNING {sql.GROUP}",
                (name, creator_id, now),
            ).fetchall()[0]
            self._conn.execute(
                "INSERT INTO group_members (group_id, user_id, role, joined_at)"
                " VALUES (?, ?, 'admin', ?)",
                (row[0], creator_id, now),
            )
        return sql.to_group(row, _datetime)

    async def add_member(
        self, group_id: int, user_id: int, role: records.MemberRole = "member"
    ) -> None:
        values.check_ids(group_id=group_id, user_id=user_id)
        await self._rows(
            "INSERT INTO group_members (group_id, user_id, role, last_read_message_id, joined_at)"
            " VALUES (?1, ?2, ?3, (SELECT coalesce(max(id), 0) FROM group_messages"
            " WHERE group_id = ?1), ?4)",
            group_id,
            user_id,
            role,
            _now(),
        )

    async def store_group_messages(
        self, batch: Sequence[records.NewGroupMessage]
    ) -> list[records.StoredGroup]:
        values.check_messages(batch)
        return await self._run(self._store, _GROUP, list(batch), [])

    # -- refresh tokens --------------------------------------------------

    async def spend_refresh_token(self, jti: str) -> records.SpentRefreshToken | None:
        if not values.storable(jti):
            return None
        return await self._run(self._spend_refresh_token, jti, _now())

    def _spend_refresh_token(self, jti: str, now: int) -> records.SpentRefreshToken | None:
        with _transaction(self._conn):
            family = self._conn.execute(self._sql.refresh_family, (jti,)).fetchall()
            decided = decide(family, jti, now)
            for statement, params in decided.writes(self._sql, jti, now):
                self._conn.execute(statement, params)
        return decided.answer


def _connect(path: Path, timeout: float) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    # isolation_level=None: we issue BEGIN/COMMIT ourselves. check_same_thread=False: each
    # call may land on a different worker thread; SqliteCalls keeps them one at a time.
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    try:
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchall()[0][0]
        if mode != "wal":
            raise sqlite3.OperationalError(f"could not switch {path} to WAL mode (got {mode})")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
    except BaseException:
        conn.close()
        raise
    return conn


@asynccontextmanager
async def open_sqlite(path: Path, *, timeout: float = 10.0) -> AsyncIterator[SqliteStorage]:
    """Open (creating it and its folder if missing) the database file at ``path``; close it
    on exit. Does not migrate. Raises ``StorageUnavailable`` if the file cannot be opened.

    ``timeout`` is every call's deadline; ``sqlite_calls`` says what it bounds (waiting for
    the connection and for another process's write lock, always; the work, as far as
    SQLite can be interrupted; a write is never abandoned)."""
    try:
        conn = await trio.to_thread.run_sync(_connect, path, timeout)
    except (OSError, sqlite3.Error) as exc:
        raise StorageUnavailable(f"cannot open the SQLite database {path}: {exc}") from exc
    storage = SqliteStorage(conn, timeout)
    try:
        yield storage
    finally:
        # Even when cancelled: the call in flight finishes, then the file is closed cleanly.
        with trio.CancelScope(shield=True):
            await storage._calls.close()
