"""``hubbub serve`` takes the started node's heap out of the collector's sight."""

from __future__ import annotations

import gc
from pathlib import Path

import trio

from hubbub.config import load_settings
from hubbub.node import serve
from tests.helpers.polling import poll_until


async def test_serve_freezes_the_startup_heap(tmp_path: Path, sqlite_url: str) -> None:
    settings = load_settings(
        environ={
            "HUBBUB_DATA_DIR": str(tmp_path),
            "HUBBUB_PORT": "0",
            "HUBBUB_DATABASE_URL": sqlite_url,
        }
    )
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve, settings)
            await poll_until(lambda: gc.get_freeze_count() > 0, what="the heap frozen", timeout=30)
            # Modules and the app, not a handful of objects.
            assert gc.get_freeze_count() > 10_000
            nursery.cancel_scope.cancel()
    finally:
        gc.unfreeze()
