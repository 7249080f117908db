"""Group fan-out load: one group of K members all online, S of them sending.

    .venv/bin/python -m bench.group --url http://127.0.0.1:8120 --members 500 --senders 10 \\
        --messages 100 --window 5 --server-pid 1234 [--rate 200] [--procs 2] [--json]

Start the node with ``HUBBUB_GROUP_RATE_LIMIT=1000000000``: by default it refuses a
user's group messages past 30 a minute, and every refusal shows up here under
``errors`` as ``rate limit exceeded`` (with a warning saying so).

Users ``<prefix>_0 .. <prefix>_<K-1>`` and the group ``<prefix>-group-<K>`` (created
by user 0) are reused across runs; members missing from the group are added. Every
member holds one connection (with several ``--url``, member k goes to URL k mod n)
and counts as online once it has answered a ``ping``. Senders are members 0 .. S-1;
each keeps ``--window`` messages unacked, or all share a fixed total ``--rate``.

A delivery is one member's receipt of one message, the sender's own echo included, so
a message acked by the server is expected K times. Latency runs from the send (with
``--rate``: from when it was due) to the receipt. With ``--procs``, members are split
round-robin over load processes and a sender's message is timed by members in other
processes too: the send time travels in the message text, and ``time.monotonic()``
(CLOCK_MONOTONIC) is one system-wide clock on Linux, so the difference is valid
between processes of one machine. Server CPU comes from ``/proc/<pid>/stat`` before
and after, per 1,000 deliveries, beside the harness's own CPU and a verdict on who
saturated. Members' unread group messages from earlier runs are caught up on connect,
before the measured span (counted under ``frames before ready``), and the members'
presence frames are let pass (``--settle``) before the start. A load process stops once
its members have every message of the run, else after ``--drain-timeout`` without a
delivery (a refused message never comes): that idle tail then dilutes ``cores busy``.
"""

from __future__ import annotations

import argparse
import array
import secrets
import sys

from bench.harness.group_load import GroupPlan, GroupResult, MemberSpec, run_group_worker
from bench.harness.groups import ensure_group
from bench.harness.procstat import Snapshot, Span, snapshot
from bench.harness.report import Value, cost_figures, emit, latency_ms, sum_counts
from bench.harness.users import SetupError, ensure_users
from bench.harness.wire import chat_url
from bench.harness.workers import Outcome, WorkerFailed, run_workers

RATE_LIMITED = "rate limit exceeded"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.group", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--url",
        action="append",
        required=True,
        help="node base URL, e.g. http://127.0.0.1:8120 (repeatable or comma-separated)",
    )
    parser.add_argument("--members", type=int, default=500, help="K: members, all online")
    parser.add_argument("--senders", type=int, default=10, help="S: the first S members send")
    parser.add_argument("--messages", type=int, default=100, help="M: messages per sender")
    parser.add_argument("--window", type=int, default=5, help="W: unacked messages per sender")
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
    parser.add_argument("--group-name", help="default: <user prefix>-group-<members>")
    parser.add_argument("--connect-timeout", type=float, default=120.0)
    parser.add_argument(
        "--settle",
        type=float,
        default=1.0,
        help="once all are online, wait until no frame arrived for this long (s)",
    )
    parser.add_argument("--run-timeout", type=float, default=300.0)
    parser.add_argument("--drain-timeout", type=float, default=5.0)
    parser.add_argument("--json", action="store_true", help="also print one JSON line")
    args = parser.parse_args(argv)
    args.url = [u.strip() for value in args.url for u in value.split(",") if u.strip()]
    if min(args.members, args.senders, args.window, args.messages, args.procs) < 1:
        parser.error("--members, --senders, --window, --messages and --procs must be at least 1")
    if args.senders > args.members:
        parser.error("--senders cannot exceed --members: senders are members")
    if args.rate is not None and args.rate <= 0:
        parser.error("--rate must be positive")
    args.procs = min(args.procs, args.members)
    args.group_name = args.group_name or f"{args.user_prefix}-group-{args.members}"
    return args


def make_plans(args: argparse.Namespace, nonce: str) -> tuple[int, list[GroupPlan]]:
    """The group's id (users and group set up first), then each process's members
    (round-robin) and its share of the offered rate."""
    users = ensure_users(args.url[0], args.members, prefix=args.user_prefix)
    group_id = ensure_group(args.url[0], args.group_name, users[0], users)
    urls = args.url
    specs = [
        MemberSpec(k, chat_url(urls[k % len(urls)], user.access_token))
        for k, user in enumerate(users)
    ]
    plans = []
    for proc in range(args.procs):
        share = tuple(specs[proc :: args.procs])
        senders_here = sum(1 for spec in share if spec.index < args.senders)
        plans.append(
            GroupPlan(
                members=share,
                group_id=group_id,
                senders=args.senders,
                nonce=nonce,
                window=args.window,
                messages=args.messages,
                rate=args.rate * senders_here / args.senders
                if args.rate and senders_here
                else None,
                connect_timeout=args.connect_timeout,
                settle=args.settle,
                run_timeout=args.run_timeout,
                drain_timeout=args.drain_timeout,
            )
        )
    return group_id, plans


def _missing(results: list[GroupResult], members: int) -> int:
    """Receipts short of ``members`` for every message some process saw acked."""
    acked = bytearray(len(results[0].acked_map))
    receipts = array.array("I", bytes(4 * len(acked)))
    for result in results:
        for msg, flag in enumerate(result.acked_map):
            acked[msg] |= flag
        for msg, count in enumerate(array.array("I", result.receipts)):
            receipts[msg] += count
    return sum(max(0, members - got) for flag, got in zip(acked, receipts, strict=True) if flag)


def summarise(
    args: argparse.Namespace, group_id: int, outcome: Outcome, span: Span
) -> dict[str, Value]:
    """The figures of one run (``span``: from just before the common start to the last
    result), in print order."""
    infos: list[dict] = outcome.infos
    results: list[GroupResult] = outcome.results
    latencies = array.array("d")
    for result in results:
        latencies.frombytes(result.latencies)
    members = sum(i["members"] for i in infos)
    acked = sum(r.acked for r in results)
    deliveries = sum(r.deliveries for r in results)
    last = max((r.last_receive for r in results), default=outcome.start_at)
    elapsed = max(last - outcome.start_at, 1e-9)
    figures: dict[str, Value] = {
        "nodes": len(args.url),
        "group": f"{args.group_name} (id {group_id})",
        "members online": members,
        "senders ready": sum(i["senders"] for i in infos),
        "window": args.window,
        "messages per sender": args.messages,
        "offered rate (msg/s)": args.rate if args.rate else "closed loop",
        "load processes": len(results),
        "setup failures": sum_counts([i["failures"] for i in infos]),
        "frames before ready": sum_counts([i["early"] for i in infos]),
        "sent": sum(r.sent for r in results),
        "acked": acked,
        "expected deliveries (acked x members)": acked * members,
        "deliveries": deliveries,
        "missing deliveries": _missing(results, members),
        "duplicate deliveries": sum(r.duplicates for r in results),
        "stale group messages": sum(r.stale for r in results),
        "other frames": sum_counts([r.other_frames for r in results]),
        "sends held by a full window": sum(r.late_sends for r in results),
        "errors": sum_counts([r.errors for r in results]),
        "connections closed": sum_counts([r.closed for r in results]),
        "timed out": any(r.unfinished for r in results),
        "elapsed to last delivery (s)": round(elapsed, 3),
        "acked msg/s": round(acked / elapsed, 1),
        "deliveries/s": round(deliveries / elapsed, 1),
        "latency ms": latency_ms(latencies),
    }
    harness_cpu = [r.cpu_seconds for r in results]
    figures.update(cost_figures(args, span, harness_cpu, deliveries, "deliveries"))
    return figures


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    nonce = secrets.token_hex(4)
    try:
        snapshot(args.server_pid, args.db_pid)  # fail now on a wrong pid, not after setup
        group_id, plans = make_plans(args, nonce)
    except (SetupError, ValueError, ProcessLookupError) as error:
        print(f"setup failed: {error}", file=sys.stderr)
        return 1
    snapshots: list[Snapshot] = []
    try:
        outcome = run_workers(
            run_group_worker,
            plans,
            ready_timeout=2 * args.connect_timeout + 30,  # connecting, then settling
            run_timeout=args.run_timeout + args.drain_timeout + 30,
            before_go=lambda: snapshots.append(snapshot(args.server_pid, args.db_pid)),
            after_done=lambda: snapshots.append(snapshot(args.server_pid, args.db_pid)),
        )
    except (WorkerFailed, ProcessLookupError) as error:
        print(f"load failed: {error}", file=sys.stderr)
        return 1
    online = sum(info["members"] for info in outcome.infos)
    if online == 0:
        failures = sum_counts([info["failures"] for info in outcome.infos])
        print(
            f"load failed: no member came online ({failures}); see the node's log", file=sys.stderr
        )
        return 1
    if online < args.members:
        print(f"warning: only {online} of {args.members} members came online", file=sys.stderr)
    figures = summarise(args, group_id, outcome, Span(*snapshots))
    emit("group messages", figures, as_json=args.json)
    limited = sum(r.errors.get(RATE_LIMITED, 0) for r in outcome.results)
    if limited:
        print(
            f"warning: the node refused {limited} group messages as over its rate limit; "
            "restart it with HUBBUB_GROUP_RATE_LIMIT=1000000000 to measure fan-out",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
