"""Two people in two browser profiles use the web chat end to end.

Each expectation waits (Playwright's ``expect``, bounded by EXPECT_TIMEOUT_MS) for what
a person would see; nothing sleeps and hopes.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

try:
    from playwright.sync_api import Browser, Page, expect
except ImportError:  # pragma: no cover - depends on the environment
    if os.environ.get("CI", "").lower() == "true":
        raise
    pytest.skip("playwright is not installed (pip install -e '.[test]')", allow_module_level=True)

from tests.browser.chat_page import (
    PHONE,
    bubble,
    message_texts,
    open_chat,
    open_conversation,
    send,
    sign_up,
    start_direct,
    unique,
    wait_online,
)
from tests.browser.node import node_subprocess


def _png(path: Path) -> Path:
    """A 320x200 picture: a sky, a sun, two hills."""
    image = Image.new("RGB", (320, 200))
    draw = ImageDraw.Draw(image)
    for y in range(200):
        draw.line([(0, y), (320, y)], fill=(255 - y // 3, 190 - y // 4, 140 + y // 3))
    draw.ellipse((210, 40, 270, 100), fill=(255, 236, 170))
    draw.ellipse((-80, 120, 220, 320), fill=(70, 120, 110))
    draw.ellipse((120, 140, 420, 360), fill=(50, 95, 95))
    image.save(path)
    return path


def _no_page_errors(*pages: Page) -> None:
    for page in pages:
        assert page.errors == [], page.errors  # type: ignore[attr-defined]


def test_two_people_chat_with_every_feature(browser: Browser, node_url: str, shots: Path) -> None:
    ada_name, bo_name = unique("ada"), unique("bo")
    ada_ctx, ada = open_chat(browser, node_url)
    bo_ctx, bo = open_chat(browser, node_url)
    sign_up(ada, ada_name)
    sign_up(bo, bo_name)

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
    ada.locator("#file-input").set_input_files(str(_png(shots / "photo.png")))
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
    _no_page_errors(ada, bo)
    bo_ctx.close()
    expect(ada.locator("#thread-status")).to_have_text(re.compile(r"^last seen"))
    expect(ada.locator("#conversation-list .conversation .presence-dot")).to_have_count(0)
    _no_page_errors(ada)
    ada_ctx.close()


def test_offline_and_back_resumes_with_nothing_lost_or_repeated(
    browser: Browser, node_url: str, shots: Path
) -> None:
    ada_name, bo_name = unique("ada"), unique("bo")
    ada_ctx, ada = open_chat(browser, node_url)
    bo_ctx, bo = open_chat(browser, node_url)
    sign_up(ada, ada_name)
    sign_up(bo, bo_name)
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
    assert message_texts(bo) == [*expected, "typed in the tunnel"]
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
    assert message_texts(bo) == [*expected, "typed in the tunnel", "after the drop"]
    bo.screenshot(path=str(shots / "resumed.png"))
    _no_page_errors(ada, bo)
    ada_ctx.close()
    bo_ctx.close()


def test_a_phone_shows_one_pane_at_a_time(browser: Browser, node_url: str, shots: Path) -> None:
    ada_name, bo_name = unique("ada"), unique("bo")
    ada_ctx, ada = open_chat(browser, node_url)
    phone_ctx, phone = open_chat(browser, node_url, viewport=PHONE)
    sign_up(ada, ada_name)
    sign_up(phone, bo_name)
    start_direct(ada, bo_name)
    send(ada, "Are you on your phone?")
    send(ada, "The new layout is nice on a small screen")

    sidebar, thread = phone.locator(".sidebar"), phone.locator("#thread")
    expect(sidebar).to_be_visible()
    expect(thread).to_be_hidden()
    open_conversation(phone, ada_name)
    expect(sidebar).to_be_hidden()
    expect(thread).to_be_visible()
    phone.mouse.move(PHONE["width"] // 2, PHONE["height"] // 2)  # No hover toolbar in the shot.
    send(phone, "Yes! Typing with my thumbs.")
    expect(bubble(ada, "thumbs")).to_be_visible()
    # Nothing sticks out sideways on a phone.
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    phone.screenshot(path=str(shots / "phone-thread.png"))

    # A file that is no image is refused by the upload; the page says so, and forgets it
    # when told to.
    fake = shots / "not-an-image.png"
    fake.write_bytes(b"this is text, whatever its name says")
    phone.locator("#file-input").set_input_files(str(fake))
    failure = phone.locator("#messages li.message.failed .failure")
    expect(failure).to_contain_text("Not sent:")
    failure.get_by_role("button", name="Dismiss").click()
    expect(phone.locator("#messages li.message.failed")).to_have_count(0)

    phone.get_by_role("button", name="Back to conversations").click()
    expect(sidebar).to_be_visible()
    expect(thread).to_be_hidden()
    phone.screenshot(path=str(shots / "phone-list.png"))
    _no_page_errors(ada, phone)
    ada_ctx.close()
    phone_ctx.close()


def _tab_to(page: Page, selector: str, limit: int = 25) -> None:
    """Press Tab until the element matching ``selector`` has the focus."""
    for _ in range(limit):
        if page.evaluate("s => document.activeElement?.matches(s)", selector):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {selector}")


def test_keyboard_alone(browser: Browser, node_url: str, shots: Path) -> None:
    ada_name, bo_name = unique("ada"), unique("bo")
    bo_ctx, bo = open_chat(browser, node_url)
    sign_up(bo, bo_name)
    ada_ctx, ada = open_chat(browser, node_url)
    keys = ada.keyboard

    # Sign up with the keyboard.
    _tab_to(ada, "#auth-switch")
    keys.press("Enter")
    _tab_to(ada, "#auth-username")
    keys.type(ada_name)
    keys.press("Tab")
    keys.type(f"{ada_name}@example.com")
    keys.press("Tab")
    keys.type("correct horse battery")
    keys.press("Enter")
    wait_online(ada)

    # Find bo, open the conversation, send with Enter.
    _tab_to(ada, "#people-search")
    keys.type(bo_name)
    keys.press("Enter")
    expect(ada.locator("#thread-name")).to_have_text(bo_name)
    assert ada.evaluate("document.activeElement.id") == "composer-input"
    keys.type("Sent without touching the mouse")
    keys.press("Enter")
    open_conversation(bo, ada_name)
    expect(bubble(bo, "without touching the mouse")).to_be_visible()

    # ArrowUp in the empty box edits the last message; Escape cancels.
    keys.press("ArrowUp")
    expect(ada.locator("#composer-bar-label")).to_have_text("Editing message")
    keys.press("Escape")
    expect(ada.locator("#composer-bar")).to_be_hidden()
    expect(ada.get_by_label("Message", exact=True)).to_have_value("")

    # Shift+Tab reaches the message list; the focus is visible; r replies.
    _tab_to(ada, "#messages li.message")
    # The focus ring (the accent colour at 45%) is on the focused message's bubble.
    ring = "rgba(79, 107, 237, 0.45)"
    shadow = "getComputedStyle(document.activeElement.querySelector('.bubble')).boxShadow"
    assert ring in ada.evaluate(shadow)
    keys.press("r")
    expect(ada.locator("#composer-bar-label")).to_have_text("Replying to " + ada_name)
    keys.press("Escape")
    expect(ada.locator("#composer-bar")).to_be_hidden()
    ada.screenshot(path=str(shots / "keyboard.png"))
    _no_page_errors(ada, bo)
    ada_ctx.close()
    bo_ctx.close()


def test_groups_create_add_and_talk(browser: Browser, node_url: str, shots: Path) -> None:
    names = [unique("ada"), unique("bo"), unique("cy")]
    sessions = [open_chat(browser, node_url) for _ in names]
    for (_, page), name in zip(sessions, names, strict=True):
        sign_up(page, name)
    ada, bo, cy = (page for _, page in sessions)

    ada.get_by_role("button", name="New group").click()
    ada.get_by_label("Group name").fill("Lunch crew")
    ada.get_by_role("button", name="Create").click()
    for name in names[1:]:
        ada.get_by_label("Who should join?").fill(name)
        ada.get_by_role("button", name=f"Add {name}").click()
        expect(ada.locator("#member-note")).to_have_text(f"{name} was added.")
    ada.get_by_role("button", name="Done").click()
    expect(ada.locator("#thread-status")).to_have_text("3 members")

    send(ada, "Welcome to the crew!")
    for page in (bo, cy):
        row = page.locator("#conversation-list .conversation", has_text="Lunch crew")
        expect(row.locator(".badge")).to_have_text("1")
        open_conversation(page, "Lunch crew")
        expect(bubble(page, "Welcome to the crew!").locator(".author")).to_have_text(names[0])
    expect(bubble(ada, "Welcome to the crew!").locator(".ticks")).to_have_attribute(
        "aria-label", "Read"
    )
    send(cy, "Glad to be here")
    expect(bubble(bo, "Glad to be here")).to_be_visible()
    ada.screenshot(path=str(shots / "group.png"))
    for context, page in sessions:
        _no_page_errors(page)
        context.close()


def test_history_pages_back(browser: Browser, node_url: str) -> None:
    ada_name, bo_name = unique("ada"), unique("bo")
    ada_ctx, ada = open_chat(browser, node_url)
    bo_ctx, bo = open_chat(browser, node_url)
    sign_up(ada, ada_name)
    sign_up(bo, bo_name)
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
    assert message_texts(bo) == texts[5:]
    # Scrolling to the top loads the older page (a click on "Load older messages" would
    # too, but scrolling the button into view already starts the load).
    bo.locator("#scroller").evaluate("el => { el.scrollTop = 0; }")
    expect(bo.locator("#messages li.message")).to_have_count(45)
    assert message_texts(bo) == texts
    # What the reader was looking at stays put: the older messages went in above it.
    assert bo.locator("#scroller").evaluate("el => el.scrollTop") > 0
    top = bo.locator("#scroller").bounding_box()["y"]
    assert bubble(bo, "note 06").bounding_box()["y"] >= top
    expect(bo.get_by_role("button", name="Load older messages")).to_be_hidden()
    _no_page_errors(ada, bo)
    ada_ctx.close()
    bo_ctx.close()


def test_expiring_tokens_are_refreshed_without_a_gap(browser: Browser, tmp_path: Path) -> None:
    # Access tokens that live 4 s: the server closes each socket with 1008 when its token
    # expires; the page refreshes the token, reconnects with since=, and loses nothing.
    with node_subprocess(tmp_path, access_token_ttl="4") as url:
        ada_name, bo_name = unique("ada"), unique("bo")
        ada_ctx, ada = open_chat(browser, url)
        bo_ctx, bo = open_chat(browser, url)
        sign_up(ada, ada_name)
        sign_up(bo, bo_name)
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
        assert message_texts(bo) == ["first", "second", "still here"]
        expect(bo.locator("#auth")).to_be_hidden()
        _no_page_errors(ada, bo)
        ada_ctx.close()
        bo_ctx.close()


def test_a_busy_sidebar(browser: Browser, node_url: str, shots: Path) -> None:
    """Several conversations at once: ordered by activity, unread counts where they belong,
    typing shown in the list. (Its screenshot is the one in the README.)"""
    names = {key: unique(key) for key in ("maya", "leo", "sam")}
    sessions = {key: open_chat(browser, node_url) for key in names}
    pages = {key: page for key, (_, page) in sessions.items()}
    for key, page in pages.items():
        sign_up(page, names[key])
    maya, leo, sam = pages["maya"], pages["leo"], pages["sam"]

    maya.get_by_role("button", name="New group").click()
    maya.get_by_label("Group name").fill("Design team")
    maya.get_by_role("button", name="Create").click()
    for key in ("leo", "sam"):
        maya.get_by_label("Who should join?").fill(names[key])
        maya.get_by_role("button", name=f"Add {names[key]}").click()
        expect(maya.locator("#member-note")).to_have_text(f"{names[key]} was added.")
    maya.get_by_role("button", name="Done").click()
    send(maya, "New mockups are in the shared folder")
    open_conversation(sam, "Design team")
    send(sam, "Love the new colours!")

    start_direct(sam, names["maya"])
    send(sam, "Do you have a minute for my review later?")
    start_direct(leo, names["maya"])
    send(leo, "Morning! Coffee before standup?")
    open_conversation(maya, names["leo"])
    send(maya, "Yes please, the usual place")
    open_conversation(leo, names["maya"])
    bubble(leo, "Yes please").hover()
    bubble(leo, "Yes please").get_by_role("button", name="Reply").click()
    send(leo, "Perfect. I'll grab a table by the window")
    # A caption typed first goes with the image, in one message.
    maya.get_by_label("Message", exact=True).fill("The view from the office this morning")
    maya.locator("#file-input").set_input_files(str(_png(shots / "view.png")))
    expect(maya.get_by_label("Message", exact=True)).to_have_value("")
    expect(bubble(leo, "The view from the office").locator("img.photo")).to_have_js_property(
        "complete", True
    )
    leo_view = bubble(leo, "The view from the office")
    leo_view.hover()
    leo_view.get_by_role("button", name="React").click()
    leo.get_by_role("button", name="React ❤️").click()
    expect(bubble(maya, "The view from the office").locator(".chip")).to_have_text("❤️1")
    expect(bubble(maya, "Perfect.").locator(".quote-text")).to_have_text(
        "Yes please, the usual place"
    )
    open_conversation(sam, "Design team")
    sam.get_by_label("Message", exact=True).press_sequentially("What about")

    rows = maya.locator("#conversation-list .conversation")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_contain_text(names["leo"])
    expect(rows.nth(1)).to_contain_text(names["sam"])
    expect(rows.nth(1).locator(".badge")).to_have_text("1")
    expect(rows.nth(2)).to_contain_text("Design team")
    expect(rows.nth(2).locator(".conversation-preview")).to_have_text(f"{names['sam']} is typing…")
    maya.mouse.move(900, 700)
    maya.locator("#composer-input").focus()
    maya.screenshot(path=str(shots / "desktop.png"))
    # A system set to dark gets the dark scheme.
    maya.emulate_media(color_scheme="dark")
    expect(maya.locator(".sidebar")).to_have_css("background-color", "rgb(26, 30, 41)")
    maya.screenshot(path=str(shots / "desktop-dark.png"))
    for context, page in sessions.values():
        _no_page_errors(page)
        context.close()


def test_tabs_share_one_login(browser: Browser, node_url: str) -> None:
    name = unique("ada")
    context, first = open_chat(browser, node_url)
    sign_up(first, name)
    second = context.new_page()
    second.goto("/")
    expect(second.locator("#me-name")).to_have_text(name)
    wait_online(second)
    # Logging out in one tab logs the other out too: neither goes on as someone else.
    second.get_by_role("button", name="Log out").click()
    expect(second.locator("#auth")).to_be_visible()
    expect(first.locator("#auth")).to_be_visible()
    expect(first.locator("#chat")).to_be_hidden()
    _no_page_errors(first)
    context.close()
