"""What values storage can hold, checked before any statement runs, alike on both backends.

PostgreSQL refuses text with NUL (U+0000) and integers outside signed 64 bits; SQLite
would store the NUL and raise ``OverflowError`` for the integer. Checking here, at the
storage boundary, gives both backends one behaviour:

- a write of such a value raises ``InvalidData`` and writes nothing;
- a lookup by such a value finds nothing (no stored row can hold it), so it answers
  None, an empty list, or False, like any other lookup that finds nothing;
- a bound (``before``, ``after_id``, ``limit``) beyond the range is the range's end.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from hubbub.storage.errors import InvalidData
from hubbub.storage.records import NewDirectMessage, NewGroupMessage

MIN_INT = -(2**63)
#: The largest integer both databases hold: ids never exceed it, so it also stands for
#: "no upper bound".
MAX_INT = 2**63 - 1


def fits(*numbers: int) -> bool:
    """Whether every one of ``numbers`` is a signed 64-bit integer."""
    return all(MIN_INT <= n <= MAX_INT for n in numbers)


def clamp(bound: int) -> int:
    """``bound`` moved into the signed 64-bit range: the same bound for every stored row."""
    return min(max(bound, MIN_INT), MAX_INT)


def possible_ids(ids: Iterable[int]) -> list[int]:
    """Those of ``ids`` that a row could have."""
    return [i for i in ids if MIN_INT <= i <= MAX_INT]


def _text_fault(text: str | None) -> str | None:
    if text is None:
        return None
    if "\x00" in text:
        return "contains a NUL character (U+0000)"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "is not valid Unicode (it holds a lone surrogate)"
    return None


def storable(*texts: str | None) -> bool:
    """Whether every one of ``texts`` can be stored (and so could be found)."""
    return all(_text_fault(text) is None for text in texts)


def check_text(**fields: str | None) -> None:
    """Raise ``InvalidData`` naming the first of ``fields`` that cannot be stored."""
    for name, text in fields.items():
        if (fault := _text_fault(text)) is not None:
            raise InvalidData(f"{name} {fault}, which storage cannot hold")


def check_ids(**fields: int) -> None:
    """Raise ``InvalidData`` naming the first of ``fields`` outside signed 64 bits: no
    user, group or message has such an id."""
    for name, number in fields.items():
        if not fits(number):
            raise InvalidData(f"{name} {number} is outside the signed 64-bit range")


def check_messages(batch: Sequence[NewDirectMessage | NewGroupMessage]) -> None:
    """``check_ids`` and ``check_text`` over every message of a batch, naming its index."""
    for index, m in enumerate(batch):
        other = m.recipient_id if isinstance(m, NewDirectMessage) else m.group_id
        if (
            MIN_INT <= m.author_id <= MAX_INT
            and MIN_INT <= other <= MAX_INT
            and _text_fault(m.body) is None
            and _text_fault(m.image_url) is None
            and _text_fault(m.client_id) is None
        ):
            continue  # the common case, checked without naming the fields
        try:
            check_ids(author_id=m.author_id)
            if isinstance(m, NewDirectMessage):
                check_ids(recipient_id=m.recipient_id)
            else:
                check_ids(group_id=m.group_id)
            check_text(body=m.body, image_url=m.image_url, client_id=m.client_id)
        except InvalidData as refused:
            raise InvalidData(f"message {index} of the batch: {refused}") from None
