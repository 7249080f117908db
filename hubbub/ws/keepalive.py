"""Keepalive for every connection of a node, from one task.

A connection silent for ``interval`` is pinged; one still silent ``timeout`` after the
ping is closed (1011). A connection whose write has been stuck for ``timeout`` (the
client stopped reading) is closed as a slow consumer (1013). A connection whose access
token has expired is closed (1008, ``token expired``): the client reconnects with a fresh
token. One sweeping task rather than a timer per connection: idle connections are most
connections, and a task per connection is memory per connection, a timeout per write is
CPU per write. Each close comes at most a sweep period (a quarter of the smaller of
``interval`` and ``timeout``) late.
"""

from __future__ import annotations

from typing import Protocol

import trio

CLOSE_POLICY = 1008
TOKEN_EXPIRED = "token expired"


class Watched(Protocol):
    """What the sweeper needs of a session."""

    def last_heard(self) -> float:
        """When the peer last sent anything (trio clock)."""

    def ping_soon(self) -> None:
        """Queue a ping; the session's writer sends it."""

    def writing_since(self) -> float | None:
        """When the write in progress started; None between writes."""

    def close_slow(self) -> None:
        """Close as a slow consumer (1013)."""

    def token_expires_at(self) -> float:
        """When the session's access token expires (trio clock)."""

    def close_soon(self, code: int, reason: str) -> None:
        """Close with ``code`` and ``reason``."""


class Keepalive:
    """Watches sessions; run ``run()`` under a supervisor."""

    def __init__(self, interval: float, timeout: float) -> None:
        self.interval = interval
        self.timeout = timeout
        #: Each watched session, with when it was pinged (None: not awaiting a pong).
        self._watched: dict[Watched, float | None] = {}

    def watch(self, session: Watched) -> None:
        self._watched[session] = None

    def forget(self, session: Watched) -> None:
        self._watched.pop(session, None)

    def __len__(self) -> int:
        return len(self._watched)

    def sweep(self, now: float) -> None:
        """Close the expired, the stuck and the unanswering; ping the silent.
        Synchronous: no session can slow it. A closed session is forgotten."""
        for session, pinged_at in list(self._watched.items()):
            if now >= session.token_expires_at():
                self._watched.pop(session, None)
                session.close_soon(CLOSE_POLICY, TOKEN_EXPIRED)
                continue
            writing = session.writing_since()
            if writing is not None and now - writing >= self.timeout:
                self._watched.pop(session, None)
                session.close_slow()
                continue
            heard = session.last_heard()
            if pinged_at is not None:
                if heard >= pinged_at:
                    self._watched[session] = None
                elif now - pinged_at >= self.timeout:
                    self._watched.pop(session, None)
                    session.close_soon(1011, "keepalive timeout")
                continue
            if now - heard >= self.interval:
                self._watched[session] = now
                session.ping_soon()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Sweep often enough that a ping or a close is at most a quarter-period late."""
        task_status.started()
        period = min(self.interval, self.timeout) / 4
        while True:
            await trio.sleep(period)
            self.sweep(trio.current_time())
