"""Typing indicators: ephemeral, never stored, never replayed; forwarded on the bus.

A client renews ``start`` every 3 s while its user types and the receivers let one lapse
after 6 s. The server forwards a ``start`` at most once per ``RENEW_INTERVAL`` per typer
and conversation: a client renewing faster costs a dictionary lookup and nothing else.
"""

from __future__ import annotations

import attrs
import trio

from hubbub.engine.chat.directory import UserDirectory
from hubbub.engine.chat.groups import GroupMessaging
from hubbub.engine.chat.ports import Bus, Event, Peer, group_channel, user_channel
from hubbub.protocol import errors as reasons
from hubbub.protocol import frames
from hubbub.protocol.codec import encode

#: A renewed ``start`` sooner than this after the last one forwarded is not forwarded.
RENEW_INTERVAL = 2.5
#: How long a forwarded ``start`` lasts at the receivers.
TYPING_LASTS = 6.0
#: Typers remembered at most; older entries are dropped first.
MAX_TRACKED = 100_000

_Key = tuple[int, str, int]


@attrs.define(kw_only=True)
class TypingRelay:
    bus: Bus
    directory: UserDirectory
    groups: GroupMessaging
    _started: dict[_Key, float] = attrs.field(factory=dict, init=False)

    async def typing(self, peer: Peer, frame: frames.Typing) -> None:
        if frame.group_id is not None:
            key: _Key = (peer.user_id, "group", frame.group_id)
        else:
            key = (peer.user_id, "direct", frame.recipient_id or 0)
        now = trio.current_time()
        if frame.state == "start":
            last = self._started.get(key)
            if last is not None and now - last < RENEW_INTERVAL:
                return
        elif key not in self._started:
            return  # nothing was forwarded for it to stop (or it has lapsed)
        if not await self._may(peer, frame):
            return
        self._remember(key, now, frame.state == "start")
        out = frames.TypingOut(
            user_id=peer.user_id,
            username=peer.username,
            recipient_id=frame.recipient_id,
            group_id=frame.group_id,
            state=frame.state,
        )
        event = Event("typing", encode(out), actor_id=peer.user_id)
        if frame.group_id is not None:
            self.bus.publish(group_channel(frame.group_id), event)
        elif frame.recipient_id != peer.user_id:
            self.bus.publish(user_channel(frame.recipient_id or 0), event)

    async def _may(self, peer: Peer, frame: frames.Typing) -> bool:
        if frame.group_id is not None:
            if not await self.groups.is_member(frame.group_id, peer.user_id):
                peer.refuse(reasons.NOT_ALLOWED)
                return False
            return True
        if await self.directory.name(frame.recipient_id or 0) is None:
            peer.refuse(reasons.RECIPIENT_NOT_FOUND)
            return False
        return True

    def _remember(self, key: _Key, now: float, start: bool) -> None:
        if not start:
            self._started.pop(key, None)
            return
        self._started.pop(key, None)
        self._started[key] = now
        if len(self._started) > MAX_TRACKED:
            # Insertion order is age order: drop the lapsed, oldest first.
            for old in list(self._started)[: len(self._started) - MAX_TRACKED]:
                del self._started[old]
        # Entries past their lapse are dropped lazily when the dict grows.
        if len(self._started) % 1024 == 0:
            for old, when in list(self._started.items()):
                if now - when < TYPING_LASTS:
                    break
                del self._started[old]
