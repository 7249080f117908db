"""The operator page in a real browser (Debian's Chromium, driven by Playwright): the data
is refused without the token, the tree renders with it, and a crashed actor's restart
count rises on the page by itself (the page polls).

The node runs in the test's trio loop; Playwright's sync API runs in a worker thread and
calls back into trio (``trio.from_thread``) to crash the actor. ``HUBBUB_SCREENSHOT_DIR``
set: the final screenshot is also written there (docs/images/ops.png comes from it).
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import trio

from hubbub.client import Account, ChatClient, HubbubHTTP
from hubbub.node import Node
from tests.conftest import _unavailable
from tests.helpers.chat import attached
from tests.helpers.nodes import running_node
from tests.helpers.users import register

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu"]
TOKEN = "ops-token-for-the-browser-test-01"
#: Longest any one thing may take to show on the page (it polls every 2 s).
SHOWS_WITHIN_MS = 15_000


@pytest.fixture
def chromium() -> str:
    """The browser's path; skips (fails under CI=true) when Chromium or Playwright is
    missing. Never downloads a browser."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("Playwright is not installed (pip install -e '.[test]')")
    if shutil.which(CHROMIUM) is None:
        _unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    return CHROMIUM


@pytest.fixture
async def ops_node(tmp_path: Path, sqlite_url: str) -> AsyncIterator[Node]:
    # One backend: the page reads the same document whatever the storage (the /ops/state
    # tests in tests/e2e run on both).
    # The chatter below must not hit the rate limit.
    async with running_node(
        tmp_path / "data", sqlite_url, ops_token=TOKEN, direct_rate_limit="1000000"
    ) as node:
        yield node


async def chatter(node: Node, ada: Account, bo: Account) -> None:
    """Traffic for the page to show: ada and bo trade messages until cancelled."""
    async with (
        ChatClient.connect(node.url, ada.access_token) as ada_chat,
        ChatClient.connect(node.url, bo.access_token) as bo_chat,
    ):
        for chat in (ada_chat, bo_chat):
            await attached(chat)
        for n in itertools.count():
            sender, recipient = (ada_chat, bo) if n % 2 else (bo_chat, ada)
            ack = await sender.send_direct(recipient.id, f"message {n}", f"c{n}")
            assert ack["type"] == "ack"
            await trio.sleep(0.05)  # a steady rate to chart, not a benchmark


def drive(url: str, victim: int, crash: Callable[[], None], shot: Path) -> None:
    """The browser's side, in a worker thread."""
    browse(url, victim, crash, shot)


def browse(url: str, victim: int, crash: Callable[[], None], shot: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.set_default_timeout(SHOWS_WITHIN_MS)
            page.goto(f"{url}/ops")
            # No token: the shell loads, its data does not.
            expect(page.locator("#login")).to_be_visible()
            expect(page.locator("#dashboard")).to_be_hidden()
            assert page.evaluate("fetch('/ops/state').then(r => r.status)") == 401
            refused = page.evaluate(
                "fetch('/ops/state', {headers: {Authorization: 'Bearer nope'}}).then(r => r.status)"
            )
            assert refused == 401

            page.fill("#token", "not the token")
            page.click("#login-form button[type=submit]")
            expect(page.locator("#login-error")).to_have_text("That token was refused.")
            assert page.evaluate("sessionStorage.getItem('hubbub.opsToken')") is None

            page.fill("#token", TOKEN)
            page.click("#login-form button[type=submit]")
            expect(page.locator("#dashboard")).to_be_visible()
            expect(page.locator("#status")).to_have_text("ready")
            for name in ("node", "storage-writer", "users", "front-door"):
                row = page.locator(f'#tree tr[data-name="{name}"]')
                expect(row).to_have_attribute("data-state", "running")
            restarts = page.locator(f'#tree tr[data-name="user:{victim}"] .restarts')
            expect(restarts).to_have_attribute("data-restarts", "0")
            expect(page.locator("#nodes tr.self")).to_have_count(1)

            crash()
            # The page polls: the rising count shows without a reload.
            expect(restarts).to_have_attribute("data-restarts", "1")
            expect(restarts).to_have_class("num restarts hot")
            expect(page.locator("#kpi-delivery")).not_to_have_text("\u2013")  # the placeholder
            # A few more polls, so the rate chart has a line to show.
            expect(page.locator("#tree-summary")).to_contain_text("· 1 restart")
            page.wait_for_timeout(6_000)  # for the screenshot's chart only; nothing waits on it
            page.mouse.move(0, 0)  # no row highlighted by a hover in the screenshot
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()


async def test_the_ops_page_shows_the_tree_and_a_crash_restarting(
    chromium: str, ops_node: Node, tmp_path: Path
) -> None:
    # The page shows running actors: the victim's must not park (go idle) before the
    # browser has read it.
    ops_node.chat.user_park_after = 120.0
    async with HubbubHTTP(ops_node.url) as http:
        ada, bo, victim = [await register(http, name) for name in ("ada", "bo", "cy")]
    shot = tmp_path / "ops.png"

    def crash() -> None:
        # A message no handler expects is a bug in the sender: the actor crashes, and
        # its supervisor restarts it (as tests/e2e/test_health.py does).
        async def tell() -> None:
            # ensure, not get: an idle user's actor may be parked (engine/chat/users.py).
            actor = await ops_node.users.ensure(victim.id)
            actor.tell_nowait(object())

        trio.from_thread.run(tell)

    async with (
        trio.open_nursery() as nursery,
        ChatClient.connect(ops_node.url, victim.access_token) as victim_chat,
    ):
        await attached(victim_chat)
        nursery.start_soon(chatter, ops_node, ada, bo)
        with trio.fail_after(120):
            await trio.to_thread.run_sync(drive, ops_node.url, victim.id, crash, shot)
        assert await victim_chat.wait_closed() == 1011
        nursery.cancel_scope.cancel()

    assert await trio.to_thread.run_sync(keep_screenshot, shot) > 10_000


def keep_screenshot(shot: Path) -> int:
    """Copy the screenshot to ``HUBBUB_SCREENSHOT_DIR`` if set; its size in bytes."""
    if target := os.environ.get("HUBBUB_SCREENSHOT_DIR"):
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, Path(target) / shot.name)
    return shot.stat().st_size
