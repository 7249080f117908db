"""Page helpers for the browser tests: what a person does in the web chat, in steps."""

from __future__ import annotations

import itertools

from playwright.sync_api import Browser, BrowserContext, Page, expect

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


def message_texts(page: Page) -> list[str]:
    return page.locator("#messages li.message .text").all_inner_texts()
