"""Who is online: a user is online while at least one of their sessions is open.

``LocalPresence`` serves one node. A Redis implementation shares it across nodes, with
heartbeats so a dead node's users expire.
"""

from __future__ import annotations

import abc
from collections.abc import Collection


class Presence(abc.ABC):
    @abc.abstractmethod
    async def went_online(self, user_id: int) -> bool:
        """The user's first session on this node opened. True if they were offline
        everywhere before (so their contacts are to be told)."""

    @abc.abstractmethod
    async def went_offline(self, user_id: int) -> bool:
        """The user's last session on this node closed. True if now offline everywhere."""

    @abc.abstractmethod
    async def is_online(self, user_id: int) -> bool: ...

    @abc.abstractmethod
    async def online_among(self, user_ids: Collection[int]) -> set[int]:
        """Which of ``user_ids`` are online (one round trip where there is one to make)."""

    @abc.abstractmethod
    async def online_users(self) -> list[int]:
        """Every online user id, ascending."""


class LocalPresence(Presence):
    def __init__(self) -> None:
        self._online: set[int] = set()

    async def went_online(self, user_id: int) -> bool:
        fresh = user_id not in self._online
        self._online.add(user_id)
        return fresh

    async def went_offline(self, user_id: int) -> bool:
        self._online.discard(user_id)
        return True

    async def is_online(self, user_id: int) -> bool:
        return user_id in self._online

    def is_online_now(self, user_id: int) -> bool:
        return user_id in self._online

    async def online_among(self, user_ids: Collection[int]) -> set[int]:
        return self._online.intersection(user_ids)

    async def online_users(self) -> list[int]:
        return sorted(self._online)
