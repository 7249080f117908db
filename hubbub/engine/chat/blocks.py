"""Blocks, as the chat domain enforces them, without a database read per message.

Each node keeps the block relations (``storage.BlockRelations``: whom the user blocks, who
blocks the user) of every user with a UserActor here. A UserActor loads its user's on the
first attach, before the session reads a frame, and forgets them when it stops. A change
(``POST``/``DELETE /users/{id}/block``) is committed, then announced on the bus as a
``blocks`` event on both users' channels: every node where either is live re-reads that
user's relations (one read per change and node, never per message). The node that made
the change re-reads before it answers, so its own next frame already sees it; another
node sees it one bus hop and one read later (milliseconds). After a bus outage the
resync that follows it re-reads every live user's relations, so a change announced
while the bus was down takes effect once the bus is back.

What is enforced (docs/integrations.md, "Block and mute"):

- a blocked user's direct messages, edits and reactions in the conversation with the
  blocker are refused ``not allowed`` (the blocker's own are not);
- presence and typing frames do not pass between the two, either way: the receiving
  UserActor drops those whose ``actor_id`` it has a block relation with, and presence
  lookups show such a user offline, without a last seen.

A user with no UserActor here (a server API call on the author's behalf, say) is looked
up in storage instead, so the rule holds whoever sends.
"""

from __future__ import annotations

import itertools

from hubbub.storage import BlockRelations, Storage

#: The event kind that tells a channel's owner its user's block relations changed.
BLOCKS_CHANGED = "blocks"
#: Event kinds that do not pass between two users with a block between them.
HIDDEN_KINDS = frozenset(("presence", "typing"))
#: What every user without a block relation shares: most users, and each read returns
#: fresh (empty) frozensets that would cost ~0.9 KiB per live user (bench/idle).
_NO_RELATIONS = BlockRelations()
_NO_ONE: frozenset[int] = frozenset()


class BlockCache:
    """The block relations of the users live on this node."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._relations: dict[int, BlockRelations] = {}
        self._hidden: dict[int, frozenset[int]] = {}
        #: Which read each entry came from. Reads are numbered as they start, and a read
        #: that started later saw every commit an earlier one saw, so an answer older than
        #: the one in place is dropped: concurrent re-reads cannot leave a stale state.
        self._read_of: dict[int, int] = {}
        self._reads = itertools.count(1)
        #: Who loaded each entry (its UserActor): only that one forgets it, so an actor
        #: that stops late cannot drop what its successor loaded.
        self._owners: dict[int, object] = {}

    async def load(self, user_id: int, owner: object) -> None:
        """Read and keep ``user_id``'s relations (the user came live here, in ``owner``)."""
        self._owners[user_id] = owner
        await self._read(user_id, keep_new=True)

    async def refresh(self, user_id: int) -> None:
        """Read ``user_id``'s relations again, if they are kept here."""
        if user_id in self._relations:
            await self._read(user_id, keep_new=False)

    def forget(self, user_id: int, owner: object) -> None:
        """The user is no longer live here in ``owner`` (a no-op if another loaded it)."""
        if self._owners.get(user_id) is not owner:
            return
        del self._owners[user_id]
        self._relations.pop(user_id, None)
        self._hidden.pop(user_id, None)
        self._read_of.pop(user_id, None)

    def hand_over(self, user_id: int, owner: object, successor: object) -> None:
        """``successor`` now owns what ``owner`` loaded (a parked UserActor's heir)."""
        if self._owners.get(user_id) is owner:
            self._owners[user_id] = successor

    async def _read(self, user_id: int, *, keep_new: bool) -> None:
        ticket = next(self._reads)
        relations = await self.storage.block_relations(user_id)
        if not keep_new and user_id not in self._relations:
            return  # forgotten while reading
        if ticket < self._read_of.get(user_id, 0):
            return
        self._read_of[user_id] = ticket
        if not relations.blocks and not relations.blocked_by:
            self._relations[user_id], self._hidden[user_id] = _NO_RELATIONS, _NO_ONE
        else:
            self._relations[user_id] = relations
            self._hidden[user_id] = relations.either

    def hides(self, user_id: int, other_id: int) -> bool:
        """Whether a block between the two is known here (``user_id`` is live here)."""
        hidden = self._hidden.get(user_id)
        return hidden is not None and other_id in hidden

    async def hidden_from(self, user_id: int) -> frozenset[int]:
        """Everyone ``user_id`` has a block with, either way (from storage if the user is
        not live here)."""
        hidden = self._hidden.get(user_id)
        if hidden is None:
            hidden = (await self.storage.block_relations(user_id)).either
        return hidden

    async def refuses(self, sender_id: int, other_id: int) -> bool:
        """Whether ``other_id`` blocks ``sender_id``: the sender's direct messages, edits and
        reactions in their conversation are refused. A dictionary lookup for a sender live
        here (every WebSocket sender is); a storage read otherwise."""
        relations = self._relations.get(sender_id)
        if relations is None:
            return await self.storage.is_blocked(other_id, sender_id)
        return other_id in relations.blocked_by
