"""The production backend: PostgreSQL through asyncpg, on an asyncio loop of its own.

``open_postgres`` runs asyncpg on an asyncio loop on a thread of its own
(``asyncio_thread``), so the storage can be called from any Trio task and several
storages can be open at once in one ``trio.run``. That loop does not wait for a turn in
Trio's scheduler: a statement is sent as soon as it is handed over, and its answer wakes
the caller directly.

Acquiring a connection, the statement and releasing it are all bounded (asyncpg's own
timeouts), and the whole call is bounded again on the Trio side.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

import asyncpg
import trio

from hubbub.storage import plans, records, sql, values
from hubbub.storage.asyncio_thread import AsyncioThread, open_asyncio_thread
from hubbub.storage.blocks import BlocksAndMutes
from hubbub.storage.errors import Conflict, InvalidData, StorageError, StorageUnavailable
from hubbub.storage.integrations import IntegrationStorage
from hubbub.storage.migrate import Migration, load_migrations
from hubbub.storage.pg_batch import (
    DIRECT_BATCH,
    DIRECT_BATCH_HOOKED,
    GROUP_BATCH,
    GROUP_BATCH_HOOKED,
    BatchPlan,
    BatchStatement,
)
from hubbub.storage.refresh_tokens import decide

T = TypeVar("T")

log = logging.getLogger("hubbub.storage")

# Any constant unique to hubbub: "hubbub" in ASCII, then a 1.
_MIGRATION_LOCK = 0x6875626275620001
_MIGRATION_TIMEOUT = 120.0
# How many times a transaction that PostgreSQL rolled back as a deadlock victim or a
# serialization failure (a batch that raced a concurrent duplicate, see pg_batch) is run.
_ATTEMPTS = 5
_RETRIED = (asyncpg.SerializationError, asyncpg.DeadlockDetectedError)

# Unique index or constraint name -> the field Conflict reports (see 0001_init.sql).
_CONFLICTS = {
    "users_username_key": "username",
    "users_email_key": "email",
    "users_external_id_key": "external_id",
    "api_keys_live_name_key": "api_key",
    "group_members_pkey": "member",
}
# Server errors after which the connection is gone or should not be trusted.
_CONNECTION_LOST = (
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,  # e.g. terminated by the administrator
    asyncpg.exceptions.FatalPostgresError,
)


def describe(dsn: str) -> str:
    """``host:port/database`` of a DSN, for messages: never the password."""
    parts = urlsplit(dsn)
    return f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path or '/'}"


def _leaves_connection_usable(exc: BaseException) -> bool:
    """Whether a connection that raised ``exc`` may serve the next caller: only when the
    server answered with an error about the statement itself."""
    return isinstance(exc, asyncpg.PostgresError) and not isinstance(exc, _CONNECTION_LOST)


async def _release_cancelled(pool: asyncpg.Pool, conn: asyncpg.Connection, timeout: float) -> None:
    """Give back ``conn``, whose statement was cancelled or timed out, once the server has
    cancelled it (or the pool, past ``timeout``, has terminated the connection), even if
    this task is cancelled again meanwhile (then ``CancelledError`` is raised after).

    asyncpg cancels a statement with a request on a connection of its own, and
    ``pool.release`` waits for it. That release shields itself from cancellation, but
    returns at once when cancelled, with the request still on its way: the call's
    deadline landing just after asyncpg's own command timeout (both are ``timeout`` long)
    then let a write answered "unavailable" commit once its lock was released."""
    release = asyncio.ensure_future(pool.release(conn, timeout=timeout))
    cancelled = False
    while not release.done():
        try:
            await asyncio.shield(release)
        except asyncio.CancelledError:
            cancelled = True
    release.result()
    if cancelled:
        raise asyncio.CancelledError


def _translate(exc: BaseException, where: str, timeout: float) -> StorageError:
    """The storage error for anything a call raised: ``Conflict`` for a known uniqueness
    rule, ``InvalidData`` when the data itself is refused (SQLSTATE class 22, data
    exception, and 23, integrity violation; asyncpg reports a value it cannot encode as
    class 22 too), else ``StorageUnavailable`` (asyncpg's other exceptions, OSError,
    TimeoutError, ...)."""
    if isinstance(exc, asyncpg.UniqueViolationError):
        field = _CONFLICTS.get(exc.constraint_name or "")
        if field is not None:
            return Conflict(field)
    if isinstance(exc, asyncpg.ForeignKeyViolationError):
        return InvalidData("the user, group or message referred to does not exist")
    if isinstance(exc, asyncpg.PostgresError) and (exc.sqlstate or "")[:2] in ("22", "23"):
        return InvalidData(f"PostgreSQL refused the data: {exc} (SQLSTATE {exc.sqlstate})")
    if isinstance(exc, TimeoutError):  # one of asyncpg's own timeouts
        return StorageUnavailable(f"PostgreSQL at {where} did not answer within {timeout} s")
    return StorageUnavailable(f"PostgreSQL at {where} is unavailable: {exc!r}")


def _log_loop_error(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """asyncpg reports some failures of a dying connection only to the loop's exception
    handler (a future nobody awaits any more). The call that used the connection has
    already failed on its own, so log them and go on."""
    exc = context.get("exception")
    log.warning(
        "asyncio reported an error on the PostgreSQL loop",
        extra={"fields": {"message": context.get("message"), "error": repr(exc)}},
    )


# The creator's group.member_added outbox row, in create_group's statement (webhooks on).
_CREATOR_HOOK = (
    ", hook AS (INSERT INTO webhook_outbox (event_id, type, group_id, user_id)"
    " SELECT gen_random_uuid()::text, 'group.member_added', id, created_by FROM g)"
)


class PostgresStorage(BlocksAndMutes, IntegrationStorage, plans.StreamStorage):
    """``Storage`` on an asyncpg pool. Build it with ``open_postgres``."""

    backend = "postgres"

    def __init__(self, loop: AsyncioThread, pool: asyncpg.Pool, timeout: float, where: str) -> None:
        self._loop = loop
        self._pool = pool
        self._timeout = timeout
        self._where = where

    async def _call(
        self,
        op: Callable[[asyncpg.Connection], Awaitable[T]],
        timeout: float | None = None,
    ) -> T:
        """Run ``op(connection)`` on a pooled connection; bounded by ``timeout``.

        Raises ``StorageUnavailable`` when out of time or connection, ``Conflict`` when a
        uniqueness rule refuses the write, ``InvalidData`` when the server refuses the
        data; never a driver exception (see ``_translate``). A connection that failed for
        any other reason than the server refusing the statement, or the deadline, is
        terminated, not returned to the pool: the pool opens a fresh one when it next
        needs one. A call past its deadline returns once the server has cancelled its
        statement, or the pool has dropped the connection (at most ``timeout`` later)."""
        timeout = self._timeout if timeout is None else timeout

        async def on_asyncio() -> T:
            conn = await self._pool.acquire(timeout=timeout)
            cancelling = False
            try:
                return await op(conn)
            except (asyncio.CancelledError, TimeoutError):
                # Our deadline, or asyncpg's own command timeout (the same length: on its
                # own thread, the asyncio loop's timer may fire first). Either way asyncpg
                # has asked the server to cancel the statement, and releasing waits (within
                # the pool's budget, else it terminates) until it has: a write that missed
                # its deadline must not commit afterwards, which terminating here, dropping
                # that request, would allow.
                cancelling = True
                raise
            except BaseException as exc:
                # Killed mid-statement, or in a state asyncpg cannot name ("another
                # operation is in progress"): never hand it to the next caller.
                if not _leaves_connection_usable(exc):
                    conn.terminate()
                raise
            finally:
                if cancelling:
                    await _release_cancelled(self._pool, conn, timeout)
                else:  # nothing in flight: the release needs no round trip (_keep_session)
                    await self._pool.release(conn)

        try:
            with trio.fail_after(timeout):
                return await self._loop.run(on_asyncio(), cancel_wait=timeout)
        except trio.TooSlowError:
            raise StorageUnavailable(
                f"PostgreSQL at {self._where} did not answer within {timeout} s"
            ) from None
        # asyncio.CancelledError: the asyncio side was cancelled without us (the loop is
        # closing); for the caller that is an outage like any other.
        except (Exception, asyncio.CancelledError) as exc:
            raise _translate(exc, self._where, timeout) from exc

    async def _rows(self, statement: str, *args: Any) -> list[asyncpg.Record]:
        return await self._call(lambda conn: conn.fetch(statement, *args))

    async def _plan(self, make: Callable[[], sql.Plan[T]], *, writes: bool = True) -> T:
        async def run(conn: asyncpg.Connection) -> T:
            plan = make()
            try:
                step = next(plan)
                while True:
                    step = plan.send(await conn.fetch(step[0], *step[1]))
            except StopIteration as done:
                return cast(T, done.value)

        async def op(conn: asyncpg.Connection) -> T:
            if not writes:
                return await run(conn)
            for attempt in range(1, _ATTEMPTS + 1):
                try:
                    async with conn.transaction():
                        return await run(conn)
                except _RETRIED:
                    if attempt == _ATTEMPTS:
                        raise
            raise AssertionError("unreachable")

        return await self._call(op)

    _sql = sql.Queries(
        user_by_username=f"SELECT {sql.USER} FROM users WHERE lower(username) = lower($1)",
        usernames="SELECT id, username FROM users WHERE id = ANY($1::bigint[])",
        refresh_family=sql.REFRESH_FAMILY + " FOR UPDATE",
        create_user=f"INSERT INTO users (username, email, password_hash) VALUES ($1, $2, $3)"
        f" RETURNING {sql.USER}",
        add_member="INSERT INTO group_members"
        " (group_id, user_id, role, last_read_message_id, joined_position)"
        " VALUES ($1, $2, $3,"
        " (SELECT coalesce(max(id), 0) FROM group_messages WHERE group_id = $1),"
        " (SELECT position FROM stream_head))",
    )

    def _time_params(self) -> tuple[Any, ...]:
        return ()  # the columns' DEFAULT now()

    @staticmethod
    def _id_array(ids: list[int]) -> Any:
        return list(ids)

    @staticmethod
    def _stamp(value: datetime) -> datetime:
        return value  # asyncpg answers timestamptz as an aware UTC datetime

    @staticmethod
    def _stored_time(when: datetime) -> datetime:
        if when.tzinfo is None:
            raise ValueError("storage needs timezone-aware datetimes; got a naive one")
        return when

    # -- lifecycle -------------------------------------------------------

    async def migrate(self) -> int:
        migrations = await trio.to_thread.run_sync(load_migrations, "postgres")
        for migration in migrations:
            await self._call(
                functools.partial(_apply, migration=migration), timeout=_MIGRATION_TIMEOUT
            )
        return await self.schema_version()

    async def schema_version(self) -> int:
        return await self._call(_schema_version)

    # -- direct messages -------------------------------------------------

    async def store_direct_messages(
        self, batch: Sequence[records.NewDirectMessage], delivered_ids: Sequence[int] = ()
    ) -> list[records.StoredDirect]:
        values.check_messages(batch)
        if not batch:
            await self.mark_delivered(delivered_ids)
            return []
        plan = BatchPlan.of(batch)
        statement = DIRECT_BATCH_HOOKED if self.webhooks else DIRECT_BATCH
        rows = await self._store_batch(statement, plan, values.possible_ids(delivered_ids))
        messages = await self._earlier_reacted(
            "direct", [sql.to_direct(row[1:], self._stamp) for row in rows], rows
        )
        return plan.answers(
            [records.StoredDirect(m, row[0]) for m, row in zip(messages, rows, strict=True)]
        )

    async def _earlier_reacted(
        self, kind: records.MessageKind, messages: list[sql.Message], rows: list[asyncpg.Record]
    ) -> list[sql.Message]:
        """``messages`` (a batch's answers), those stored earlier with their reactions: one
        more round trip, only for a batch that repeated an earlier message."""
        earlier = [m for m, row in zip(messages, rows, strict=True) if not row[0]]
        if not sql.reaction_ids(earlier):
            return messages
        reacted = {m.id: m for m in await self._reacted(kind, earlier)}
        return [reacted.get(m.id, m) for m in messages]

    async def _store_batch(
        self, statement: BatchStatement, plan: BatchPlan, *extra: Any
    ) -> list[asyncpg.Record]:
        """One round trip; again (a fresh snapshot) if it raced a concurrent duplicate or was
        chosen as a deadlock's victim (pg_batch.py); nothing of a failed run stays."""
        columns = plan.columns(statement.fields)

        async def op(conn: asyncpg.Connection) -> list[asyncpg.Record]:
            for attempt in range(1, _ATTEMPTS + 1):
                try:
                    return await conn.fetch(statement.sql, *columns, *extra)
                except _RETRIED:
                    if attempt == _ATTEMPTS:
                        raise
            raise AssertionError("unreachable")

        return await self._call(op)

    # -- groups ----------------------------------------------------------

    async def create_group(self, name: str, creator_id: int) -> records.Group:
        values.check_text(name=name)
        values.check_ids(creator_id=creator_id)
        rows = await self._rows(
            "WITH g AS (INSERT INTO groups (name, created_by) VALUES ($1, $2)"
            f" RETURNING {sql.GROUP}),"
            " m AS (INSERT INTO group_members (group_id, user_id, role, joined_position)"
            " SELECT id, created_by, 'admin', (SELECT position FROM stream_head) FROM g)"
            + (_CREATOR_HOOK if self.webhooks else "")
            + f" SELECT {sql.GROUP} FROM g",
            name,
            creator_id,
        )
        return sql.to_group(rows[0], self._stamp)

    async def store_group_messages(
        self, batch: Sequence[records.NewGroupMessage]
    ) -> list[records.StoredGroup]:
        values.check_messages(batch)
        if not batch:
            return []
        plan = BatchPlan.of(batch)
        rows = await self._store_batch(GROUP_BATCH_HOOKED if self.webhooks else GROUP_BATCH, plan)
        messages = await self._earlier_reacted(
            "group", [sql.to_group_message(row[1:], self._stamp) for row in rows], rows
        )
        return plan.answers(
            [records.StoredGroup(m, row[0]) for m, row in zip(messages, rows, strict=True)]
        )

    # -- refresh tokens --------------------------------------------------

    async def spend_refresh_token(self, jti: str) -> records.SpentRefreshToken | None:
        if not values.storable(jti):
            return None
        now = datetime.now(UTC)

        async def spend(conn: asyncpg.Connection) -> records.SpentRefreshToken | None:
            async with conn.transaction():
                decided = decide(await conn.fetch(self._sql.refresh_family, jti), jti, now)
                for statement, params in decided.writes(self._sql, jti, now):
                    await conn.execute(statement, *params)
            return decided.answer

        return await self._call(spend)


async def _schema_version(conn: asyncpg.Connection) -> int:
    if await conn.fetchval("SELECT to_regclass('schema_migrations')") is None:
        return 0
    return await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations")


async def _apply(conn: asyncpg.Connection, migration: Migration) -> None:
    """Apply ``migration`` unless applied; the transaction-scoped advisory lock makes
    concurrent migrators take turns, and the loser then sees the version applied."""
    # Waiting for another migrator, or a long migration, may outlast the pool's
    # per-statement timeout: the whole call is bounded by _MIGRATION_TIMEOUT instead.
    timeout = _MIGRATION_TIMEOUT
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK, timeout=timeout)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        applied = await conn.fetchval(
            "SELECT true FROM schema_migrations WHERE version = $1", migration.version
        )
        if not applied:
            await conn.execute(migration.sql, timeout=timeout)
            await conn.execute(
                "INSERT INTO schema_migrations (version) VALUES ($1)", migration.version
            )


@asynccontextmanager
async def open_postgres(
    dsn: str, *, pool_size: int = 10, timeout: float = 10.0
) -> AsyncIterator[PostgresStorage]:
    """Open a pool of up to ``pool_size`` connections to ``dsn``; close it on exit.

    Runs its own asyncio loop (on a thread) for as long as the storage is open. Does not
    migrate.
    Raises ``StorageUnavailable`` if the first connection fails or takes over ``timeout``
    seconds; every later call is bounded by ``timeout`` too. An exception raised in the
    ``async with`` body comes out as itself, not wrapped in the loop's exception groups."""
    where = describe(dsn)
    escaping: BaseException | None = None
    try:
        async with open_asyncio_thread("hubbub-postgres", _log_loop_error) as loop:
            try:
                pool = await _create_pool(loop, dsn, pool_size, timeout, where)
                try:
                    yield PostgresStorage(loop, pool, timeout, where)
                finally:
                    await _close_pool(loop, pool, timeout)
            except BaseException as exc:
                escaping = exc
                raise
        return
    except BaseExceptionGroup as group:
        if escaping is None or not _only_wraps(group, escaping):
            raise
    # Outside the except block, so that the exception keeps its own __context__.
    raise escaping


def _only_wraps(group: BaseException, exc: BaseException) -> bool:
    """Whether ``group`` is nothing but ``exc`` nested in single-member exception groups."""
    while group is not exc and isinstance(group, BaseExceptionGroup):
        if len(group.exceptions) != 1:
            return False
        group = group.exceptions[0]
    return group is exc


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Released connections need no reset: hubbub sets no session state, takes only
    transaction-scoped locks and never LISTENs. asyncpg's default reset costs a round
    trip per call."""


async def _create_pool(
    loop: AsyncioThread, dsn: str, pool_size: int, timeout: float, where: str
) -> asyncpg.Pool:
    async def create() -> asyncpg.Pool:
        return await asyncpg.create_pool(
            dsn,
            min_size=1,
            max_size=pool_size,
            timeout=timeout,
            command_timeout=timeout,
            reset=_keep_session,
        )

    try:
        with trio.fail_after(timeout):
            return await loop.run(create(), cancel_wait=timeout)
    except trio.TooSlowError:
        raise StorageUnavailable(
            f"PostgreSQL at {where} did not answer within {timeout} s;"
            " check that it runs and that the URL is right"
        ) from None
    except (Exception, asyncio.CancelledError) as exc:  # whatever the driver raised
        raise StorageUnavailable(f"cannot connect to PostgreSQL at {where}: {exc}") from exc


async def _close_pool(loop: AsyncioThread, pool: asyncpg.Pool, timeout: float) -> None:
    """Close gracefully within ``timeout``, else drop the connections; even when cancelled,
    and whatever the driver raises."""
    closed = False
    with (
        trio.CancelScope(shield=True),
        trio.move_on_after(timeout),
        contextlib.suppress(Exception, asyncio.CancelledError),
    ):
        await loop.run(pool.close(), cancel_wait=timeout)
        closed = True
    if not closed:
        loop.loop.call_soon_threadsafe(pool.terminate)  # asyncpg is not thread-safe
