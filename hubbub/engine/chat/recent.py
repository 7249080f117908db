"""A bounded set of recent ids."""

from __future__ import annotations

from collections import deque

#: Ids remembered by default: catch-up ids per session, fanned-out ids per group.
CAPACITY = 4096


class RecentIds:
    """The last ``capacity`` ids added: a bounded set.

    Its deque and set are made on the first ``add``: most sessions' catch-up sends
    nothing, and an empty deque and set cost ~1 KiB, per session (bench/idle)."""

    __slots__ = ("_ids", "_order", "capacity")

    def __init__(self, capacity: int = CAPACITY) -> None:
        self._order: deque[int] | None = None
        self._ids: set[int] | None = None
        self.capacity = capacity

    def add(self, item: int) -> None:
        if self._ids is None or self._order is None:
            self._ids, self._order = set(), deque()
        elif item in self._ids:
            return
        self._ids.add(item)
        self._order.append(item)
        if len(self._order) > self.capacity:
            self._ids.discard(self._order.popleft())

    def __contains__(self, item: object) -> bool:
        return self._ids is not None and item in self._ids

    def __len__(self) -> int:
        return 0 if self._ids is None else len(self._ids)

    def oldest(self) -> int | None:
        return self._order[0] if self._order else None
