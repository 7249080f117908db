"""Direct messages announced ``pending`` that reached their recipient live all the same.

A message's ack (and the author's echo) says ``delivered`` when presence saw the recipient
online at the commit, else ``pending``. A recipient whose connection was opening at that
moment (online after the check, its offline catch-up read before the commit) still gets
the message live. The author was told ``pending`` and must hear of the change (the
contract's ``status`` frame), which the live path's plain delivery mark never tells.

The stream tail notes such messages as it routes them (``note``): events this node
committed, announced ``pending``, whose recipient is connected here. When their frames
are written, the dispatcher hands their ids to the recipient's UserActor instead of the
storage writer, and the actor marks them delivered with a ``status`` event each, as
offline catch-up does. A message committed on another node is not noted: that node's announced
status does not travel with the event.
"""

from __future__ import annotations

from collections.abc import Iterable

#: Notes kept at most; past it the oldest are dropped (their authors are not told; the
#: messages are marked delivered as any other).
LIMIT = 10_000


class LivePending:
    """The ids noted, oldest first; never more than ``limit``."""

    def __init__(self, limit: int = LIMIT) -> None:
        self._limit = limit
        self._ids: dict[int, None] = {}

    def __len__(self) -> int:
        return len(self._ids)

    def note(self, message_id: int) -> None:
        self._ids[message_id] = None
        if len(self._ids) > self._limit:
            del self._ids[next(iter(self._ids))]

    def take(self, message_ids: Iterable[int]) -> tuple[list[int], list[int]]:
        """``(noted, rest)`` of ``message_ids``; the noted ones are forgotten."""
        if not self._ids:
            return [], list(message_ids)
        noted: list[int] = []
        rest: list[int] = []
        for message_id in message_ids:
            if message_id in self._ids:
                del self._ids[message_id]
                noted.append(message_id)
            else:
                rest.append(message_id)
        return noted, rest
