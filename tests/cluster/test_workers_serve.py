"""``hubbub serve --workers 2`` as a real process tree on one port, on PostgreSQL and Redis:
both workers answer, a direct message crosses from one to the other, a SIGKILLed worker
is restarted while the port keeps answering, and SIGTERM to the parent drains them all.

Which worker a connection landed on is read from the node itself: ``/health/ready``
names the node, and ``/ops/state`` (the operator's view) counts its open WebSockets.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed

from bench.harness.procstat import child_pids
from hubbub.client import ChatClient, HubbubHTTP
from tests.helpers.chat import attached
from tests.helpers.nodes import REPO_ROOT, free_port, log_tail, node_environment
from tests.helpers.polling import poll_until
from tests.helpers.servers import RedisServer
from tests.helpers.users import register

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

WORKERS = 2
OPS_TOKEN = "ops-" + "t" * 32
#: Two interpreters start at once on a shared machine: imports alone take seconds.
START_TIMEOUT = 60.0
#: New connections until the kernel has handed one to each worker (it spreads them by a
#: hash of the client's port: two workers are both seen within a few tries).
SPREAD_TIMEOUT = 20.0
STOP_TIMEOUT = 30.0
#: Seven worker starts (each exits at once), two at a time, on a busy machine.
GIVE_UP_TIMEOUT = 120.0
#: A socket lands on either worker at even odds: 20 all on one is one in a million.
CONNECT_TRIES = 20


@attrs.define
class Pool:
    """The parent process of ``serve --workers`` and its port."""

    process: trio.Process
    url: str
    log_path: Path

    async def state(self) -> dict[str, Any]:
        """``/ops/state`` of whichever worker takes a fresh connection."""
        async with httpx.AsyncClient(base_url=self.url, timeout=5.0) as http:
            response = await http.get(
                "/ops/state", headers={"Authorization": f"Bearer {OPS_TOKEN}"}
            )
        response.raise_for_status()
        return response.json()

    async def ready_node(self) -> str | None:
        """The node id a fresh connection's ``/health/ready`` names, if it answers 200."""
        try:
            async with httpx.AsyncClient(base_url=self.url, timeout=5.0) as http:
                response = await http.get("/health/ready")
        except httpx.TransportError:
            return None
        return response.json()["node"] if response.status_code == 200 else None

    async def nodes(self, count: int, timeout: float) -> dict[str, dict[str, Any]]:
        """Each node's ``/ops/state``, by node id, once ``count`` nodes have answered on
        fresh connections."""
        seen: dict[str, dict[str, Any]] = {}

        async def all_seen() -> bool:
            state = await self.state()
            seen[state["node_id"]] = state
            return len(seen) >= count

        await poll_until(all_seen, what=f"{count} workers answering", timeout=timeout, interval=0)
        return seen

    async def connections(self) -> dict[str, int]:
        """Open WebSockets on each of the workers, by node id."""
        return {node: s["connections"] for node, s in (await self.nodes(WORKERS, 20)).items()}


@asynccontextmanager
async def serving_workers(
    tmp_path: Path, postgres_url: str, redis: RedisServer
) -> AsyncIterator[Pool]:
    """``python -m hubbub serve --workers 2`` on a free port, yielded once both workers
    are ready; on exit the parent and its workers are SIGKILLed and reaped."""
    port = await free_port()
    environ = node_environment(
        tmp_path / "data",
        postgres_url,
        port,
        redis_url=redis.url,
        jwt_secret=secrets.token_urlsafe(32),
        ops_token=OPS_TOKEN,
        direct_rate_limit="1000000",
    )
    log_path = tmp_path / "workers.log"
    with log_path.open("ab") as log_file:
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "hubbub", "serve", "--workers", str(WORKERS)],
            env=environ,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    pool = Pool(process, f"http://127.0.0.1:{port}", log_path)
    try:
        try:
            await poll_until(
                lambda: _both_ready(pool), what="both workers ready", timeout=START_TIMEOUT
            )
        except AssertionError:
            raise AssertionError(f"workers not ready; log:\n{await log_tail(log_path)}") from None
        yield pool
    finally:
        with trio.CancelScope(shield=True):
            workers = child_pids(process.pid)
            if process.returncode is None:
                process.kill()
            for pid in workers:
                _kill(pid)
            with trio.move_on_after(10):
                await process.wait()


async def _both_ready(pool: Pool) -> bool:
    assert pool.process.returncode is None, "the parent exited"
    nodes = {await pool.ready_node() for _ in range(2 * WORKERS)} - {None}
    return len(nodes) == WORKERS


def _kill(pid: int) -> None:
    with suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


async def test_two_workers_answer_on_one_port(
    tmp_path: Path, postgres_url: str, redis_server: RedisServer
) -> None:
    async with serving_workers(tmp_path, postgres_url, redis_server) as pool:
        nodes = await pool.nodes(WORKERS, SPREAD_TIMEOUT)
        assert len(nodes) == WORKERS
        assert len(child_pids(pool.process.pid)) == WORKERS
        for state in nodes.values():
            assert state["ready"] is True
            assert state["storage"]["backend"] == "postgres"
            assert state["redis"]["ok"] is True


async def test_a_direct_message_crosses_from_one_worker_to_the_other(
    tmp_path: Path, postgres_url: str, redis_server: RedisServer
) -> None:
    async with (
        serving_workers(tmp_path, postgres_url, redis_server) as pool,
        HubbubHTTP(pool.url) as http,
    ):
        alice, bob = await register(http, "alice"), await register(http, "bob")
        async with ChatClient.connect(pool.url, alice.access_token) as sender:
            await attached(sender)
            (alice_node,) = [n for n, count in (await pool.connections()).items() if count]
            # Bob connects until his socket is on the other worker: each try is a new
            # connection, which the kernel hands to a worker by a hash of its port.
            for _attempt in range(CONNECT_TRIES):
                async with ChatClient.connect(pool.url, bob.access_token) as receiver:
                    await attached(receiver)
                    if (await pool.connections())[alice_node] == 1:
                        ack = await sender.send_direct(bob.id, "across workers", "c1")
                        assert ack["type"] == "ack"
                        received = await receiver.receive_type("message", timeout=10)
                        break
                await poll_until(lambda: _total_is(pool, 1), what="bob's socket closed", timeout=10)
            else:
                raise AssertionError(f"{CONNECT_TRIES} sockets all went to alice's worker")
        assert received["message"] == "across workers"
        assert received["message_id"] == ack["message_id"]


async def _total_is(pool: Pool, count: int) -> bool:
    return sum((await pool.connections()).values()) == count


async def test_a_killed_worker_is_restarted_and_the_port_keeps_answering(
    tmp_path: Path, postgres_url: str, redis_server: RedisServer
) -> None:
    async with serving_workers(tmp_path, postgres_url, redis_server) as pool:
        first = set(await pool.nodes(WORKERS, SPREAD_TIMEOUT))
        victim, survivor = child_pids(pool.process.pid)
        os.kill(victim, signal.SIGKILL)
        # Dead (a zombie at most), its listening socket is closed and out of the port's
        # group: while it is down or starting again, the survivor takes every connection.
        await poll_until(lambda: not _alive(victim), what="the victim dead", timeout=10)
        answered = [await pool.ready_node() for _ in range(4)]
        assert None not in answered
        await poll_until(
            lambda: (
                victim not in child_pids(pool.process.pid)
                and len(child_pids(pool.process.pid)) == WORKERS
            ),
            what="the parent starting a new worker",
            timeout=10,
        )
        assert survivor in child_pids(pool.process.pid)
        # The new worker is a new node, and serves the same port.
        after = set(await pool.nodes(WORKERS, START_TIMEOUT))
        assert len(after - first) == 1
        assert pool.process.returncode is None
        assert "worker exited" in await log_tail(pool.log_path)


async def test_sigterm_to_the_parent_drains_every_worker_and_exits_0(
    tmp_path: Path, postgres_url: str, redis_server: RedisServer
) -> None:
    async with (
        serving_workers(tmp_path, postgres_url, redis_server) as pool,
        HubbubHTTP(pool.url) as http,
    ):
        workers = child_pids(pool.process.pid)
        account = await register(http, "carol")
        async with ChatClient.connect(pool.url, account.access_token) as chat:
            await attached(chat)
            pool.process.send_signal(signal.SIGTERM)
            with trio.fail_after(STOP_TIMEOUT):
                # The drain closes the session with 1012 (service restart).
                with pytest.raises(ConnectionClosed) as closed:
                    while True:
                        await chat.receive(timeout=STOP_TIMEOUT)
                status = await pool.process.wait()
        assert closed.value.reason.code == 1012
        assert status == 0
        assert not [pid for pid in workers if _alive(pid)]
        log = await log_tail(pool.log_path)
        assert log.count("drained, stopping") == WORKERS
        assert "exit_statuses={0: 0, 1: 0}" in log


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped by its new parent, does not)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rpartition(b")")[2].split()[0] != b"Z"
    except FileNotFoundError:
        return False


async def test_workers_stop_when_the_parent_is_sigkilled(
    tmp_path: Path, postgres_url: str, redis_server: RedisServer
) -> None:
    async with serving_workers(tmp_path, postgres_url, redis_server) as pool:
        workers = child_pids(pool.process.pid)
        pool.process.kill()
        assert await pool.process.wait() == -signal.SIGKILL
        # Orphans would keep serving the port with nobody to stop them: each worker sees
        # its lifeline pipe close and drains.
        await poll_until(
            lambda: not [pid for pid in workers if _alive(pid)],
            what="the orphaned workers exiting",
            timeout=STOP_TIMEOUT,
        )
        assert await pool.ready_node() is None


async def test_workers_dying_too_often_stop_the_parent_with_exit_1(
    tmp_path: Path, postgres_url: str
) -> None:
    # Nothing listens on this Redis port: every worker exits 1 at start, the parent
    # restarts them until the intensity (5 in 60 s) is spent, then gives up.
    environ = node_environment(
        tmp_path / "data",
        postgres_url,
        await free_port(),
        redis_url=f"redis://127.0.0.1:{await free_port()}/0",
        jwt_secret=secrets.token_urlsafe(32),
    )
    log_path = tmp_path / "workers.log"
    with log_path.open("ab") as log_file:
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "hubbub", "serve", "--workers", str(WORKERS)],
            env=environ,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        with trio.fail_after(GIVE_UP_TIMEOUT):
            status = await process.wait()
    finally:
        with trio.CancelScope(shield=True):
            for pid in child_pids(process.pid):
                _kill(pid)
            if process.returncode is None:
                process.kill()
                await process.wait()
    log = await trio.Path(log_path).read_text()
    assert status == 1, log[-3000:]
    assert "more than 5 worker restarts within 60 s" in log
    # Five restarts, then the sixth exit is one too many; the other worker is stopped.
    assert log.count("worker exited") == 6
    assert log.count("worker started") == WORKERS + 5
    assert not child_pids(process.pid)
