"""Page helpers for the browser tests: what a person does in the web chat, in steps."""

from __future__ import annotations

import itertools
from pathlib import Path

from PIL import Image, ImageDraw
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect

PASSWORD = "correct horse battery"
_numbers = itertools.count(1)

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def unique(prefix: str) -> str:
    return f"{prefix}{next(_numbers)}"


def open_chat(browser: Browser, url: str, viewport: dict = DESKTOP) -> tuple[BrowserContext, Page]:
    """A fresh browser profile (its own localStorage) at the chat; console errors fail."""
    context = browser.new_context(viewport=viewport, base_url=url)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.errors = errors  # type: ignore[attr-defined]
    page.goto("/")
    return context, page


def sign_up(page: Page, username: str) -> None:
    """Create an account through the form; returns once the chat is shown and live."""
    page.get_by_role("button", name="Create an account").click()
    page.get_by_label("Username").fill(username)
    page.get_by_label("Email").fill(f"{username}@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    expect(page.locator("#me-name")).to_have_text(username)
    wait_online(page)


def two_people(
    browser: Browser, url: str
) -> tuple[tuple[BrowserContext, Page, str], tuple[BrowserContext, Page, str]]:
    """ada and bo, each signed up in a browser profile of their own: for each, its
    context, its page and the username."""
    people = []
    for prefix in ("ada", "bo"):
        name = unique(prefix)
        context, page = open_chat(browser, url)
        sign_up(page, name)
        people.append((context, page, name))
    return people[0], people[1]


def wait_online(page: Page) -> None:
    expect(page.locator("#connection")).to_have_text("Online")


def start_direct(page: Page, username: str) -> None:
    """Find ``username`` in the people search and open the conversation with them."""
    page.get_by_label("Find people").fill(username)
    page.get_by_role("button", name=f"Message {username}").click()
    expect(page.locator("#thread-name")).to_have_text(username)


def open_conversation(page: Page, name: str) -> None:
    page.locator("#conversation-list .conversation", has_text=name).click()
    expect(page.locator("#thread-name")).to_have_text(name)


def send(page: Page, text: str) -> None:
    box = page.get_by_label("Message", exact=True)
    box.fill(text)
    box.press("Enter")


def bubble(page: Page, text: str):  # type: ignore[no-untyped-def]
    """The message list item showing ``text``."""
    return page.locator("#messages li.message", has=page.locator(".text", has_text=text))


def message_text(page: Page) -> Locator:
    """The texts of the open conversation, in order: ``expect(...).to_have_text([...])``
    waits for the list to settle (a reload redraws it) and fails on a duplicate."""
    return page.locator("#messages li.message .text")


def picture(path: Path) -> Path:
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


def no_page_errors(*pages: Page) -> None:
    for page in pages:
        assert page.errors == [], page.errors  # type: ignore[attr-defined]


def tab_to(page: Page, selector: str, limit: int = 25) -> None:
    """Press Tab until the element matching ``selector`` has the focus."""
    for _ in range(limit):
        if page.evaluate("s => document.activeElement?.matches(s)", selector):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {selector}")
