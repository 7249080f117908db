"""Stream cursors: the opaque strings on stream frames, ``synced`` and ``GET /sync``.

A cursor is ``<epoch>.<position>``: the stream's epoch (a random name the database
gave its stream, so a cursor from another database, or one reset since, is recognised
as unknown) and a stream position in lowercase hexadecimal. Clients treat it as opaque;
only this module reads or writes one.
"""

from __future__ import annotations

import re

import attrs

#: The ``since`` value that asks for no replay at all.
NOW = "now"
MAX_CURSOR_LENGTH = 64

_CURSOR = re.compile(r"([0-9a-z]{1,32})\.([0-9a-f]{1,16})")


@attrs.frozen
class Cursor:
    epoch: str
    position: int

    def __str__(self) -> str:
        return f"{self.epoch}.{self.position:x}"


def parse_cursor(text: str) -> Cursor | None:
    """The cursor ``text`` spells, or None if it is malformed (the client lost its place)."""
    if len(text) > MAX_CURSOR_LENGTH:
        return None
    match = _CURSOR.fullmatch(text)
    if match is None:
        return None
    position = int(match.group(2), 16)
    if position >= 2**63:
        return None
    return Cursor(match.group(1), position)
