"""What the load scripts' command lines share: the options, running the load processes
between two samples of the server, and the figures every run reports."""

from __future__ import annotations

import argparse
import array
import secrets
import sys
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from bench.harness.load_loop import LoadResult
from bench.harness.procstat import Snapshot, Span, child_pids, snapshot
from bench.harness.report import Value, cost_figures, latency_ms, sum_counts
from bench.harness.users import SetupError
from bench.harness.workers import Outcome, StartSignal, WorkerFailed, run_workers


def new_parser(prog: str, doc: str, example_url: str) -> argparse.ArgumentParser:
    """A parser described by the first line of ``doc``, with ``--url``."""
    parser = argparse.ArgumentParser(prog=prog, description=doc.splitlines()[0])
    parser.add_argument(
        "--url",
        action="append",
        required=True,
        help=f"node base URL, e.g. {example_url} (repeatable or comma-separated)",
    )
    return parser


def add_load_options(parser: argparse.ArgumentParser, *, connect_timeout: float) -> None:
    """The options of a load run (``bench.direct``, ``bench.group``)."""
    parser.add_argument("--rate", type=float, help="total offered msg/s (default: closed loop)")
    parser.add_argument("--procs", type=int, default=1, help="load processes")
    parser.add_argument("--server-pid", type=int, action="append", default=[])
    parser.add_argument(
        "--server-parent",
        type=int,
        action="append",
        default=[],
        help="pid of `hubbub serve --workers N`: it and its workers count as server pids",
    )
    parser.add_argument(
        "--db-pid",
        type=int,
        action="append",
        default=[],
        help="PostgreSQL postmaster pid: its CPU and its backends' is reported apart",
    )
    parser.add_argument("--user-prefix", default="bench")
    parser.add_argument("--connect-timeout", type=float, default=connect_timeout)
    parser.add_argument("--run-timeout", type=float, default=300.0)
    parser.add_argument("--drain-timeout", type=float, default=5.0)
    parser.add_argument("--json", action="store_true", help="also print one JSON line")
    parser.add_argument(
        "--plots",
        default="bench/results",
        help="folder for the run's PNG chart: throughput over time, latency distribution "
        "(default: bench/results; '' for none)",
    )


def parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse, split comma-separated ``--url`` values, and check ``--rate`` if there is one."""
    args = parser.parse_args(argv)
    args.url = [u.strip() for value in args.url for u in value.split(",") if u.strip()]
    if getattr(args, "rate", None) is not None and args.rate <= 0:
        parser.error("--rate must be positive")
    for parent in getattr(args, "server_parent", ()):
        workers = child_pids(parent)
        if not workers:
            parser.error(f"--server-parent {parent}: no such process, or it has no workers")
        args.server_pid += [parent, *workers]
    return args


@attrs.frozen
class Run:
    #: What ``setup`` returned beside the plans.
    prepared: Any
    outcome: Outcome
    #: From just before the common start to the last result.
    span: Span


def run_load(
    args: argparse.Namespace,
    worker: Callable[[Any, StartSignal], None],
    setup: Callable[[str], tuple[Any, list[Any]]],
    *,
    ready_timeout: float,
) -> Run | None:
    """Set up (``setup(nonce)`` returns what it prepared and one plan per process), run a
    ``worker`` process per plan, and sample the server just before the common start
    and after the last result. Says why on stderr and returns None if a step fails."""
    nonce = secrets.token_hex(4)
    try:
        snapshot(args.server_pid, args.db_pid)  # fail now on a wrong pid, not after setup
        prepared, plans = setup(nonce)
    except (SetupError, ValueError, ProcessLookupError) as error:
        print(f"setup failed: {error}", file=sys.stderr)
        return None
    snapshots: list[Snapshot] = []
    try:
        outcome = run_workers(
            worker,
            plans,
            ready_timeout=ready_timeout,
            run_timeout=args.run_timeout + args.drain_timeout + 30,
            before_go=lambda: snapshots.append(snapshot(args.server_pid, args.db_pid)),
            after_done=lambda: snapshots.append(snapshot(args.server_pid, args.db_pid)),
        )
    except (WorkerFailed, ProcessLookupError) as error:
        print(f"load failed: {error}", file=sys.stderr)
        return None
    return Run(prepared, outcome, Span(*snapshots))


def figures(
    args: argparse.Namespace,
    run: Run,
    *,
    ready: dict[str, Value],
    counted: dict[str, Value],
    per_second: dict[str, int],
    cost_of: tuple[int, str],
) -> dict[str, Value]:
    """The figures of one run, in print order: the nodes, who was ``ready``, the plan,
    what was ``counted``, what went wrong, the elapsed time and the rates of
    ``per_second`` over it, latency, and what the server, database and harness spent
    per 1,000 of ``cost_of`` (a count and its unit: "delivered", "deliveries")."""
    infos: list[dict] = run.outcome.infos
    results: Sequence[LoadResult] = run.outcome.results
    latencies = array.array("d")
    for result in results:
        latencies.frombytes(result.latencies)
    last = max((r.last_receive for r in results), default=run.outcome.start_at)
    elapsed = max(last - run.outcome.start_at, 1e-9)
    shown: dict[str, Value] = {
        "nodes": len(args.url),
        **ready,
        "window": args.window,
        "messages per sender": args.messages,
        "offered rate (msg/s)": args.rate if args.rate else "closed loop",
        "load processes": len(results),
        "setup failures": sum_counts([i["failures"] for i in infos]),
        **counted,
        "sends held by a full window": sum(r.late_sends for r in results),
        "errors": sum_counts([r.errors for r in results]),
        "connections closed": sum_counts([r.closed for r in results]),
        "timed out": any(r.unfinished for r in results),
        "elapsed to last delivery (s)": round(elapsed, 3),
        **{name: round(count / elapsed, 1) for name, count in per_second.items()},
        "latency ms": latency_ms(latencies),
    }
    harness_cpu = [r.cpu_seconds for r in results]
    shown.update(cost_figures(args, run.span, harness_cpu, *cost_of))
    return shown
