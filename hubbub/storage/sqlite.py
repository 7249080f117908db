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
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import attrs
import trio

from hubbub.storage import plans, records, sql, values
from hubbub.storage.blocks import BlocksAndMutes
from hubbub.storage.errors import Conflict, InvalidData, StorageError, StorageUnavailable
from hubbub.storage.integrations import IntegrationStorage
from hubbub.storage.message_changes import DELIVER
from hubbub.storage.migrate import load_migrations
from hubbub.storage.outbox_writes import outbox_insert
from hubbub.storage.refresh_tokens import decide
from hubbub.storage.sqlite_calls import SqliteCalls
from hubbub.storage.stream_events import EVENT_COLUMNS

T = TypeVar("T")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
# The text after "UNIQUE constraint failed: " for each rule callers may hit.
_CONFLICTS = {
    "users.username": "username",
    "users.email": "email",
    "users.external_id": "external_id",
    "api_keys.name": "api_key",
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

    kind: records.MessageKind

    @classmethod
    def of(
        cls,
        kind: records.MessageKind,
        table: str,
        new: type,
        returning: str,
        to_record: Any,
        answer: Any,
    ) -> _MessageKind:
        fields = tuple(field.name for field in attrs.fields(new))
        columns = ", ".join((*fields, "created_at", "position"))
        placeholders = ", ".join("?" * (len(fields) + 2))
        insert = (
            f"INSERT INTO {table} ({columns}) VALUES ({placeholders})"
            f" ON CONFLICT (author_id, client_id) DO NOTHING RETURNING {returning}"
        )
        existing = f"SELECT {returning} FROM {table} WHERE author_id = ? AND client_id = ?"
        return cls(fields, insert, existing, to_record, answer, kind)

    def store(self, conn: sqlite3.Connection, message: Any, now: int, position: int) -> Any:
        """Insert ``message`` at stream ``position`` unless its (author_id, client_id)
        exists; answer the stored row either way, and whether this call created it."""
        params = (*(getattr(message, field) for field in self.fields), now, position)
        rows = conn.execute(self.insert, params).fetchall()
        created = bool(rows)
        if not created:
            rows = conn.execute(self.existing, (message.author_id, message.client_id)).fetchall()
        return self.answer(self.to_record(rows[0], _datetime), created)


_DIRECT = _MessageKind.of(
    "direct",
    "direct_messages",
    records.NewDirectMessage,
    sql.DIRECT,
    sql.to_direct,
    records.StoredDirect,
)
_GROUP = _MessageKind.of(
    "group",
    "group_messages",
    records.NewGroupMessage,
    sql.GROUP_MESSAGE,
    sql.to_group_message,
    records.StoredGroup,
)


# A batch's effect on the conversation rows and the group counters (see ``_account``).
_CONVERSATION_UPSERT = (
    "INSERT INTO direct_conversations"
    " (user_id, other_id, last_position, last_message_id, unread_count)"
    " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (user_id, other_id) DO UPDATE SET"
    " last_position = max(last_position, excluded.last_position),"
    " last_message_id = max(last_message_id, excluded.last_message_id),"
    " unread_count = unread_count + excluded.unread_count"
)
_GROUP_NEWEST = (
    "UPDATE groups SET last_position = max(coalesce(last_position, 0), ?2),"
    " last_message_id = max(coalesce(last_message_id, 0), ?3) WHERE id = ?1"
)
# ?2 new messages in group ?1, of which ?3 (a JSON object: author id -> count) by each author.
_GROUP_UNREAD = (
    "UPDATE group_members SET unread_count = unread_count + ?2 - coalesce((SELECT value"
    " FROM json_each(?3) WHERE key = CAST(group_members.user_id AS TEXT)), 0)"
    " WHERE group_id = ?1"
)
# One webhook outbox row (outbox_writes.py).
_HOOK = sql.for_sqlite(outbox_insert(1))
_MESSAGE_EVENT = (
    f"INSERT INTO stream_events ({EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, '{{}}', ?)"
)


def _account(conn: sqlite3.Connection, kind: _MessageKind, created: list[Any]) -> None:
    """What ``created`` (new messages, ascending id and position) changes beside their rows:
    the conversation rows or group counters, and their stream events."""
    if kind.kind == "direct":
        pairs: dict[tuple[int, int], list[int]] = {}
        events = []
        for m in created:
            sides = [(m.author_id, m.recipient_id, 0)]
            if m.author_id != m.recipient_id:
                sides.append((m.recipient_id, m.author_id, 1))
            for user_id, other_id, unread in sides:
                pair = pairs.setdefault((user_id, other_id), [0, 0, 0])
                pair[0] = max(pair[0], m.state.position)
                pair[1] = max(pair[1], m.id)
                pair[2] += unread
            events.append(("message", m.author_id, m.recipient_id, None, m.id, m.author_id))
        conn.executemany(
            _CONVERSATION_UPSERT, [(*key, *pair) for key, pair in sorted(pairs.items())]
        )
    else:
        groups: dict[int, list[Any]] = {}
        events = []
        for m in created:
            group = groups.setdefault(m.group_id, [0, 0, 0, {}])
            group[0] = max(group[0], m.state.position)
            group[1] = max(group[1], m.id)
            group[2] += 1
            group[3][str(m.author_id)] = group[3].get(str(m.author_id), 0) + 1
            events.append(("group_message", None, None, m.group_id, m.id, m.author_id))
        for group_id, (position, newest, count, by_author) in sorted(groups.items()):
            conn.execute(_GROUP_NEWEST, (group_id, position, newest))
            conn.execute(_GROUP_UNREAD, (group_id, count, json.dumps(by_author)))
    conn.executemany(
        _MESSAGE_EVENT,
        [
            (m.state.position, *event, _micros(m.created_at))
            for m, event in zip(created, events, strict=True)
        ],
    )


class SqliteStorage(BlocksAndMutes, IntegrationStorage, plans.StreamStorage):
    """``Storage`` on one SQLite connection. Build it with ``open_sqlite``."""

    backend = "sqlite"

    def __init__(self, conn: sqlite3.Connection, timeout: float) -> None:
        self._conn = conn
        self._calls = SqliteCalls(conn, timeout, _translate)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)``, a write, alone on the connection (see ``sqlite_calls``)."""
        return await self._calls.run(fn, *args)

    async def _plan(self, make: Callable[[], sql.Plan[T]], *, writes: bool = True) -> T:
        return await self._calls.run(self._run_plan, make, writes, writes=writes)

    def _run_plan(self, make: Callable[[], sql.Plan[T]], writes: bool) -> T:
        def execute(statement: str, params: tuple[Any, ...]) -> list[Any]:
            return self._conn.execute(sql.for_sqlite(statement), params).fetchall()

        if not writes:
            return sql.drive(make(), execute)
        with _transaction(self._conn):
            return sql.drive(make(), execute)

    async def _rows(self, statement: str, *params: Any) -> list[tuple]:
        # Translating is idempotent (and cached): the shared queries come translated already.
        statement = sql.for_sqlite(statement)
        # Only what starts with SELECT counts as a read, to be abandoned at the deadline.
        return await self._calls.run(
            lambda: self._conn.execute(statement, params).fetchall(),
            writes=not statement.startswith("SELECT"),
        )

    _sql = sql.sqlite_queries(
        # The column is COLLATE NOCASE, so = compares case-insensitively and uses the index.
        user_by_username=f"SELECT {sql.USER} FROM users WHERE username = ?1",
        usernames="SELECT id, username FROM users WHERE id IN (SELECT value FROM json_each(?1))",
        # BEGIN IMMEDIATE has taken the write lock: the rows cannot change until COMMIT.
        refresh_family=sql.for_sqlite(sql.REFRESH_FAMILY),
        create_user="INSERT INTO users (username, email, password_hash, created_at)"
        f" VALUES (?, ?, ?, ?) RETURNING {sql.USER}",
        add_member="INSERT INTO group_members"
        " (group_id, user_id, role, last_read_message_id, joined_at, joined_position)"
        " VALUES (?1, ?2, ?3, (SELECT coalesce(max(id), 0) FROM group_messages"
        " WHERE group_id = ?1), ?4, (SELECT position FROM stream_head))",
    )

    def _time_params(self) -> tuple[Any, ...]:
        return (_now(),)

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

    # -- direct messages -------------------------------------------------

    async def store_direct_messages(
        self, batch: Sequence[records.NewDirectMessage], delivered_ids: Sequence[int] = ()
    ) -> list[records.StoredDirect]:
        values.check_messages(batch)
        delivered = values.possible_ids(delivered_ids)
        return await self._run(self._store, _DIRECT, list(batch), delivered)

    def _store(self, kind: _MessageKind, batch: list, delivered_ids: list[int]) -> list:
        now = _now()
        conn = self._conn
        with _transaction(conn):
            if delivered_ids:
                conn.execute(sql.for_sqlite(DELIVER), (_id_list(delivered_ids),))
            # BEGIN IMMEDIATE took the database's one write lock, held until COMMIT: no other
            # writer (thread or process) can commit between this read of the head and ours,
            # which is what taking it last does on PostgreSQL. So positions are in commit
            # order, and a rollback gives them back.
            [(head,)] = conn.execute("SELECT position FROM stream_head").fetchall()
            answers = []
            created: list[Any] = []
            for message in batch:
                answer = kind.store(conn, message, now, head + len(created) + 1)
                if answer.created:
                    created.append(answer.message)
                answers.append(answer)
            if created:
                _account(conn, kind, created)
                if self.webhooks:
                    conn.executemany(
                        _HOOK, [self._created_hook(kind.kind, m, now) for m in created]
                    )
                conn.execute("UPDATE stream_head SET position = position + ?", (len(created),))
            # A message stored earlier may have reactions by now.
            earlier = [a.message for a in answers if not a.created]
            if ids := sql.reaction_ids(earlier):
                rows = conn.execute(
                    sql.for_sqlite(sql.REACTIONS[kind.kind]), (_id_list(ids),)
                ).fetchall()
                reacted = {m.id: m for m in sql.with_reactions(earlier, rows)}
                answers = [
                    a if a.created else attrs.evolve(a, message=reacted[a.message.id])
                    for a in answers
                ]
            return answers

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
                "INSERT INTO group_members (group_id, user_id, role, joined_at, joined_position)"
                " VALUES (?, ?, 'admin', ?, (SELECT position FROM stream_head))",
                (row[0], creator_id, now),
            )
            if self.webhooks:
                hook = self._outbox_row(
                    "group.member_added", now, group_id=row[0], user_id=creator_id
                )
                self._conn.execute(_HOOK, hook)
        return sql.to_group(row, _datetime)

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


def _switch_to_wal(conn: sqlite3.Connection, timeout: float) -> str:
    """``PRAGMA journal_mode = WAL``, waiting up to ``timeout`` while another connection
    holds the lock: SQLite answers "database is locked" at once there, without its busy
    handler (three storages opening one fresh file at once met it). Runs in a worker
    thread, so the sleep blocks no event loop."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return str(conn.execute("PRAGMA journal_mode = WAL").fetchall()[0][0])
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _connect(path: Path, timeout: float) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    # isolation_level=None: we issue BEGIN/COMMIT ourselves. check_same_thread=False: each
    # call may land on a different worker thread; SqliteCalls keeps them one at a time.
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    try:
        mode = _switch_to_wal(conn, timeout)
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
