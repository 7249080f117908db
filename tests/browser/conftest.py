"""Browser tests: the web chat at ``/`` driven by Debian's Chromium through Playwright.

A real node runs as a subprocess (``python -m hubbub serve``, SQLite) and Chromium is the
system's (``/usr/bin/chromium``): a downloaded browser cannot work on these machines.
Without Chromium or Playwright these tests skip, except under ``CI=true``, where they fail.
Screenshots go to the test's tmp dir (``shots``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.node import node_subprocess

CHROMIUM = Path(os.environ.get("HUBBUB_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu"]
#: Playwright's default wait for an expectation; generous for a shared 2-core machine.
EXPECT_TIMEOUT_MS = 10_000


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; CI=true, so this fails instead of skipping", pytrace=False)
    pytest.skip(reason)


# Module scope, not session: Playwright's driver and its asyncio loop are gone before the
# trio tests of other directories run.
@pytest.fixture(scope="module")
def playwright_api() -> Iterator[object]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[test]')")
    if not CHROMIUM.exists():
        _unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="module")
def browser(playwright_api):  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    browser = playwright_api.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def node_url(tmp_path: Path) -> Iterator[str]:
    """A node subprocess of the test's own (see ``node_subprocess``): its base URL."""
    with node_subprocess(tmp_path) as url:
        yield url


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where a test saves its screenshots."""
    path = tmp_path / "shots"
    path.mkdir()
    return path
