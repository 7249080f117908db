"""Split a load over processes that prepare apart and start together.

Each worker process runs ``entry(plan, start)``: it prepares (opens its connections),
then calls ``start.ready(info)``, which returns once every worker is ready and the
parent says go, with the agreed start time (``time.monotonic()``, comparable across
processes on Linux). Its result goes back to the parent either by ``start.finish``
(then the worker may clean up, e.g. close connections, outside the measured span) or
by returning it.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from multiprocessing import get_context
from multiprocessing.connection import Connection
from typing import Any

import attrs

#: Time between the parent's go and the common start, so every worker wakes in time.
START_MARGIN = 0.05


class WorkerFailed(Exception):
    """A worker process crashed, timed out or died; the message says which and why."""


class StartSignal:
    """A worker's side of the start barrier."""

    def __init__(self, pipe: Connection, timeout: float) -> None:
        self._pipe = pipe
        self._timeout = timeout
        self.finished = False

    def ready(self, info: Any) -> float:
        """Report ready with ``info``; block until go (at most the ready timeout).

        Returns the start time. Raises WorkerFailed if the parent never says go."""
        self._pipe.send(("ready", info))
        if not self._pipe.poll(self._timeout):
            raise WorkerFailed("no go from the parent in time")
        _, start_at = self._pipe.recv()
        return start_at

    def finish(self, result: Any) -> None:
        """Hand the result to the parent now (once)."""
        self.finished = True
        self._pipe.send(("done", result))


def _worker(entry: Callable[[Any, StartSignal], Any], plan: Any, pipe: Connection, timeout: float):
    start = StartSignal(pipe, timeout)
    try:
        result = entry(plan, start)
    except BaseException:
        if not start.finished:
            pipe.send(("failed", traceback.format_exc()))
    else:
        if not start.finished:
            pipe.send(("done", result))


@attrs.frozen
class Outcome:
    infos: list[Any]
    results: list[Any]
    start_at: float
    #: When the last result arrived (``time.monotonic()``).
    done_at: float


def _receive(pipe: Connection, expected: str, index: int, timeout: float) -> Any:
    if not pipe.poll(timeout):
        raise WorkerFailed(f"worker {index} sent no {expected!r} within {timeout:.0f} s")
    try:
        kind, payload = pipe.recv()
    except EOFError:
        raise WorkerFailed(f"worker {index} died before {expected!r}") from None
    if kind == "failed":
        raise WorkerFailed(f"worker {index} crashed:\n{payload}")
    return payload


def run_workers(
    entry: Callable[[Any, StartSignal], Any],
    plans: list[Any],
    *,
    ready_timeout: float,
    run_timeout: float,
    before_go: Callable[[], None] = lambda: None,
    after_done: Callable[[], None] = lambda: None,
) -> Outcome:
    """Run ``entry(plan, start)`` in one fresh process per plan, start them together.

    ``before_go`` runs once all are ready, just before the start, and ``after_done`` as
    soon as every result is in (to sample the server over exactly the measured span).
    Raises WorkerFailed if a worker crashes or exceeds its timeout; the workers are
    always reaped (terminated if need be) before this returns or raises."""
    context = get_context("spawn")
    pipes, processes = [], []
    try:
        for plan in plans:
            parent_end, child_end = context.Pipe()
            process = context.Process(
                target=_worker, args=(entry, plan, child_end, ready_timeout), daemon=True
            )
            process.start()
            child_end.close()
            pipes.append(parent_end)
            processes.append(process)
        infos = [_receive(pipe, "ready", i, ready_timeout) for i, pipe in enumerate(pipes)]
        before_go()
        start_at = time.monotonic() + START_MARGIN
        for pipe in pipes:
            pipe.send(("go", start_at))
        deadline = start_at + run_timeout
        results = [
            _receive(pipe, "done", i, max(0.0, deadline - time.monotonic()))
            for i, pipe in enumerate(pipes)
        ]
        done_at = time.monotonic()
        after_done()
        return Outcome(infos, results, start_at, done_at)
    finally:
        for process in processes:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()
                process.join(timeout=5)
