"""Blocks and mutes, written once for both backends (tables of migration 0004).

``user_blocks`` says who blocks whom; the chat domain keeps each live user's relations in
memory (``engine/chat/blocks.py``), so reading them here is off the message path.
``conversation_mutes`` holds a user's muted conversations; a mute past its
``muted_until`` is kept as a row but is not in force (``mutes`` and ``is_muted`` compare
with the time they are given).
"""

from __future__ import annotations

from datetime import UTC, datetime

from hubbub.storage import sql
from hubbub.storage.records import BlockRelations, MessageKind, Mute, UserRef
from hubbub.storage.values import check_ids, fits

_BLOCK = (
    "INSERT INTO user_blocks (blocker_id, blocked_id, created_at) VALUES ($1, $2, $3)"
    " ON CONFLICT (blocker_id, blocked_id) DO NOTHING RETURNING 1"
)
_UNBLOCK = "DELETE FROM user_blocks WHERE blocker_id = $1 AND blocked_id = $2 RETURNING 1"
_BLOCKED_USERS = (
    "SELECT u.id, u.username FROM user_blocks b JOIN users u ON u.id = b.blocked_id"
    " WHERE b.blocker_id = $1 ORDER BY u.id"
)
_IS_BLOCKED = "SELECT 1 FROM user_blocks WHERE blocker_id = $1 AND blocked_id = $2"
# Both directions in one read: the primary key serves the first half, the blocked_id
# index the second. The second column says which (1: user_id blocks them).
_RELATIONS = (
    "SELECT blocked_id, 1 FROM user_blocks WHERE blocker_id = $1"
    " UNION ALL SELECT blocker_id, 0 FROM user_blocks WHERE blocked_id = $1"
)
_MUTE = (
    "INSERT INTO conversation_mutes (user_id, kind, conversation_id, muted_until)"
    " VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, kind, conversation_id)"
    " DO UPDATE SET muted_until = excluded.muted_until"
)
_UNMUTE = (
    "DELETE FROM conversation_mutes WHERE user_id = $1 AND kind = $2"
    " AND conversation_id = $3 RETURNING 1"
)
_IN_FORCE = "(muted_until IS NULL OR muted_until > $2)"
_MUTES = (
    "SELECT kind, conversation_id, muted_until FROM conversation_mutes"
    f" WHERE user_id = $1 AND {_IN_FORCE} ORDER BY kind, conversation_id"
)
_IS_MUTED = (
    "SELECT 1 FROM conversation_mutes WHERE user_id = $1 AND kind = $3"
    f" AND conversation_id = $4 AND {_IN_FORCE}"
)


class BlocksAndMutes(sql.SqlStorage):
    """The block and mute methods of ``Storage``, one statement each."""

    async def block(self, blocker_id: int, blocked_id: int) -> bool:
        check_ids(blocker_id=blocker_id, blocked_id=blocked_id)
        now = self._stored_time(datetime.now(UTC))
        return bool(await self._rows(_BLOCK, blocker_id, blocked_id, now))

    async def unblock(self, blocker_id: int, blocked_id: int) -> bool:
        return fits(blocker_id, blocked_id) and bool(
            await self._rows(_UNBLOCK, blocker_id, blocked_id)
        )

    async def blocked_users(self, blocker_id: int) -> list[UserRef]:
        if not fits(blocker_id):
            return []
        return [UserRef(*row) for row in await self._rows(_BLOCKED_USERS, blocker_id)]

    async def is_blocked(self, blocker_id: int, blocked_id: int) -> bool:
        return fits(blocker_id, blocked_id) and bool(
            await self._rows(_IS_BLOCKED, blocker_id, blocked_id)
        )

    async def block_relations(self, user_id: int) -> BlockRelations:
        if not fits(user_id):
            return BlockRelations()
        rows = await self._rows(_RELATIONS, user_id)
        return BlockRelations(
            blocks=frozenset(other for other, mine in rows if mine),
            blocked_by=frozenset(other for other, mine in rows if not mine),
        )

    async def mute(
        self, user_id: int, kind: MessageKind, conversation_id: int, until: datetime | None
    ) -> None:
        check_ids(user_id=user_id, conversation_id=conversation_id)
        stored = None if until is None else self._stored_time(until)
        await self._rows(_MUTE, user_id, kind, conversation_id, stored)

    async def unmute(self, user_id: int, kind: MessageKind, conversation_id: int) -> bool:
        return fits(user_id, conversation_id) and bool(
            await self._rows(_UNMUTE, user_id, kind, conversation_id)
        )

    async def mutes(self, user_id: int, at: datetime) -> list[Mute]:
        if not fits(user_id):
            return []
        rows = await self._rows(_MUTES, user_id, self._stored_time(at))
        return [
            Mute(kind, conversation_id, None if until is None else self._stamp(until))
            for kind, conversation_id, until in rows
        ]

    async def is_muted(
        self, user_id: int, kind: MessageKind, conversation_id: int, at: datetime
    ) -> bool:
        if not fits(user_id, conversation_id):
            return False
        found = await self._rows(_IS_MUTED, user_id, self._stored_time(at), kind, conversation_id)
        return bool(found)
