"""The chat domain's vocabulary: every message its actors take and every event kind.

A leaf module: actors and the code that talks to them both import it, and it imports
nothing of theirs, so no module needs another's internals to send it something.
"""

from __future__ import annotations

from typing import Any

import attrs
import trio

from hubbub.storage import NewDirectMessage, NewGroupMessage

#: A user-channel event: the user joined the group ``message_id``.
JOINED = "joined"
#: Event kinds on a group channel.
MEMBERSHIP = "membership"
#: A user-channel event: close every session of the user (the server API's disconnect).
#: On the bus, so the node holding each session does it.
DISCONNECT = "disconnect"


@attrs.frozen(slots=True)
class IsMember:
    user_id: int


@attrs.frozen(slots=True)
class Reload:
    """Load the members from storage."""


# -- UserActor -------------------------------------------------------------


@attrs.frozen(slots=True)
class Attach:
    session: Any


@attrs.frozen(slots=True)
class Detach:
    session: Any


@attrs.frozen(slots=True)
class Resync:
    """The shared bus was down: fetch from storage what live delivery may have missed."""


@attrs.frozen(slots=True)
class AnnounceDelivered:
    """These direct messages, whose authors were told ``pending``, reached a session of
    the user live: mark them delivered and tell the authors (``live_pending.py``)."""

    message_ids: tuple[int, ...]


# -- StorageWriter ---------------------------------------------------------


@attrs.frozen(slots=True)
class StoreDirect:
    message: NewDirectMessage
    #: Whoever asked (a session), handed back with the result.
    origin: Any
    #: When the node admitted the send (trio clock): ``hubbub_delivery_seconds`` starts here.
    received_at: float = attrs.field(factory=trio.current_time, kw_only=True)


@attrs.frozen(slots=True)
class StoreGroup:
    message: NewGroupMessage
    origin: Any
    group_name: str = ""
    received_at: float = attrs.field(factory=trio.current_time, kw_only=True)


@attrs.frozen(slots=True)
class MarkDelivered:
    message_ids: tuple[int, ...]


@attrs.frozen(slots=True)
class FlushDelivered:
    """Commit the held delivery marks now (a session left: it may reconnect elsewhere).

    ``done``, if given, is set once the marks queued before this one have been handed to
    storage: committed, or (storage refused them) kept to be tried again."""

    done: trio.Event | None = attrs.field(default=None, eq=False)
