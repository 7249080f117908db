"""Direct-message load: P sender->receiver pairs, each sender keeping W messages unacked.

    .venv/bin/python -m bench.direct --url http://127.0.0.1:8100 --pairs 50 --window 20 \\
        --messages 400 --server-pid 1234 [--rate 1000] [--procs 2] [--json]

Latency is from a message's send (with ``--rate``: from when it was due, so a full
window counts) to its receipt by the recipient. Lost: acked, never received within
the drain timeout. Server CPU comes from ``/proc/<pid>/stat`` before and after, and
is reported per 1,000 delivered messages, beside the harness's own CPU: on two
shared cores, say who was saturated before quoting a throughput.

Users ``<prefix>_0 .. <prefix>_<2P-1>`` are reused across runs (created the first
time). With several ``--url``, connection k goes to URL k mod n: with two nodes,
every sender is on the first and its receiver on the second.
"""

from __future__ import annotations

import argparse
import array
import secrets
import sys

from bench.harness.pairs import PairPlan, PairResult, PairSpec, run_pair_worker
from bench.harness.procstat import Snapshot, Span, snapshot
from bench.harness.report import Value, cost_figures, emit, latency_ms, sum_counts
from bench.harness.users import SetupError, ensure_users
from bench.harness.wire import chat_url
from bench.harness.workers import Outcome, WorkerFailed, run_workers


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.direct", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--url",
        action="append",
        required=True,
        help="node base URL, e.g. http://127.0.0.1:8100 (repeatable or comma-separated)",
    )
    parser.add_argument("--pairs", type=int, default=50)
    parser.add_argument("--window", type=int, default=20, help="unacked messages per sender")
    parser.add_argument("--messages", type=int, default=400, help="messages per sender")
    parser.add_argument("--rate", type=float, help="total offered msg/s (default: closed loop)")
    parser.add_argument("--procs", type=int, default=1, help="load processes")
    parser.add_argument("--server-pid", type=int, action="append", default=[])
    parser.add_argument(
        "--db-pid",
        type=int,
        action="append",
        default=[],
        help="PostgreSQL postmaster pid: its CPU and its backends' is reported apart",
    )
    parser.add_argument("--user-prefix", default="bench")
    parser.add_argument("--connect-timeout", type=float, default=60.0)
    parser.add_argument("--run-timeout", type=float, default=300.0)
    parser.add_argument("--drain-timeout", type=float, default=5.0)
    parser.add_argument("--json", action="store_true", help="also print one JSON line")
    args = parser.parse_args(argv)
    args.url = [u.strip() for value in args.url for u in value.split(",") if u.strip()]
    if min(args.pairs, args.window, args.messages, args.procs) < 1:
        parser.error("--pairs, --window, --messages and --procs must be at least 1")
    if args.rate is not None and args.rate <= 0:
        parser.error("--rate must be positive")
    args.procs = min(args.procs, args.pairs)
    return args


def make_plans(args: argparse.Namespace, nonce: str) -> list[PairPlan]:
    """Users, then each process's pairs (round-robin) and share of the offered rate."""
    users = ensure_users(args.url[0], 2 * args.pairs, prefix=args.user_prefix)
    urls = args.url

    def url_of(k: int) -> str:
        return chat_url(urls[k % len(urls)], users[k].access_token)

    specs = [
        PairSpec(i, url_of(2 * i), url_of(2 * i + 1), users[2 * i + 1].id)
        for i in range(args.pairs)
    ]
    plans = []
    for proc in range(args.procs):
        share = tuple(specs[proc :: args.procs])
        plans.append(
            PairPlan(
                pairs=share,
                nonce=nonce,
                window=args.window,
                messages=args.messages,
                rate=args.rate * len(share) / args.pairs if args.rate else None,
                connect_timeout=args.connect_timeout,
                run_timeout=args.run_timeout,
                drain_timeout=args.drain_timeout,
            )
        )
    return plans


def summarise(args: argparse.Namespace, outcome: Outcome, span: Span) -> dict[str, Value]:
    """The figures of one run (``span``: from just before the common start to the last
    result), in print order."""
    infos: list[dict] = outcome.infos
    results: list[PairResult] = outcome.results
    start_at = outcome.start_at
    latencies = array.array("d")
    for result in results:
        latencies.frombytes(result.latencies)
    delivered = sum(r.delivered for r in results)
    last = max((r.last_receive for r in results), default=start_at)
    elapsed = max(last - start_at, 1e-9)
    figures: dict[str, Value] = {
        "nodes": len(args.url),
        "pairs ready": sum(i["pairs"] for i in infos),
        "window": args.window,
        "messages per sender": args.messages,
        "offered rate (msg/s)": args.rate if args.rate else "closed loop",
        "load processes": len(results),
        "setup failures": sum_counts([i["failures"] for i in infos]),
        "sent": sum(r.sent for r in results),
        "acked": sum(r.acked for r in results),
        "acked as delivered": sum(r.acked_delivered for r in results),
        "delivered": delivered,
        "lost": sum(r.lost for r in results),
        "duplicates": sum(r.duplicates for r in results),
        "stale frames": sum(r.stale for r in results)
        + sum(i["early"].get("message", 0) for i in infos),
        "sends held by a full window": sum(r.late_sends for r in results),
        "errors": sum_counts([r.errors for r in results]),
        "connections closed": sum_counts([r.closed for r in results]),
        "timed out": any(r.unfinished for r in results),
        "elapsed to last delivery (s)": round(elapsed, 3),
        "delivered msg/s": round(delivered / elapsed, 1),
        "latency ms": latency_ms(latencies),
    }
    harness_cpu = [r.cpu_seconds for r in results]
    figures.update(cost_figures(args, span, harness_cpu, delivered, "delivered"))
    return figures


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    nonce = secrets.token_hex(4)
    try:
        snapshot(args.server_pid, args.db_pid)  # fail now on a wrong pid, not after setup
        plans = make_plans(args, nonce)
    except (SetupError, ValueError, ProcessLookupError) as error:
        print(f"setup failed: {error}", file=sys.stderr)
        return 1
    snapshots: list[Snapshot] = []

    try:
        outcome = run_workers(
            run_pair_worker,
            plans,
            ready_timeout=args.connect_timeout + 30,
            run_timeout=args.run_timeout + args.drain_timeout + 30,
            before_go=lambda: snapshots.append(snapshot(args.server_pid, args.db_pid)),
            after_done=lambda: snapshots.append(snapshot(args.server_pid, args.db_pid)),
        )
    except (WorkerFailed, ProcessLookupError) as error:
        print(f"load failed: {error}", file=sys.stderr)
        return 1
    figures = summarise(args, outcome, Span(*snapshots))
    emit("direct messages", figures, as_json=args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
