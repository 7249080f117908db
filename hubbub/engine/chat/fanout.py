"""The fan-out: what follows a commit, on its own task so the writer only commits.

The writer hands each committed batch over a bounded channel that the node owns (so a
restarted fan-out reads on from it); here each batch's senders are acked and the new
messages published. Whatever goes wrong while fanning out a batch, its senders are still
acked: their messages are committed. A message whose publish did not happen reaches its
recipient from storage (catch-up on the next connect, or a resync).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import trio

from hubbub.engine.chat.direct import DirectMessaging
from hubbub.engine.chat.groups import GroupMessaging
from hubbub.engine.chat.messages import StoreDirect, StoreGroup
from hubbub.protocol import frames
from hubbub.protocol.views import GROUP_MESSAGE_STATUS, encoded_ack
from hubbub.storage import StoredDirect, StoredGroup

log = logging.getLogger("hubbub.engine")

#: Committed batches the fan-out may fall behind by before the writer waits for it.
FANOUT_BACKLOG = 64

Batch = tuple[Sequence[StoreDirect | StoreGroup], Sequence[StoredDirect | StoredGroup]]


class CommitQueue:
    """The bounded hand-off from the writer to the fan-out, owned by the node."""

    def __init__(self, size: int = FANOUT_BACKLOG) -> None:
        self.send, self.receive = trio.open_memory_channel[Batch](size)

    async def committed(
        self,
        requests: Sequence[StoreDirect | StoreGroup],
        stored: Sequence[StoredDirect | StoredGroup],
    ) -> None:
        await self.send.send((requests, stored))

    @property
    def depth(self) -> int:
        return self.receive.statistics().current_buffer_used


class FanOut:
    """A supervised task: answers and publishes each committed batch, in commit order."""

    name = "fan-out"

    def __init__(self, queue: CommitQueue, direct: DirectMessaging, groups: GroupMessaging) -> None:
        self.queue = queue
        self.direct = direct
        self.groups = groups
        self.state = "starting"

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self.state = "running"
        task_status.started()
        try:
            async for requests, stored in self.queue.receive:
                try:
                    await self._fan_out(requests, stored)
                except Exception:
                    log.exception("fan-out failed; acking the committed batch anyway")
                    _ack_plainly(requests, stored)
        except BaseException:
            self.state = "crashed"
            raise

    async def _fan_out(
        self,
        requests: Sequence[StoreDirect | StoreGroup],
        stored: Sequence[StoredDirect | StoredGroup],
    ) -> None:
        if requests and isinstance(requests[0], StoreDirect):
            await self.direct.committed(requests, stored)  # type: ignore[arg-type]
        else:
            self.groups.committed(requests, stored)  # type: ignore[arg-type]

    def snapshot(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state,
            "restarts": 0,
            "mailbox_depth": self.queue.depth,
            "children": [],
        }


def _ack_plainly(
    requests: Sequence[StoreDirect | StoreGroup], stored: Sequence[StoredDirect | StoredGroup]
) -> None:
    """The last resort: answer each sender with an ack, unpublished (status pending)."""
    for request, result in zip(requests, stored, strict=True):
        message = result.message
        status: frames.MessageStatus = GROUP_MESSAGE_STATUS
        if isinstance(result, StoredDirect):
            status = result.message.status if not result.created else "pending"
        request.origin.settle_send()
        request.origin.push(encoded_ack(message.id, status, message.client_id))
