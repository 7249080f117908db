"""The content rules of message text and reaction emoji, as pure functions.

The codec applies ``text_problem`` to ``message`` and ``group_message`` as it decodes them.
For ``edit`` and ``react`` it checks only the JSON types: the contract has ``not allowed``
checked before these rules, and only the engine knows who may, so the engine calls them
after its permission check. Each answers the refusal reason, or None when the value is fine.
"""

from __future__ import annotations

from hubbub.protocol.errors import EMPTY_MESSAGE, INVALID_REACTION, MESSAGE_TOO_LONG

MAX_EMOJI_LENGTH = 32


def text_problem(text: str, max_length: int) -> str | None:
    """Why ``text`` cannot be a message's text: ``message too long`` past ``max_length``
    characters, ``empty message`` if it is empty or only whitespace; else None."""
    if len(text) > max_length:
        return MESSAGE_TOO_LONG
    if not text.strip():
        return EMPTY_MESSAGE
    return None


def emoji_problem(emoji: str) -> str | None:
    """``invalid reaction`` unless ``emoji`` is 1 to 32 characters (Python ``str`` length:
    code points) with no whitespace character at all (``str.isspace``) and no NUL; else
    None."""
    if not 0 < len(emoji) <= MAX_EMOJI_LENGTH:
        return INVALID_REACTION
    if "\x00" in emoji or any(char.isspace() for char in emoji):
        return INVALID_REACTION
    return None
