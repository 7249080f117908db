"""The StorageWriter actor: every message write goes through it, by group commit.

While one batch commits, the next collects in the mailbox; the whole collected batch
then commits in one transaction (PostgreSQL: one round trip). Only after the commit are
the senders answered, through ``on_committed``, so an ``ack`` always means durable.
Writes from one sender keep their order, because one batch is in flight at a time.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Sequence

import trio

from hubbub.engine.chat.messages import FlushDelivered, MarkDelivered, StoreDirect, StoreGroup
from hubbub.engine.runtime.actor import Actor
from hubbub.storage import (
    Storage,
    StorageError,
    StoredDirect,
    StoredGroup,
)

log = logging.getLogger("hubbub.engine")

MAX_BATCH = 512
#: How long delivery marks wait for a message batch to share its commit.
DELIVERED_DELAY = 0.2


DirectCommitted = Callable[[Sequence[tuple[StoreDirect, StoredDirect]]], Awaitable[None]]
GroupCommitted = Callable[[Sequence[tuple[StoreGroup, StoredGroup]]], Awaitable[None]]
WriteFailed = Callable[[Sequence[StoreDirect | StoreGroup], StorageError], None]


class StorageWriter(Actor):
    """Batches message writes; hands each committed batch to the callbacks, in order."""

    def __init__(
        self,
        storage: Storage,
        *,
        on_direct: DirectCommitted,
        on_group: GroupCommitted,
        on_failed: WriteFailed,
        on_batch: Callable[[int], None] | None = None,
        mailbox_size: int = 8192,
    ) -> None:
        super().__init__("storage-writer", mailbox_size=mailbox_size)
        self.storage = storage
        self.on_direct = on_direct
        self.on_group = on_group
        self.on_failed = on_failed
        self.on_batch = on_batch
        #: Ids to mark delivered with the next commit.
        self._delivered: list[int] = []

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            # Delivery marks wait (briefly) for a message batch to ride along with: on
            # their own they would cost a commit each.
            first = None
            with trio.move_on_after(DELIVERED_DELAY if self._delivered else math.inf):
                first = await self.next_envelope()
            if first is None:
                await self._flush_delivered()
                continue
            # Never under a timeout: a commit is not to be cancelled half-way.
            batch = [first.message] + [e.message for e in self.drain_nowait(MAX_BATCH - 1)]
            await self._commit(batch)

    async def _flush_delivered(self) -> None:
        delivered, self._delivered = self._delivered, []
        try:
            await self.storage.mark_delivered(delivered)
        except StorageError as error:
            # Still pending in storage: the recipient gets it again on reconnect.
            log.warning("marking delivered failed", extra={"fields": {"error": str(error)}})

    async def handle(self, message: object) -> object:  # pragma: no cover - run() replaces it
        raise NotImplementedError

    async def _commit(self, batch: list[object]) -> None:
        directs = [item for item in batch if isinstance(item, StoreDirect)]
        groups = [item for item in batch if isinstance(item, StoreGroup)]
        self._delivered.extend(
            i for item in batch if isinstance(item, MarkDelivered) for i in item.message_ids
        )
        if self.on_batch is not None:
            self.on_batch(len(batch))
        if directs:
            delivered, self._delivered = self._delivered, []
            try:
                stored = await self.storage.store_direct_messages(
                    [item.message for item in directs], delivered
                )
            except StorageError as error:
                log.warning(
                    "direct batch failed",
                    extra={"fields": {"size": len(directs), "error": str(error)}},
                )
                self.on_failed(directs, error)
            else:
                await self.on_direct(list(zip(directs, stored, strict=True)))
        flush = any(isinstance(item, FlushDelivered) for item in batch)
        if self._delivered and (flush or len(self._delivered) >= MAX_BATCH):
            await self._flush_delivered()
        if groups:
            try:
                stored_groups = await self.storage.store_group_messages(
                    [item.message for item in groups]
                )
            except StorageError as error:
                log.warning(
                    "group batch failed",
                    extra={"fields": {"size": len(groups), "error": str(error)}},
                )
                self.on_failed(groups, error)
            else:
                await self.on_group(list(zip(groups, stored_groups, strict=True)))
