"""Each sender's window of unacked messages: what to send once one is answered."""

from __future__ import annotations

from collections import deque
from typing import Protocol


class Window(Protocol):
    """A sender's state: sends in flight, answered, held back, and the next number."""

    inflight: int
    resolved: int
    backlog: deque[float]
    next_seq: int


def answered(
    window: Window, *, sending: bool, closed_loop: bool, messages: int, now: float
) -> float | None:
    """Free the answered send's slot; return the due time of the message to send next in
    it (a held-back one first: measured from when it was due, so a full window shows up
    as latency), or None if nothing is to be sent."""
    window.inflight -= 1
    window.resolved += 1
    if not sending:
        return None
    if window.backlog:
        return window.backlog.popleft()
    if closed_loop and window.next_seq < messages:
        return now
    return None
