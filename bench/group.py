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
import sys

from bench import plots
from bench.harness import cli
from bench.harness.group_load import GroupPlan, GroupResult, MemberSpec, run_group_worker
from bench.harness.groups import ensure_group
from bench.harness.report import Value, emit, sum_counts
from bench.harness.users import ensure_users
from bench.harness.wire import chat_url

RATE_LIMITED = "rate limit exceeded"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = cli.new_parser("python -m bench.group", __doc__, "http://127.0.0.1:8120")
    parser.add_argument("--members", type=int, default=500, help="K: members, all online")
    parser.add_argument("--senders", type=int, default=10, help="S: the first S members send")
    parser.add_argument("--messages", type=int, default=100, help="M: messages per sender")
    parser.add_argument("--window", type=int, default=5, help="W: unacked messages per sender")
    parser.add_argument("--group-name", help="default: <user prefix>-group-<members>")
    parser.add_argument(
        "--settle",
        type=float,
        default=1.0,
        help="once all are online, wait until no frame arrived for this long (s)",
    )
    cli.add_load_options(parser, connect_timeout=120.0)
    args = cli.parse(parser, argv)
    if min(args.members, args.senders, args.window, args.messages, args.procs) < 1:
        parser.error("--members, --senders, --window, --messages and --procs must be at least 1")
    if args.senders > args.members:
        parser.error("--senders cannot exceed --members: senders are members")
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


def summarise(args: argparse.Namespace, run: cli.Run) -> dict[str, Value]:
    """The figures of one run, in print order."""
    infos: list[dict] = run.outcome.infos
    results: list[GroupResult] = run.outcome.results
    members = sum(i["members"] for i in infos)
    acked = sum(r.acked for r in results)
    deliveries = sum(r.deliveries for r in results)
    ready: dict[str, Value] = {
        "group": f"{args.group_name} (id {run.prepared})",
        "members online": members,
        "senders ready": sum(i["senders"] for i in infos),
    }
    counted: dict[str, Value] = {
        "frames before ready": sum_counts([i["early"] for i in infos]),
        "sent": sum(r.sent for r in results),
        "acked": acked,
        "expected deliveries (acked x members)": acked * members,
        "deliveries": deliveries,
        "missing deliveries": _missing(results, members),
        "duplicate deliveries": sum(r.duplicates for r in results),
        "stale group messages": sum(r.stale for r in results),
        "other frames": sum_counts([r.other_frames for r in results]),
    }
    return cli.figures(
        args,
        run,
        ready=ready,
        counted=counted,
        per_second={"acked msg/s": acked, "deliveries/s": deliveries},
        cost_of=(deliveries, "deliveries"),
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run = cli.run_load(
        args,
        run_group_worker,
        lambda nonce: make_plans(args, nonce),
        ready_timeout=2 * args.connect_timeout + 30,  # connecting, then settling
    )
    if run is None:
        return 1
    online = sum(info["members"] for info in run.outcome.infos)
    if online == 0:
        failures = sum_counts([info["failures"] for info in run.outcome.infos])
        print(
            f"load failed: no member came online ({failures}); see the node's log", file=sys.stderr
        )
        return 1
    if online < args.members:
        print(f"warning: only {online} of {args.members} members came online", file=sys.stderr)
    figures = summarise(args, run)
    emit("group messages", figures, as_json=args.json)
    plots.report(
        args,
        "group messages",
        figures,
        run,
        ["members online", "senders ready", "deliveries/s", "latency ms"],
    )
    limited = sum(r.errors.get(RATE_LIMITED, 0) for r in run.outcome.results)
    if limited:
        print(
            f"warning: the node refused {limited} group messages as over its rate limit; "
            "restart it with HUBBUB_GROUP_RATE_LIMIT=1000000000 to measure fan-out",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
