"""The text and emoji rules the engine applies to ``edit`` and ``react`` after its
permission check, and that the codec applies to ``message``/``group_message`` itself."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hubbub.protocol import emoji_problem, errors, text_problem
from hubbub.protocol.codec import decode_client_frame
from hubbub.protocol.errors import ProtocolError


@pytest.mark.parametrize(
    ("text", "max_length", "problem"),
    [
        ("hi", 4000, None),
        ("x" * 10, 10, None),
        ("🙂" * 10, 10, None),  # characters, not bytes
        ("  padded  ", 10, None),  # kept verbatim; only all-blank text is empty
        ("x" * 11, 10, errors.MESSAGE_TOO_LONG),
        ("é" * 4001, 4000, errors.MESSAGE_TOO_LONG),
        (" " * 11, 10, errors.MESSAGE_TOO_LONG),  # too long is said first, as the codec does
        ("", 4000, errors.EMPTY_MESSAGE),
        (" ", 4000, errors.EMPTY_MESSAGE),
        (" \n\t\r ", 4000, errors.EMPTY_MESSAGE),
        ("\u3000\u00a0", 4000, errors.EMPTY_MESSAGE),
        ("", 0, errors.EMPTY_MESSAGE),
        ("x", 0, errors.MESSAGE_TOO_LONG),
    ],
)
def test_text_problem(text: str, max_length: int, problem: str | None) -> None:
    assert text_problem(text, max_length) == problem


@given(st.text(max_size=30), st.integers(min_value=0, max_value=30))
def test_text_problem_is_the_rule_messages_get(text: str, max_length: int) -> None:
    """The codec's own rule for a text-only message and ``text_problem`` are one rule."""
    if "\x00" in text:
        return  # refused as an invalid frame before any text rule
    data = orjson.dumps({"type": "message", "recipient_id": 2, "message": text})
    try:
        decode_client_frame(data, max_text_length=max_length)
    except ProtocolError as exc:
        assert text_problem(text, max_length) == exc.reason
    else:
        assert text_problem(text, max_length) is None


@pytest.mark.parametrize(
    "emoji",
    [
        "👍",
        "x",
        "a" * 32,
        "🙂" * 32,  # 32 characters (code points), 128 UTF-8 bytes
        "👩‍👩‍👧",  # a ZWJ sequence: five characters, none of them whitespace
        "🇫🇷",
        "+1",
        ":thumbsup:",
    ],
)
def test_emoji_problem_accepts(emoji: str) -> None:
    assert emoji_problem(emoji) is None


@pytest.mark.parametrize(
    "emoji",
    [
        "",
        "a" * 33,
        "🙂" * 33,
        " ",
        "👍 ",
        " 👍",
        "a b",
        "a\tb",
        "\t",
        "a\nb",
        "\n",
        "\r",
        "a\u3000b",  # ideographic space
        "\u3000",
        "\u00a0",  # no-break space
        "\u2028",  # line separator
        "\x0b",
        "\x00",
    ],
)
def test_emoji_problem_refuses(emoji: str) -> None:
    assert emoji_problem(emoji) == errors.INVALID_REACTION


@given(st.text(max_size=40))
def test_emoji_problem_is_one_whitespace_free_word_of_up_to_32_characters(emoji: str) -> None:
    fine = emoji.split() == [emoji] and len(emoji) <= 32 and "\x00" not in emoji
    assert (emoji_problem(emoji) is None) == fine
