"""A node as a subprocess for the browser tests (sync: Playwright's sync API runs here)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers.nodes import LOG_TAIL_CHARS, READY_TIMEOUT, REPO_ROOT, node_environment


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


@contextlib.contextmanager
def node_subprocess(tmp_path: Path, **overrides: str) -> Iterator[str]:
    """A node subprocess on a free port with its own SQLite database; yields its base URL.
    ``overrides`` are HUBBUB_* settings by name (``access_token_ttl="4"``)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    log_path = tmp_path / "node.log"
    settings = {"direct_rate_limit": "200", "group_rate_limit": "200", **overrides}
    env = node_environment(data_dir, f"sqlite:///{data_dir / 'hubbub.db'}", port, **settings)
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
