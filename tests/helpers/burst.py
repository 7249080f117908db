"""A burst of direct messages from one sender, and what the sender saw of it."""

from __future__ import annotations

import attrs
import trio

from tests.helpers.chat import Frame


@attrs.define
class Burst:
    """What one sender saw: every client_id it tried to send, the acks, anything refused,
    and whether its connection died.

    ``next_frame`` counts a message as sent before it goes out: a frame cut short by a
    kill may still have landed."""

    prefix: str = "burst"
    sent: list[str] = attrs.Factory(list)
    acked: dict[str, int] = attrs.Factory(dict)
    refused: list[Frame] = attrs.Factory(list)
    closed: bool = False
    _progress: trio.Event = attrs.Factory(trio.Event)

    def text(self, client_id: str) -> str:
        # The client_id is in the text too, so duplicates show in history whatever fields
        # it has.
        return f"burst {client_id}"

    def frame(self, recipient_id: int, client_id: str) -> Frame:
        """The direct message with ``client_id`` (first sent, or sent again)."""
        return {
            "type": "message",
            "recipient_id": recipient_id,
            "message": self.text(client_id),
            "client_id": client_id,
        }

    def next_frame(self, recipient_id: int) -> Frame:
        """The next message of the burst, counted as sent."""
        client_id = f"{self.prefix}-{len(self.sent)}"
        self.sent.append(client_id)
        return self.frame(recipient_id, client_id)

    def record(self, answer: Frame) -> None:
        """An ``ack`` or ``error`` frame came back."""
        if answer["type"] == "ack":
            self.acked[answer["client_id"]] = answer["message_id"]
        else:
            self.refused.append(answer)
        self._progress.set()
        self._progress = trio.Event()

    async def wait_acks(self, count: int) -> None:
        while len(self.acked) < count:
            await self._progress.wait()

    def unacked(self) -> list[str]:
        return [client_id for client_id in self.sent if client_id not in self.acked]
