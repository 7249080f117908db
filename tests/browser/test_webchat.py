"""Two people in two browser profiles talk, lose the network, and pick up again.

Each expectation waits (Playwright's ``expect``, bounded by EXPECT_TIMEOUT_MS) for what
a person would see; nothing sleeps and hopes.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

try:
    from playwright.sync_api import Browser, expect
except ImportError:  # pragma: no cover - depends on the environment
    if os.environ.get("CI", "").lower() == "true":
        raise
    pytest.skip("playwright is not installed (pip install -e '.[test]')", allow_module_level=True)

from tests.browser.chat_page import (
    bubble,
    message_text,
    no_page_errors,
    open_conversation,
    picture,
    send,
    start_direct,
    two_people,
    wait_online,
)
from tests.browser.node import node_subprocess


def test_two_people_chat_with_every_feature(browser: Browser, node_url: str, shots: Path) -> None:
    (ada_ctx, ada, ada_name), (bo_ctx, bo, bo_name) = two_people(browser, node_url)

    start_direct(ada, bo_name)
    send(ada, "Hello! Are we still on for lunch?")
    expect(bubble(ada, "still on for lunch")).to_be_visible()

    # Markup in a message is text, never markup.
    hostile = "<b>not bold</b> & <img src=x onerror=window.pwned=1>"
    send(ada, hostile)
    expect(bubble(ada, "not bold").locator(".text")).to_have_text(hostile)
    assert bubble(ada, "not bold").locator(".text b, .text img").count() == 0

    # bo has not opened it yet: unread.
    row = bo.locator("#conversation-list .conversation", has_text=ada_name)
    expect(row.locator(".badge")).to_have_text("2")
    expect(bo).to_have_title("(2) hubbub")
    # Delivered to bo's open page, not read yet.
    expect(bubble(ada, "still on for lunch").locator(".ticks")).to_have_attribute(
        "aria-label", "Delivered"
    )
    open_conversation(bo, ada_name)
    expect(row.locator(".badge")).to_have_count(0)
    expect(bo).to_have_title("hubbub")
    expect(bubble(bo, "not bold").locator(".text")).to_have_text(hostile)
    assert bo.evaluate("window.pwned") is None
    # Opened and visible: a read receipt reaches ada.
    expect(bubble(ada, "still on for lunch").locator(".ticks")).to_have_attribute(
        "aria-label", "Read"
    )

    # Typing shows on the other side while bo types, and goes when bo sends.
    bo.get_by_label("Message", exact=True).press_sequentially("Yes, 12:30")
    expect(ada.locator("#thread-status")).to_have_text("typing…")
    bo.get_by_label("Message", exact=True).press("Enter")
    expect(bubble(ada, "Yes, 12:30")).to_be_visible()
    expect(ada.locator("#thread-status")).not_to_have_text("typing…")

    # bo reacts to ada's message.
    mine = bubble(bo, "still on for lunch")
    mine.hover()
    mine.get_by_role("button", name="React").click()
    bo.get_by_role("button", name="React ❤️").click()
    expect(bubble(ada, "still on for lunch").locator(".chip")).to_have_text("❤️1")

    # ada edits her message; bo sees the new text, marked edited.
    theirs = bubble(ada, "still on for lunch")
    theirs.hover()
    theirs.get_by_role("button", name="Edit").click()
    box = ada.get_by_label("Message", exact=True)
    expect(box).to_have_value("Hello! Are we still on for lunch?")
    box.fill("Hello! Are we still on for lunch today?")
    box.press("Enter")
    edited = bubble(bo, "lunch today?")
    expect(edited.locator(".edited")).to_have_text("edited")

    # bo replies to it; the reply quotes it on ada's side.
    edited.hover()
    edited.get_by_role("button", name="Reply").click()
    expect(bo.locator("#composer-bar-label")).to_have_text(f"Replying to {ada_name}")
    send(bo, "Definitely. The usual place?")
    reply = bubble(ada, "The usual place?")
    expect(reply.locator(".quote-text")).to_have_text("Hello! Are we still on for lunch today?")

    # An image: uploaded, sent, shown inline on both sides.
    ada.locator("#file-input").set_input_files(str(picture(shots / "photo.png")))
    photo = bo.locator("#messages li.message img.photo")
    expect(photo).to_have_attribute("src", re.compile(r"^/media/[0-9a-f]+\.png$"))
    expect(photo).to_have_js_property("complete", True)
    assert photo.evaluate("img => img.naturalWidth") == 320
    send(ada, "The view from the office today. See you there!")
    expect(bubble(bo, "See you there")).to_be_visible()

    ada.screenshot(path=str(shots / "desktop-ada.png"))
    bo.screenshot(path=str(shots / "desktop-bo.png"))

    # bo deletes his reply; both see a tombstone in its place.
    gone = bubble(bo, "The usual place?")
    gone.hover()
    gone.get_by_role("button", name="Delete").click()
    bo.get_by_role("button", name="Delete", exact=True).last.click()
    expect(ada.locator("#messages li.message.deleted .tombstone")).to_have_text(
        "This message was deleted"
    )
    expect(bubble(ada, "The usual place?")).to_have_count(0)
    expect(bo.locator("#messages li.message.deleted")).to_have_count(1)

    # Presence: bo is online in ada's header and list, and goes offline when he leaves.
    expect(ada.locator("#thread-status")).to_have_text("online")
    expect(ada.locator("#conversation-list .conversation .presence-dot")).to_have_count(1)
    no_page_errors(ada, bo)
    bo_ctx.close()
    expect(ada.locator("#thread-status")).to_have_text(re.compile(r"^last seen"))
    expect(ada.locator("#conversation-list .conversation .presence-dot")).to_have_count(0)
    no_page_errors(ada)
    ada_ctx.close()


def test_offline_and_back_resumes_with_nothing_lost_or_repeated(
    browser: Browser, node_url: str, shots: Path
) -> None:
    (ada_ctx, ada, ada_name), (bo_ctx, bo, bo_name) = two_people(browser, node_url)
    sockets: list[str] = []
    bo.on("websocket", lambda ws: sockets.append(ws.url))
    start_direct(ada, bo_name)
    send(ada, "before the tunnel")
    open_conversation(bo, ada_name)
    expect(bubble(bo, "before the tunnel")).to_be_visible()

    # bo's network goes away (a train tunnel, a closed lid); ada keeps writing.
    bo_ctx.set_offline(True)
    expect(bo.locator("#connection")).not_to_have_text("Online")
    expect(bo.get_by_label("Message", exact=True)).to_have_attribute(
        "placeholder", re.compile("^Offline")
    )
    for n in range(1, 4):
        send(ada, f"while away {n}")
        expect(bubble(ada, f"while away {n}").locator(".ticks")).to_be_visible()
    # bo writes too: it waits in the outbox until the socket is back.
    send(bo, "typed in the tunnel")
    expect(bubble(bo, "typed in the tunnel").locator(".ticks")).to_have_attribute(
        "aria-label", "Sending"
    )

    bo_ctx.set_offline(False)
    wait_online(bo)
    expect(bubble(bo, "while away 3")).to_be_visible()
    expect(bubble(ada, "typed in the tunnel")).to_be_visible()
    expected = ["before the tunnel", "while away 1", "while away 2", "while away 3"]
    expect(bo.locator("#messages li.message .text")).to_have_count(5)
    expect(message_text(bo)).to_have_text([*expected, "typed in the tunnel"])
    expect(ada.locator("#messages li.message .text")).to_have_count(5)
    # The reopened socket resumed from the cursor bo had kept; bo reads on return.
    assert sockets, "bo's page opened no socket after going back online"
    assert "since=start" not in sockets[-1]
    assert "token=" not in sockets[-1]  # The token travels as the subprotocol.
    assert re.search(r"since=[0-9a-z]+\.[0-9a-f]+", sockets[-1]), sockets[-1]
    expect(bubble(ada, "while away 3").locator(".ticks")).to_have_attribute("aria-label", "Read")

    # The server drops the socket (a node restart, a proxy's idle timeout): it resumes.
    bo.evaluate("window.hubbub.socket.ws.close()")
    send(ada, "after the drop")
    expect(bubble(bo, "after the drop")).to_be_visible()
    wait_online(bo)

    # A reload resumes from the cursor kept in localStorage: still each message once.
    cursor = bo.evaluate(
        "Object.entries(localStorage).find(([k]) => k.startsWith('hubbub.cursor.'))[1]"
    )
    assert cursor and "." in cursor
    bo.reload()
    wait_online(bo)
    open_conversation(bo, ada_name)
    expect(bo.locator("#messages li.message .text")).to_have_count(6)
    expect(message_text(bo)).to_have_text([*expected, "typed in the tunnel", "after the drop"])
    bo.screenshot(path=str(shots / "resumed.png"))
    no_page_errors(ada, bo)
    ada_ctx.close()
    bo_ctx.close()


def test_expiring_tokens_are_refreshed_without_a_gap(browser: Browser, tmp_path: Path) -> None:
    # Access tokens that live 4 s: the server closes each socket with 1008 when its token
    # expires; the page refreshes the token, reconnects with since=, and loses nothing.
    with node_subprocess(tmp_path, access_token_ttl="4") as url:
        (ada_ctx, ada, ada_name), (bo_ctx, bo, bo_name) = two_people(browser, url)
        start_direct(ada, bo_name)
        send(ada, "first")
        open_conversation(bo, ada_name)
        expect(bubble(bo, "first")).to_be_visible()
        opened = bo.evaluate("window.hubbub.socket.opened")
        bo.wait_for_function(
            "n => window.hubbub.socket.opened >= n + 2", arg=opened, timeout=30_000
        )
        send(ada, "second")
        expect(bubble(bo, "second")).to_be_visible()
        send(bo, "still here")
        expect(bubble(ada, "still here")).to_be_visible()
        expect(message_text(bo)).to_have_text(["first", "second", "still here"])
        expect(bo.locator("#auth")).to_be_hidden()
        no_page_errors(ada, bo)
        ada_ctx.close()
        bo_ctx.close()


def test_history_pages_back(browser: Browser, node_url: str) -> None:
    (ada_ctx, ada, ada_name), (bo_ctx, bo, bo_name) = two_people(browser, node_url)
    start_direct(ada, bo_name)
    texts = [f"note {n:02d}" for n in range(1, 46)]
    for text in texts:
        send(ada, text)
    expect(ada.locator("#messages li.message .ticks[aria-label='Sending']")).to_have_count(0)

    # bo has 45 unread: opening the conversation loads (and reads) all of them.
    open_conversation(bo, ada_name)
    expect(bo.locator("#messages li.message")).to_have_count(45)
    expect(bubble(ada, "note 01").locator(".ticks")).to_have_attribute("aria-label", "Read")

    # A fresh page, nothing unread, loads the newest page (40), then older ones as the
    # reader scrolls up.
    bo.reload()
    wait_online(bo)
    open_conversation(bo, ada_name)
    expect(bo.locator("#messages li.message")).to_have_count(40)
    expect(message_text(bo)).to_have_text(texts[5:])
    # Scrolling to the top loads the older page (a click on "Load older messages" would
    # too, but scrolling the button into view already starts the load).
    bo.locator("#scroller").evaluate("el => { el.scrollTop = 0; }")
    expect(bo.locator("#messages li.message")).to_have_count(45)
    expect(message_text(bo)).to_have_text(texts)
    # What the reader was looking at stays put: the older messages went in above it.
    assert bo.locator("#scroller").evaluate("el => el.scrollTop") > 0
    top = bo.locator("#scroller").bounding_box()["y"]
    assert bubble(bo, "note 06").bounding_box()["y"] >= top
    expect(bo.get_by_role("button", name="Load older messages")).to_be_hidden()
    no_page_errors(ada, bo)
    ada_ctx.close()
    bo_ctx.close()


def test_a_lost_place_reloads_what_is_on_screen(browser: Browser, node_url: str) -> None:
    (ada_ctx, ada, ada_name), (bo_ctx, bo, bo_name) = two_people(browser, node_url)
    start_direct(ada, bo_name)
    send(ada, "one")
    open_conversation(bo, ada_name)
    send(bo, "two")
    expect(bubble(ada, "two")).to_be_visible()

    # A cursor the server does not know (another database, or older than the retention):
    # the server answers the v1 catch-up and synced(recovered=false); the page reloads the
    # list and the open conversation from HTTP, and shows each message once.
    sockets: list[str] = []
    bo.on("websocket", lambda ws: sockets.append(ws.url))
    bo.evaluate(
        """() => {
          const key = Object.keys(localStorage).find((k) => k.startsWith('hubbub.cursor.'));
          localStorage.setItem(key, 'zzzz.1');
          window.hubbub.socket.ws.close();
        }"""
    )
    send(ada, "three")
    expect(bubble(bo, "three")).to_be_visible()
    wait_online(bo)
    assert any("since=zzzz.1" in url for url in sockets), sockets
    expect(bo.locator("#messages li.message")).to_have_count(3)
    expect(message_text(bo)).to_have_text(["one", "two", "three"])
    # And the page carries on from the cursor the server gave it.
    fresh = bo.evaluate(
        "Object.entries(localStorage).find(([k]) => k.startsWith('hubbub.cursor.'))[1]"
    )
    assert fresh != "zzzz.1"
    no_page_errors(ada, bo)
    ada_ctx.close()
    bo_ctx.close()
