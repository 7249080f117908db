"""Waiting for a state that offers no event to wait on."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable

import trio

POLL_INTERVAL = 0.05


async def poll_until(
    check: Callable[[], bool | Awaitable[bool]],
    *,
    what: str,
    timeout: float,
    interval: float = POLL_INTERVAL,
    every: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Return once ``check()`` (plain or async) is true, calling ``every()`` before each
    try; fail saying ``what`` did not happen within ``timeout`` seconds.

    Only for states visible by asking alone (another process's HTTP views, Redis, a
    server's locks, an actor's absence): wait on an event wherever there is one."""
    try:
        with trio.fail_after(timeout):
            while True:
                if every is not None:
                    await every()
                done = check()
                if inspect.isawaitable(done):
                    done = await done
                if done:
                    return
                # No event to wait on, only the deadline above.
                await trio.sleep(interval)
    except trio.TooSlowError:
        raise AssertionError(f"{what} did not happen within {timeout} s") from None
