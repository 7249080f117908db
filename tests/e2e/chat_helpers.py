"""Small helpers shared by the chat end-to-end tests."""

from __future__ import annotations

from typing import Any

from hubbub.client import ChatClient


async def send_and_answer(chat: ChatClient, frame: dict[str, Any]) -> dict[str, Any]:
    """Send ``frame`` and return the ``ack`` or ``error`` with its ``client_id``."""
    client_id = frame.get("client_id")
    await chat.send(frame)
    return await chat.receive_where(
        lambda f: f["type"] in ("ack", "error") and f.get("client_id") == client_id
    )


def with_client_id(frame: dict[str, Any], client_id: str | None) -> dict[str, Any]:
    return frame if client_id is None else {**frame, "client_id": client_id}


async def send_direct(
    chat: ChatClient, recipient_id: int, text: str, client_id: str | None = None
) -> dict[str, Any]:
    """Send a direct message and return its ``ack`` (or the ``error`` that refused it)."""
    frame = {"type": "message", "recipient_id": recipient_id, "message": text}
    return await send_and_answer(chat, with_client_id(frame, client_id))


async def send_group(
    chat: ChatClient, group_id: int, text: str, client_id: str | None = None
) -> dict[str, Any]:
    """Send a group message and return its ``ack`` (or the ``error`` that refused it)."""
    frame = {"type": "group_message", "group_id": group_id, "message": text}
    return await send_and_answer(chat, with_client_id(frame, client_id))


async def next_message(chat: ChatClient) -> dict[str, Any]:
    return await chat.receive_type("message")


async def frames_until(chat: ChatClient, frame_type: str) -> list[dict[str, Any]]:
    """Every frame received up to and including the first of ``frame_type``, in order."""
    seen = []
    while True:
        frame = await chat.receive()
        seen.append(frame)
        if frame["type"] == frame_type:
            return seen


def find_in_tree(tree: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The node called ``name`` in a ``/health/supervisor`` tree, or None."""
    if tree["name"] == name:
        return tree
    for child in tree["children"]:
        if (found := find_in_tree(child, name)) is not None:
            return found
    return None
