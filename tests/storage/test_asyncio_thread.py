"""The asyncio loop on its own thread that carries asyncpg (``hubbub.storage.asyncio_thread``)."""

from __future__ import annotations

import asyncio
import threading

import pytest
import trio

from hubbub.storage.asyncio_thread import open_asyncio_thread


async def test_a_coroutine_runs_on_the_loops_thread_and_answers() -> None:
    async def where() -> str:
        await asyncio.sleep(0)
        return threading.current_thread().name

    async with open_asyncio_thread("test-loop") as loop:
        assert await loop.run(where()) == "test-loop"


async def test_what_the_coroutine_raises_comes_out() -> None:
    async def fails() -> None:
        raise KeyError("mine")

    async with open_asyncio_thread("test-loop") as loop:
        with pytest.raises(KeyError):
            await loop.run(fails())


async def test_a_cancelled_caller_returns_after_the_coroutines_clean_up() -> None:
    steps: list[str] = []
    started = trio.Event()
    token = trio.lowlevel.current_trio_token()

    async def slow() -> None:
        token.run_sync_soon(started.set)
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            steps.append("cancelled")
            await asyncio.sleep(0.2)  # clean-up that takes a while, as asyncpg's can
            steps.append("cleaned up")
            raise

    async with open_asyncio_thread("test-loop") as loop:
        with trio.move_on_after(10) as scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(loop.run, slow())
                await started.wait()
                nursery.cancel_scope.cancel()
        assert not scope.cancelled_caught
        assert steps == ["cancelled", "cleaned up"]


async def test_the_loop_stops_and_closes_with_the_block() -> None:
    async def running() -> bool:
        return asyncio.get_running_loop().is_running()

    async with open_asyncio_thread("test-loop") as loop:
        assert await loop.run(running())
    # The thread has left run_forever (it goes back to Trio's thread cache).
    assert loop.loop.is_closed()
    coroutine = running()
    with pytest.raises(RuntimeError):
        await loop.run(coroutine)
