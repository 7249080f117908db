"""Reading a WebSocket's frames in tests.

Sending and waiting for the answer is ``ChatClient.send_direct`` / ``send_group`` (the
``ack`` or ``error`` with the same ``client_id``), or ``ChatClient.receive_answer``
after several sends.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import trio

from hubbub.client import ChatClient

Frame = dict[str, Any]
FramePredicate = Callable[[Frame], bool]


#: What v2 adds to frames a v1 client already knew (docs/contract.md: "new fields may
#: appear on v1 frames").
V2_FIELDS = frozenset({"cursor"})


def v1_fields(frame: Frame) -> Frame:
    """``frame`` without what v2 added: what a v1 assertion compares."""
    return {key: value for key, value in frame.items() if key not in V2_FIELDS}


def is_type(frame_type: str) -> FramePredicate:
    return lambda frame: frame["type"] == frame_type


def is_text(frame_type: str, text: str) -> FramePredicate:
    return lambda frame: frame["type"] == frame_type and frame.get("message") == text


async def frames_until(
    chat: ChatClient, last: FramePredicate, timeout: float = 10.0
) -> list[Frame]:
    """Every frame received up to and including the first for which ``last`` is true."""
    seen: list[Frame] = []
    with trio.fail_after(timeout):
        while not seen or not last(seen[-1]):
            seen.append(await chat.receive(timeout=timeout))
    return seen


async def attached(chat: ChatClient) -> ChatClient:
    """Wait until the session answers a ping: catch-up is done and the user is online
    (a session answers frames only then)."""
    await chat.send({"type": "ping"})
    await chat.receive_type("pong", timeout=10)
    return chat


async def drain(chat: ChatClient, timeout: float = 10.0) -> list[Frame]:
    """Every frame the server queued for ``chat`` before it answered a new ping (the pong
    itself left out)."""
    await chat.send({"type": "ping"})
    return (await frames_until(chat, is_type("pong"), timeout))[:-1]


async def next_message(chat: ChatClient) -> Frame:
    return await chat.receive_type("message")


def counts(frames: Iterable[Frame], frame_type: str) -> Counter[int]:
    """How many times each message id came in frames of ``frame_type``."""
    return Counter(frame["message_id"] for frame in frames if frame["type"] == frame_type)
