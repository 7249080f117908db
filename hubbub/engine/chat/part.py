"""What every rule of the chat domain works with."""

from __future__ import annotations

import attrs

from hubbub.engine.chat.directory import UserDirectory
from hubbub.engine.chat.ports import Bus
from hubbub.storage import Storage


@attrs.define(kw_only=True)
class ChatPart:
    """Storage (the truth), the bus (who hears of it) and the directory (names)."""

    storage: Storage
    bus: Bus
    directory: UserDirectory
