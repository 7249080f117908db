"""Browser tests: the web chat at ``/`` driven by Debian's Chromium through Playwright.

A real node runs as a subprocess (``python -m hubbub serve``, SQLite) and Chromium is the
system's (``/usr/bin/chromium``): a downloaded browser cannot work on these machines.
Without Chromium or Playwright these tests skip, except under ``CI=true``, where they fail.
Screenshots go to the test's tmp dir (``shots``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers.nodes import LOG_TAIL_CHARS, READY_TIMEOUT, REPO_ROOT, node_environment

CHROMIUM = Path(os.environ.get("HUBBUB_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu"]
#: Playwright's default wait for an expectation; generous for a shared 2-core machine.
EXPECT_TIMEOUT_MS = 10_000


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; CI=true, so this fails instead of skipping", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def playwright_api() -> Iterator[object]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[test]')")
    if not CHROMIUM.exists():
        _unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="session")
def browser(playwright_api):  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    browser = playwright_api.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield browser
    browser.close()


def _wait_ready(process: subprocess.Popen, url: str, log_path: Path) -> None:
    """Poll ``/health/ready`` until 200; fail with the log's tail if the node exits or is
    not ready within READY_TIMEOUT."""
    deadline = time.monotonic() + READY_TIMEOUT
    with httpx.Client(base_url=url, timeout=2.0) as http:
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if http.get("/health/ready").status_code == 200:
                    return
            except httpx.TransportError:
                pass  # Not listening yet.
            time.sleep(0.05)  # Polling a process we get no event from; the deadline bounds it.
    tail = log_path.read_text(errors="replace")[-LOG_TAIL_CHARS:]
    pytest.fail(f"the node did not start; its log ends:\n{tail}")


@pytest.fixture
def node_url(tmp_path: Path) -> Iterator[str]:
    """A node subprocess on a free port with its own SQLite database: its base URL."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    log_path = tmp_path / "node.log"
    env = node_environment(
        data_dir,
        f"sqlite:///{data_dir / 'hubbub.db'}",
        port,
        direct_rate_limit="200",
        group_rate_limit="200",
    )
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "hubbub", "serve"],
            env=env,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(process, url, log_path)
        yield url
    finally:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where a test saves its screenshots."""
    path = tmp_path / "shots"
    path.mkdir()
    return path
