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
import sys

from bench import plots
from bench.harness import cli
from bench.harness.pairs import PairPlan, PairResult, PairSpec, run_pair_worker
from bench.harness.report import Value, emit
from bench.harness.users import ensure_users
from bench.harness.wire import chat_url


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = cli.new_parser("python -m bench.direct", __doc__, "http://127.0.0.1:8100")
    parser.add_argument("--pairs", type=int, default=50)
    parser.add_argument("--window", type=int, default=20, help="unacked messages per sender")
    parser.add_argument("--messages", type=int, default=400, help="messages per sender")
    cli.add_load_options(parser, connect_timeout=60.0)
    args = cli.parse(parser, argv)
    if min(args.pairs, args.window, args.messages, args.procs) < 1:
        parser.error("--pairs, --window, --messages and --procs must be at least 1")
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


def summarise(args: argparse.Namespace, run: cli.Run) -> dict[str, Value]:
    """The figures of one run, in print order."""
    infos: list[dict] = run.outcome.infos
    results: list[PairResult] = run.outcome.results
    delivered = sum(r.delivered for r in results)
    counted: dict[str, Value] = {
        "sent": sum(r.sent for r in results),
        "acked": sum(r.acked for r in results),
        "acked as delivered": sum(r.acked_delivered for r in results),
        "delivered": delivered,
        "lost": sum(r.lost for r in results),
        "duplicates": sum(r.duplicates for r in results),
        "stale frames": sum(r.stale for r in results)
        + sum(i["early"].get("message", 0) for i in infos),
    }
    return cli.figures(
        args,
        run,
        ready={"pairs ready": sum(i["pairs"] for i in infos)},
        counted=counted,
        per_second={"delivered msg/s": delivered},
        cost_of=(delivered, "delivered"),
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run = cli.run_load(
        args,
        run_pair_worker,
        lambda nonce: (None, make_plans(args, nonce)),
        ready_timeout=args.connect_timeout + 30,
    )
    if run is None:
        return 1
    figures = summarise(args, run)
    emit("direct messages", figures, as_json=args.json)
    plots.report(
        args,
        "direct messages",
        figures,
        run,
        ["pairs ready", "window", "delivered msg/s", "latency ms"],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
