"""The keepalive sweep, against a fake clock: pure logic, no sockets."""

from __future__ import annotations

import math

import attrs

from hubbub.ws.keepalive import Keepalive


@attrs.define(eq=False)
class FakeSession:
    heard: float = 0.0
    writing: float | None = None
    pings: int = 0
    closed: tuple[int, str] | None = None
    expires: float = math.inf

    def last_heard(self) -> float:
        return self.heard

    def ping_soon(self) -> None:
        self.pings += 1

    def writing_since(self) -> float | None:
        return self.writing

    def close_slow(self) -> None:
        self.closed = (1013, "slow consumer")

    def token_expires_at(self) -> float:
        return self.expires

    def close_soon(self, code: int, reason: str) -> None:
        self.closed = (code, reason)


def test_a_silent_session_is_pinged_once_then_closed_without_a_pong() -> None:
    keepalive = Keepalive(interval=10, timeout=5)
    session = FakeSession()
    keepalive.watch(session)
    keepalive.sweep(now=9)
    assert session.pings == 0
    keepalive.sweep(now=10)
    keepalive.sweep(now=12)
    assert session.pings == 1 and session.closed is None
    keepalive.sweep(now=15)
    assert session.closed == (1011, "keepalive timeout")
    assert len(keepalive) == 0


def test_an_answer_after_the_ping_keeps_the_session() -> None:
    keepalive = Keepalive(interval=10, timeout=5)
    session = FakeSession()
    keepalive.watch(session)
    keepalive.sweep(now=10)
    session.heard = 11  # the pong (or any frame) arrived
    keepalive.sweep(now=16)
    assert session.closed is None
    keepalive.sweep(now=21)
    assert session.pings == 2 and session.closed is None


def test_a_chatty_session_is_never_pinged_and_forgotten_ones_are_left_alone() -> None:
    keepalive = Keepalive(interval=10, timeout=5)
    chatty, gone = FakeSession(), FakeSession()
    keepalive.watch(chatty)
    keepalive.watch(gone)
    keepalive.forget(gone)
    for now in range(0, 100, 3):
        chatty.heard = now
        keepalive.sweep(now=now)
    assert chatty.pings == 0 and gone.pings == 0 and gone.closed is None


def test_a_write_stuck_past_the_timeout_closes_the_session_as_slow() -> None:
    keepalive = Keepalive(interval=10, timeout=5)
    stuck, busy = FakeSession(), FakeSession()
    keepalive.watch(stuck)
    keepalive.watch(busy)
    stuck.writing = busy.writing = 1.0
    stuck.heard = busy.heard = 1.0
    keepalive.sweep(now=5.9)
    assert stuck.closed is None
    busy.writing = None  # its write finished in time
    keepalive.sweep(now=6.0)
    assert stuck.closed == (1013, "slow consumer")
    assert busy.closed is None


def test_a_session_is_closed_1008_once_its_token_expires_and_not_before() -> None:
    keepalive = Keepalive(interval=10, timeout=5)
    expiring, lasting = FakeSession(expires=30.5), FakeSession(expires=1000.0)
    keepalive.watch(expiring)
    keepalive.watch(lasting)
    for now in (1.0, 15.0, 30.4):
        expiring.heard = lasting.heard = now  # chatty: expiry alone is on trial
        keepalive.sweep(now=now)
    assert expiring.closed is None
    keepalive.sweep(now=30.5)
    assert expiring.closed == (1008, "token expired")
    assert lasting.closed is None
    assert len(keepalive) == 1


def test_an_expired_token_closes_even_a_session_awaiting_its_pong() -> None:
    keepalive = Keepalive(interval=10, timeout=5)
    session = FakeSession(expires=12.0)
    keepalive.watch(session)
    keepalive.sweep(now=10)
    assert session.pings == 1
    keepalive.sweep(now=12)
    assert session.closed == (1008, "token expired")
