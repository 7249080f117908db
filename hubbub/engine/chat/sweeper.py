"""Retention: stream events older than the retention are deleted in the background.

A cursor older than what was swept has lost its place (``recovered: false``)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import trio

from hubbub.storage import Storage, StorageError

log = logging.getLogger("hubbub.engine")

SWEEP_BATCH = 10_000


@attrs.define(kw_only=True)
class StreamSweeper:
    storage: Storage
    #: Seconds an event is kept.
    retention: float
    #: Seconds between sweeps.
    every: float

    async def run(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            await self.sweep()
            await trio.sleep(self.every)

    async def sweep(self) -> int:
        """Delete what is past retention, in batches; how many were deleted. A database
        error ends this sweep (the next one carries on)."""
        cutoff = datetime.now(UTC) - timedelta(seconds=self.retention)
        total = 0
        try:
            while (swept := await self.storage.sweep_stream(cutoff, SWEEP_BATCH)) > 0:
                total += swept
                if swept < SWEEP_BATCH:
                    break
        except StorageError as error:
            log.warning("stream sweep failed", extra={"fields": {"error": str(error)}})
        if total:
            log.info("stream swept", extra={"fields": {"events": total}})
        return total
