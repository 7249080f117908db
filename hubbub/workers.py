"""``hubbub serve --workers N``: a parent process that starts N node processes on one port,
restarts one that dies, and stops them all on SIGTERM or SIGINT.

Each worker is ``python -m hubbub serve`` with the parent's own flags and environment,
told by ``HUBBUB_WORKER_INDEX`` that it is a worker: it binds the port with
``SO_REUSEPORT`` (hubbub/listeners.py) and is a node like any other, with its own node id,
sharing PostgreSQL and Redis with the others exactly as separate machines would. The
parent does no chat I/O at all: it migrates the database once (so a bad database URL is
one error, not N), then only starts, watches and signals processes.

A worker that exits while the pool is not stopping is started again at once, unless that
would be more than ``MAX_RESTARTS`` restarts within ``RESTART_PERIOD`` seconds (the restart
intensity of an OTP supervisor): then the parent stops the others and exits 1, saying why.
A worker whose parent is gone (even SIGKILLed) drains and stops: it holds the read end of
a pipe only the parent writes to, and end-of-file on it means the parent died.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import AsyncIterator, Sequence

import attrs
import trio

from hubbub.config import Settings
from hubbub.listeners import reserve_port

log = logging.getLogger("hubbub.workers")

#: Set by the parent in each worker's environment: its index, 0 .. N-1.
WORKER_INDEX_ENV = "HUBBUB_WORKER_INDEX"
#: The worker's end of the parent's lifeline pipe (a file descriptor number).
LIFELINE_ENV = "HUBBUB_WORKER_LIFELINE"
MAX_RESTARTS = 5
RESTART_PERIOD = 60.0
#: How long the parent waits past the workers' own drain bound before it SIGKILLs them:
#: a drain takes ``drain_timeout``, then up to 2 s of closing handshakes, then shutdown.
STOP_MARGIN = 10.0
#: Exit statuses of a worker that stopped as it was told to (a SIGTERM before its own
#: signal handling was installed ends it by the default action).
CLEAN_EXITS = (0, -signal.SIGTERM, -signal.SIGINT)


@attrs.define
class RestartIntensity:
    """At most ``max_restarts`` restarts within any ``period`` seconds."""

    max_restarts: int = MAX_RESTARTS
    period: float = RESTART_PERIOD
    _times: deque[float] = attrs.field(factory=deque, init=False)

    def allow(self, now: float) -> bool:
        """Count a restart at ``now`` and say whether it is within the intensity; a
        refused one is not counted."""
        while self._times and now - self._times[0] >= self.period:
            self._times.popleft()
        if len(self._times) >= self.max_restarts:
            return False
        self._times.append(now)
        return True


def worker_index() -> int | None:
    """This process's worker index if the parent of ``--workers`` started it, else None."""
    value = os.environ.get(WORKER_INDEX_ENV)
    return int(value) if value is not None else None


def follow_parent() -> None:
    """In a worker: SIGTERM this process (so it drains) once the parent has died. A
    daemon thread blocks reading the lifeline pipe, which reaches end-of-file only when
    the parent's write end is closed, by its exit or its death."""
    value = os.environ.get(LIFELINE_ENV)
    if value is None:
        return
    lifeline = int(value)

    def wait_for_parent() -> None:
        with contextlib.suppress(OSError):
            while os.read(lifeline, 1):
                pass
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=wait_for_parent, name="lifeline", daemon=True).start()


@attrs.define
class WorkerPool:
    """``count`` workers running ``command``; ``run`` supervises them to the end."""

    command: list[str]
    count: int
    stop_timeout: float
    intensity: RestartIntensity = attrs.Factory(RestartIntensity)
    #: The live process of each index.
    processes: dict[int, trio.Process] = attrs.Factory(dict)
    #: The last exit status of each index's process.
    statuses: dict[int, int] = attrs.Factory(dict)
    #: Why the pool gave up, if it did.
    failure: str | None = None
    _stopping: trio.Event = attrs.Factory(trio.Event)
    _lifeline: tuple[int, int] = attrs.Factory(os.pipe)

    async def run(self) -> int:
        """Start the workers and keep them up until SIGTERM or SIGINT (forwarded to every
        worker, which drains) or the restart intensity is exceeded; return once every
        worker has exited, with the exit status: 0 if all stopped cleanly on a signal,
        else 1."""
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._stop_on_signal, signals)
                # Each keeper returns only once its last process has exited.
                async with trio.open_nursery() as keepers:
                    for index in range(self.count):
                        await keepers.start(self._keep_running, index)
                    log.info(
                        "workers started",
                        extra={"fields": {"pids": [p.pid for p in self.processes.values()]}},
                    )
                nursery.cancel_scope.cancel()
        for fd in self._lifeline:
            os.close(fd)
        clean = all(status in CLEAN_EXITS for status in self.statuses.values())
        statuses = dict(sorted(self.statuses.items()))  # by worker, whichever stopped first
        log.info("workers stopped", extra={"fields": {"exit_statuses": statuses}})
        return 0 if self.failure is None and clean else 1

    async def _stop_on_signal(self, signals: AsyncIterator[int]) -> None:
        async for signum in signals:
            log.info("stopping workers", extra={"fields": {"signal": signal.Signals(signum).name}})
            self._stopping.set()
            return

    async def _start(self, index: int) -> trio.Process:
        read_end = self._lifeline[0]
        environ = {**os.environ, WORKER_INDEX_ENV: str(index), LIFELINE_ENV: str(read_end)}
        process = await trio.lowlevel.open_process(
            self.command, env=environ, stdin=subprocess.DEVNULL, pass_fds=(read_end,)
        )
        self.processes[index] = process
        log.info("worker started", extra={"fields": {"worker": index, "pid": process.pid}})
        return process

    async def _keep_running(self, index: int, *, task_status: trio.TaskStatus[None]) -> None:
        """Run worker ``index``, restarting it within the intensity, until the pool stops
        and it has exited; its last exit status goes into ``statuses``."""
        process = await self._start(index)
        task_status.started()
        while True:
            async with trio.open_nursery() as watch:
                watch.start_soon(self._stop_when_told, index, process)
                status = await process.wait()
                watch.cancel_scope.cancel()
            self.statuses[index] = status
            if self._stopping.is_set():
                return
            log.warning(
                "worker exited",
                extra={"fields": {"worker": index, "pid": process.pid, "status": status}},
            )
            if not self.intensity.allow(trio.current_time()):
                self.failure = (
                    f"more than {self.intensity.max_restarts} worker restarts within "
                    f"{self.intensity.period:g} s (the last: worker {index}, exit status "
                    f"{status}): stopping all"
                )
                log.error("giving up", extra={"fields": {"reason": self.failure}})
                self._stopping.set()
                return
            process = await self._start(index)

    async def _stop_when_told(self, index: int, process: trio.Process) -> None:
        """Once the pool stops: SIGTERM ``process`` (it drains), SIGKILL it past
        ``stop_timeout``."""
        await self._stopping.wait()
        process.send_signal(signal.SIGTERM)
        await trio.sleep(self.stop_timeout)
        log.error(
            "worker did not stop in time, killing it",
            extra={"fields": {"worker": index, "pid": process.pid}},
        )
        process.kill()


def worker_command(serve_args: Sequence[str], port: int | None) -> list[str]:
    """The command of a worker: this ``hubbub serve`` again, with ``--port`` pinned if the
    parent chose it (a later flag wins in argparse)."""
    command = [sys.executable, "-m", "hubbub", "serve", *serve_args]
    return command if port is None else [*command, "--port", str(port)]


def supervise(settings: Settings, serve_args: Sequence[str]) -> int:
    """Run ``settings.workers`` workers on ``settings.host``:``settings.port`` until
    stopped; return the exit status. With port 0 the parent reserves a free port for
    them all (a bound socket that never listens) and keeps it while they run."""
    reserved = reserve_port(settings.host) if settings.port == 0 else None
    try:
        port = reserved.getsockname()[1] if reserved is not None else None
        log.info(
            "starting workers",
            extra={"fields": {"workers": settings.workers, "port": port or settings.port}},
        )
        pool = WorkerPool(
            worker_command(serve_args, port),
            settings.workers,
            stop_timeout=settings.drain_timeout + STOP_MARGIN,
        )
        return trio.run(pool.run)
    finally:
        if reserved is not None:
            reserved.close()
