"""Small helpers shared by the chat end-to-end tests."""

from __future__ import annotations

from typing import Any

from hubbub.client import ChatClient


async def send_direct(
    chat: ChatClient, recipient_id: int, text: str, client_id: str | None = None
) -> dict[str, Any]:
    """Send a direct message and return its ``ack`` (or the ``error`` that refused it)."""
    frame: dict[str, Any] = {"type": "message", "recipient_id": recipient_id, "message": text}
    if client_id is not None:
        frame["client_id"] = client_id
    await chat.send(frame)
    return await chat.receive_where(
        lambda f: f["type"] in ("ack", "error") and f.get("client_id") == client_id
    )


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
