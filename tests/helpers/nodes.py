"""Running a node for a test: in this process (``running_node``), or as a real
``python -m hubbub serve`` subprocess (``node_process``), for tests that crash it.

An in-process node cannot be SIGKILLed without killing the test; a subprocess can, which
is the only honest way to test what survives a crash. The process writes its output to a
file (a pipe nobody reads would fill and stall it) and is always killed and reaped on exit.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import IO, Any

import attrs
import httpx
import trio

from hubbub.config import load_settings
from hubbub.node import Node, open_node

REPO_ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 30.0
READY_POLL_INTERVAL = 0.05
REAP_TIMEOUT = 10.0
START_ATTEMPTS = 3
LOG_TAIL_CHARS = 3000


@asynccontextmanager
async def running_node(data_dir: Path, database_url: str, **overrides: str) -> AsyncIterator[Node]:
    """A node in this process on 127.0.0.1 and a free port; ``overrides`` are HUBBUB_*
    settings by name (``direct_rate_limit="3"``)."""
    environ = {
        "HUBBUB_DATA_DIR": str(data_dir),
        "HUBBUB_PORT": "0",
        "HUBBUB_DATABASE_URL": database_url,
        **{f"HUBBUB_{key.upper()}": value for key, value in overrides.items()},
    }
    async with open_node(load_settings(environ=environ)) as node:
        yield node


THREAD_START_TIMEOUT = 60.0


@contextmanager
def node_in_thread(
    data_dir: Path,
    database_url: str,
    on_start: Callable[[Node], Awaitable[None]] | None = None,
    **overrides: str,
) -> Iterator[str]:
    """``running_node`` in a thread of its own, running its own trio loop; yields its URL.

    For synchronous tests that drive the node with blocking clients (Hypothesis,
    schemathesis). ``on_start``, if given, runs in the node's loop before the URL is
    yielded (to reach its storage, say). The node stops, and the thread is joined, on
    exit; an error starting it is raised here."""
    started = threading.Event()
    state: dict[str, Any] = {}

    async def serve() -> None:
        async with running_node(data_dir, database_url, **overrides) as node:
            if on_start is not None:
                await on_start(node)
            state["url"], state["stop"] = node.url, trio.Event()
            state["token"] = trio.lowlevel.current_trio_token()
            started.set()
            await state["stop"].wait()

    def run() -> None:
        try:
            trio.run(serve)
        except BaseException as error:  # reported in the test's thread
            state["error"] = error
        finally:
            started.set()

    thread = threading.Thread(target=run, name="node-in-thread")
    thread.start()
    try:
        assert started.wait(THREAD_START_TIMEOUT), "the node did not start"
        if "error" in state:
            raise state["error"]
        yield state["url"]
    finally:
        if "stop" in state:
            trio.from_thread.run_sync(state["stop"].set, trio_token=state["token"])
        thread.join(THREAD_START_TIMEOUT)


class NodeDidNotStart(Exception):
    """The subprocess exited, or never became ready, within the timeout."""


@attrs.frozen
class NodeProcess:
    """A running node subprocess listening at ``url``; its output goes to ``log_path``."""

    process: trio.Process
    url: str
    log_path: Path

    def kill(self) -> None:
        """SIGKILL the node: no shutdown code runs, as in a power cut or an OOM kill."""
        if self.process.returncode is None:
            self.process.kill()

    async def wait_dead(self, timeout: float = REAP_TIMEOUT) -> int:
        """Wait for the process to exit; return its exit status (negative: the signal)."""
        with trio.fail_after(timeout):
            return await self.process.wait()


async def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (``node_process`` retries if it
    was taken in between)."""
    with trio.socket.socket() as sock:
        await sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def node_environment(data_dir: Path, database_url: str, port: int, **overrides: str) -> dict:
    """The subprocess's environment: the test's, minus any HUBBUB_* it happens to carry,
    plus these settings (``overrides`` are HUBBUB_* settings by name, as in
    ``running_node``)."""
    environ = {key: value for key, value in os.environ.items() if not key.startswith("HUBBUB_")}
    environ.update(
        {
            "HUBBUB_DATA_DIR": str(data_dir),
            "HUBBUB_HOST": "127.0.0.1",
            "HUBBUB_PORT": str(port),
            "HUBBUB_DATABASE_URL": database_url,
            "PYTHONUNBUFFERED": "1",
            **{f"HUBBUB_{key.upper()}": value for key, value in overrides.items()},
        }
    )
    return environ


async def log_tail(log_path: Path) -> str:
    """The end of a node's log, for failure messages."""
    try:
        text = await trio.Path(log_path).read_text(errors="replace")
    except OSError as error:
        return f"(no log: {error})"
    return text[-LOG_TAIL_CHARS:]


async def _wait_ready(process: trio.Process, url: str, timeout: float) -> bool:
    """Poll ``/health/ready`` until it answers 200 (True) or the process exits (False).
    Raises ``trio.TooSlowError`` after ``timeout``."""
    async with httpx.AsyncClient(base_url=url, timeout=2.0) as http:
        with trio.fail_after(timeout):
            while process.returncode is None:
                try:
                    if (await http.get("/health/ready")).status_code == 200:
                        return True
                except httpx.TransportError:
                    pass  # Not listening yet.
                # Polling a process we cannot get an event from; the deadline bounds it.
                await trio.sleep(READY_POLL_INTERVAL)
    return False


async def _kill_and_reap(process: trio.Process) -> None:
    with trio.CancelScope(shield=True), trio.move_on_after(REAP_TIMEOUT):
        if process.returncode is None:
            process.kill()
        await process.wait()


@asynccontextmanager
async def node_process(
    data_dir: Path,
    database_url: str,
    log_path: Path,
    *,
    ready_timeout: float = READY_TIMEOUT,
    **overrides: str,
) -> AsyncIterator[NodeProcess]:
    """Start ``python -m hubbub serve`` on a free port and yield it once ``/health/ready``
    answers 200. Output (stdout and stderr) is appended to ``log_path``.

    Whatever happens (an error, a failed assertion, cancellation) the process is SIGKILLed
    and reaped on exit. Raises ``NodeDidNotStart``, with the log's tail, if the node exits
    early (after ``START_ATTEMPTS`` tries, in case the port was taken) or is not ready
    within ``ready_timeout``."""
    await trio.Path(data_dir).mkdir(parents=True, exist_ok=True)
    log_file: IO[bytes] = await trio.to_thread.run_sync(log_path.open, "ab")
    try:
        for _attempt in range(START_ATTEMPTS):
            port = await free_port()
            url = f"http://127.0.0.1:{port}"
            process = await trio.lowlevel.open_process(
                [sys.executable, "-m", "hubbub", "serve"],
                env=node_environment(data_dir, database_url, port, **overrides),
                cwd=REPO_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
            try:
                try:
                    ready = await _wait_ready(process, url, ready_timeout)
                except trio.TooSlowError:
                    raise NodeDidNotStart(
                        f"the node was not ready within {ready_timeout}s; its log "
                        f"({log_path}) ends:\n{await log_tail(log_path)}"
                    ) from None
                if ready:
                    yield NodeProcess(process, url, log_path)
                    return
            finally:
                await _kill_and_reap(process)
        raise NodeDidNotStart(
            f"the node exited before it was ready, {START_ATTEMPTS} times; its log "
            f"({log_path}) ends:\n{await log_tail(log_path)}"
        )
    finally:
        await trio.to_thread.run_sync(log_file.close)
