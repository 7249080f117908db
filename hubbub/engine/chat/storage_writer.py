"""The StorageWriter: every message write goes through it, by group commit. It only commits.

While one batch commits, the next collects in the mailbox; the whole collected batch
then commits in one transaction (PostgreSQL: one round trip). Each committed batch is
handed to the fan-out (``on_committed``), which answers the senders and publishes on
another task, so a slow Redis never delays the next commit. An ``ack`` is only ever sent
for a committed write. Writes from one sender keep their order: one batch is in flight
at a time, and the fan-out takes batches in commit order.

Every request gets exactly one answer. A batch the database refuses for a data reason
(``InvalidData``) is retried member by member, so only the offending request is refused.
If the writer crashes, the batch it held is refused (``on_failed``) on the way out, and
its mailbox, which the node owns, is read on by the restarted writer.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Sequence

import trio

from hubbub.engine.chat.messages import FlushDelivered, MarkDelivered, StoreDirect, StoreGroup
from hubbub.engine.runtime.actor import Actor, Mailbox
from hubbub.storage import InvalidData, Storage, StorageError, StoredDirect, StoredGroup

log = logging.getLogger("hubbub.engine")

MAX_BATCH = 512
#: How long delivery marks wait for a message batch to share its commit.
DELIVERED_DELAY = 0.2
#: Delivery marks storage could not take are kept and tried again, after a wait that
#: doubles up to this (an outage is not hammered), ...
DELIVERED_RETRY_MAX = 5.0
#: ... and at most this many are kept: past it the oldest are let go (those messages
#: stay pending and come again on the next connect: at least once, never lost).
DELIVERED_KEPT = 100_000

Write = StoreDirect | StoreGroup
Committed = Callable[[Sequence[Write], Sequence[StoredDirect | StoredGroup]], Awaitable[None]]
WriteFailed = Callable[[Sequence[Write], StorageError], None]


class StorageWriter(Actor):
    """Batches message writes; hands each committed batch to ``on_committed``, in order."""

    def __init__(
        self,
        storage: Storage,
        *,
        on_committed: Committed,
        on_failed: WriteFailed,
        on_batch: Callable[[int, float], None] | None = None,
        mailbox: Mailbox | None = None,
        mailbox_size: int = 8192,
    ) -> None:
        super().__init__("storage-writer", mailbox=mailbox, mailbox_size=mailbox_size)
        self.storage = storage
        self.on_committed = on_committed
        self.on_failed = on_failed
        #: ``on_batch(size, seconds)`` after each batch: its writes and the time its
        #: commits took (the node's metrics; once per batch, never per write).
        self.on_batch = on_batch
        #: Ids to mark delivered with the next commit.
        self._delivered: list[int] = []
        #: How long held delivery marks wait now (longer after each failed try).
        self._delivered_delay = DELIVERED_DELAY
        #: Writes taken from the mailbox and not yet answered.
        self._held: list[Write] = []

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        try:
            await self._loop()
        finally:
            if self._held:
                held, self._held = self._held, []
                self.on_failed(held, StorageError("the storage writer stopped"))

    async def _loop(self) -> None:
        while True:
            # Delivery marks wait (briefly) for a message batch to ride along with: on
            # their own they would cost a commit each.
            first = None
            with trio.move_on_after(self._delivered_delay if self._delivered else math.inf):
                first = await self.next_envelope()
            if first is None:
                await self._flush_delivered()
                continue
            batch = [first.message] + [e.message for e in self.drain_nowait(MAX_BATCH - 1)]
            await self._commit(batch)

    async def handle(self, message: object) -> object:  # pragma: no cover - run() replaces it
        raise NotImplementedError

    async def _flush_delivered(self) -> None:
        delivered, self._delivered = self._delivered, []
        try:
            await self.storage.mark_delivered(delivered)
        except StorageError as error:
            self._keep_delivered(delivered, error)
        else:
            self._delivered_delay = DELIVERED_DELAY

    def _keep_delivered(self, delivered: list[int], error: StorageError) -> None:
        """Marks storage did not take: kept for the next try, so a message that reached
        its socket during an outage does not read as pending (and come again) after it."""
        kept = delivered + self._delivered
        dropped = len(kept) - DELIVERED_KEPT
        if dropped > 0:
            del kept[:dropped]
        self._delivered = kept
        self._delivered_delay = min(self._delivered_delay * 2, DELIVERED_RETRY_MAX)
        log.warning(
            "marking delivered failed; kept to try again",
            extra={
                "fields": {
                    "error": str(error),
                    "kept": len(kept),
                    "dropped": max(dropped, 0),
                    "retry_in": self._delivered_delay,
                }
            },
        )

    async def _commit(self, batch: list[object]) -> None:
        flushes = [item for item in batch if isinstance(item, FlushDelivered)]
        try:
            await self._commit_writes(batch, flush=bool(flushes))
        finally:
            # Also when the commit crashed the writer: a waiter must not wait in vain.
            for item in flushes:
                if item.done is not None:
                    item.done.set()

    async def _commit_writes(self, batch: list[object], *, flush: bool) -> None:
        directs = [item for item in batch if isinstance(item, StoreDirect)]
        groups = [item for item in batch if isinstance(item, StoreGroup)]
        self._delivered.extend(
            i for item in batch if isinstance(item, MarkDelivered) for i in item.message_ids
        )
        self._held = [*directs, *groups]
        started = trio.current_time()
        if directs:
            delivered, self._delivered = self._delivered, []
            await self._store(directs, lambda part: self._store_direct(part, delivered))
            if delivered:  # no part of the batch committed: the marks wait for the next
                self._keep_delivered(delivered, StorageError("the batch was not stored"))
        if self._delivered and (flush or len(self._delivered) >= MAX_BATCH):
            await self._flush_delivered()
        if groups:
            await self._store(groups, self._store_group)
        if self.on_batch is not None:
            self.on_batch(len(batch), trio.current_time() - started)

    async def _store_direct(
        self, part: Sequence[Write], delivered: list[int]
    ) -> Sequence[StoredDirect | StoredGroup]:
        messages = [r.message for r in part if isinstance(r, StoreDirect)]
        stored = await self.storage.store_direct_messages(messages, list(delivered))
        delivered.clear()  # committed with this part
        self._delivered_delay = DELIVERED_DELAY
        return stored

    async def _store_group(self, part: Sequence[Write]) -> Sequence[StoredDirect | StoredGroup]:
        return await self.storage.store_group_messages(
            [r.message for r in part if isinstance(r, StoreGroup)]
        )

    async def _store(
        self,
        requests: Sequence[Write],
        store: Callable[[Sequence[Write]], Awaitable[Sequence[StoredDirect | StoredGroup]]],
    ) -> None:
        """Commit ``requests`` together; if the database refuses the data itself, one
        by one, so only the offender is refused. Never under a timeout of its own: a
        commit is not to be cancelled half-way (storage bounds each call)."""
        try:
            stored = await store(requests)
        except InvalidData as error:
            if len(requests) == 1:
                self._failed(requests, error)
                return
            log.info("batch refused for its data, retrying one by one")
            for request in requests:
                await self._store([request], store)
            return
        except StorageError as error:
            self._failed(requests, error)
            return
        await self.on_committed(requests, stored)
        self._answered(requests)

    def _failed(self, requests: Sequence[Write], error: StorageError) -> None:
        log.warning(
            "write failed",
            extra={"fields": {"size": len(requests), "error": str(error)}},
        )
        self._answered(requests)
        self.on_failed(requests, error)

    def _answered(self, requests: Sequence[Write]) -> None:
        answered = {id(request) for request in requests}
        self._held = [request for request in self._held if id(request) not in answered]
