"""Groups in the web chat, and a sidebar with several conversations.

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
    bubble,
    no_page_errors,
    open_chat,
    open_conversation,
    picture,
    send,
    sign_up,
    start_direct,
    unique,
)


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
        no_page_errors(page)
        context.close()


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
    maya.locator("#file-input").set_input_files(str(picture(shots / "view.png")))
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
        no_page_errors(page)
        context.close()
