"""Open many authenticated chat connections and wait until each is fully served.

A connection counts as ready once it has answered our ``ping`` with a ``pong``: the
server handles frames in order and only after the session's offline catch-up, so a
``pong`` means the session is registered with its user and will get live traffic.
"""

from __future__ import annotations

import collections
import time

import attrs
import orjson

from bench.harness.wire import Connection, Loop, start_connection

PING = b'{"type":"ping"}'


@attrs.frozen
class Opened:
    """What ``open_ready`` achieved."""

    #: Ready connections, in the order of the targets that succeeded.
    connections: list[Connection]
    #: Why the others failed, and how many: reason -> count.
    failures: dict[str, int]
    #: Frames received before the ``pong`` (catch-up, presence), by ``type``.
    early_frames: dict[str, int]


def open_ready(
    loop: Loop,
    targets: list[tuple[str, object]],
    *,
    timeout: float,
    batch: int = 100,
) -> Opened:
    """Connect to each ``(chat url, key)`` and wait for its ``pong``, ``batch`` at a time.

    Never waits more than ``timeout`` seconds in all; a connection not ready by then
    is dropped and counted in ``failures`` (never raises for a refused connection)."""
    deadline = time.monotonic() + timeout
    ready: list[Connection] = []
    failures: collections.Counter[str] = collections.Counter()
    early: collections.Counter[str] = collections.Counter()
    for first in range(0, len(targets), batch):
        waiting: set[Connection] = set()
        for url, key in targets[first : first + batch]:
            try:
                conn = start_connection(url, key, max(0.1, deadline - time.monotonic()))
            except OSError as error:
                failures[f"connect failed: {error.strerror or error}"] += 1
                continue
            loop.add(conn)
            waiting.add(conn)
        pinged: set[Connection] = set()
        while waiting and time.monotonic() < deadline:
            for conn, frames in loop.poll(0.05):
                if conn not in waiting:
                    continue
                for frame in frames:
                    kind = orjson.loads(frame).get("type")
                    if kind == "pong":
                        waiting.discard(conn)
                        ready.append(conn)
                    else:
                        early[str(kind)] += 1
                if conn.closed is not None and conn in waiting:
                    waiting.discard(conn)
                    failures[conn.closed] += 1
            for conn in waiting - pinged:
                if conn.is_open:
                    loop.send_text(conn, PING)
                    loop.flush(conn)
                    pinged.add(conn)
        for conn in waiting:
            failures["not ready before the timeout"] += 1
            loop.drop(conn, "not ready before the timeout")
    return Opened(ready, dict(failures), dict(early))


def keep_idle(loop: Loop, seconds: float, *, until_quiet: float | None = None) -> dict[str, int]:
    """Serve the connections (answer the server's pings) for ``seconds`` without sending
    anything; return what happened meanwhile: frames by ``type`` and closes by reason.

    With ``until_quiet``, return as soon as no frame has arrived for that many seconds
    (e.g. to let the presence frames of a crowd's connects pass before measuring)."""
    seen: collections.Counter[str] = collections.Counter()
    now = time.monotonic()
    deadline, last_frame = now + seconds, now
    while (left := deadline - now) > 0:
        if until_quiet is not None:
            if now - last_frame >= until_quiet:
                break
            left = min(left, last_frame + until_quiet - now)
        for conn, frames in loop.poll(min(left, 0.5)):
            for frame in frames:
                seen[f"frame {orjson.loads(frame).get('type')}"] += 1
            if frames:
                last_frame = time.monotonic()
            if conn.closed is not None:
                seen[f"closed: {conn.closed}"] += 1
        now = time.monotonic()
    return dict(seen)
