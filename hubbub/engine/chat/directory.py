"""Usernames by id, cached: names never change, and every delivered frame carries them."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

from hubbub.storage import Storage


class UserDirectory:
    """A bounded LRU of ``user_id -> username`` in front of storage."""

    def __init__(self, storage: Storage, capacity: int = 100_000) -> None:
        self.storage = storage
        self.capacity = capacity
        self._names: OrderedDict[int, str] = OrderedDict()

    def cached(self, user_id: int) -> str | None:
        name = self._names.get(user_id)
        if name is not None:
            self._names.move_to_end(user_id)
        return name

    def remember(self, user_id: int, username: str) -> None:
        self._names[user_id] = username
        self._names.move_to_end(user_id)
        while len(self._names) > self.capacity:
            self._names.popitem(last=False)

    async def names(self, user_ids: Iterable[int]) -> dict[int, str]:
        """Names of those that exist; unknown ids are absent from the answer."""
        found: dict[int, str] = {}
        missing = []
        for user_id in user_ids:
            name = self.cached(user_id)
            if name is None:
                missing.append(user_id)
            else:
                found[user_id] = name
        if missing:
            for user_id, name in (await self.storage.usernames(missing)).items():
                self.remember(user_id, name)
                found[user_id] = name
        return found

    async def name(self, user_id: int) -> str | None:
        name = self.cached(user_id)
        if name is None:
            name = (await self.names([user_id])).get(user_id)
        return name
