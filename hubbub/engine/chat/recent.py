"""A bounded set of recent ids."""

from __future__ import annotations

from collections import deque

#: Ids remembered by default: catch-up ids per session, fanned-out ids per group.
CAPACITY = 4096


class RecentIds:
    """The last ``capacity`` ids added: a bounded set."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self._order: deque[int] = deque()
        self._ids: set[int] = set()
        self.capacity = capacity

    def add(self, item: int) -> None:
        if item in self._ids:
            return
        self._ids.add(item)
        self._order.append(item)
        if len(self._order) > self.capacity:
            self._ids.discard(self._order.popleft())

    def __contains__(self, item: object) -> bool:
        return item in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def oldest(self) -> int | None:
        return self._order[0] if self._order else None
