"""The web chat on a phone, with the keyboard alone, and in two tabs of one browser.

Each expectation waits (Playwright's ``expect``, bounded by EXPECT_TIMEOUT_MS) for what
a person would see; nothing sleeps and hopes.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

try:
    from playwright.sync_api import Browser, expect
except ImportError:  # pragma: no cover - depends on the environment
    if os.environ.get("CI", "").lower() == "true":
        raise
    pytest.skip("playwright is not installed (pip install -e '.[test]')", allow_module_level=True)

from tests.browser.chat_page import (
    PHONE,
    bubble,
    no_page_errors,
    open_chat,
    open_conversation,
    send,
    sign_up,
    start_direct,
    tab_to,
    unique,
    wait_online,
)


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
    no_page_errors(ada, phone)
    ada_ctx.close()
    phone_ctx.close()


def test_keyboard_alone(browser: Browser, node_url: str, shots: Path) -> None:
    ada_name, bo_name = unique("ada"), unique("bo")
    bo_ctx, bo = open_chat(browser, node_url)
    sign_up(bo, bo_name)
    ada_ctx, ada = open_chat(browser, node_url)
    keys = ada.keyboard

    # Sign up with the keyboard.
    tab_to(ada, "#auth-switch")
    keys.press("Enter")
    tab_to(ada, "#auth-username")
    keys.type(ada_name)
    keys.press("Tab")
    keys.type(f"{ada_name}@example.com")
    keys.press("Tab")
    keys.type("correct horse battery")
    keys.press("Enter")
    wait_online(ada)

    # Find bo, open the conversation, send with Enter.
    tab_to(ada, "#people-search")
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
    tab_to(ada, "#messages li.message")
    # The focus ring (the accent colour at 45%) is on the focused message's bubble.
    ring = "rgba(79, 107, 237, 0.45)"
    shadow = "getComputedStyle(document.activeElement.querySelector('.bubble')).boxShadow"
    assert ring in ada.evaluate(shadow)
    keys.press("r")
    expect(ada.locator("#composer-bar-label")).to_have_text("Replying to " + ada_name)
    keys.press("Escape")
    expect(ada.locator("#composer-bar")).to_be_hidden()
    ada.screenshot(path=str(shots / "keyboard.png"))
    no_page_errors(ada, bo)
    ada_ctx.close()
    bo_ctx.close()


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
    no_page_errors(first)
    context.close()
