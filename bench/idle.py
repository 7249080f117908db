"""Memory per idle connection: the server's RSS before and after K idle WebSockets.

    .venv/bin/python -m bench.idle --url http://127.0.0.1:8100 --server-pid 1234 \\
        [--connections 2000] [--users 200] [--json]

Opens one connection per user first (each user's first connection also starts the
user's actor), then the rest (users repeat: a user may hold many connections). Each
connection counts once it has answered a ``ping``. RSS (``VmRSS``) is read after each
step has been idle for ``--settle`` seconds, and once more after every connection is
closed, so both the cost per connection and what is given back show.

Measure a freshly started node: Python keeps freed memory for reuse, so a node that
has already held as many connections shows almost no growth.

With ``--tracemalloc DIR`` (a node started by ``python -m bench.memnode --dumps DIR``),
the server also dumps its heap at each step, and the bytes per connection are broken
down by library, by hubbub line and by allocating line, with the objects per
connection by type (``bench.harness.heap``). Its RSS figures then mean nothing
(tracemalloc's own bookkeeping); the traced bytes are what count.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import orjson

from bench.harness import cli, heap
from bench.harness.procstat import Snapshot, Span, open_files_limit, raise_fd_limit, snapshot
from bench.harness.ready import keep_idle, open_ready
from bench.harness.report import Value, emit
from bench.harness.users import SetupError, ensure_users
from bench.harness.wire import Loop, chat_url

#: File descriptors a server needs besides its connections (listeners, database, logs).
SERVER_FD_MARGIN = 64


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = cli.new_parser("python -m bench.idle", __doc__, "http://127.0.0.1:8100")
    parser.add_argument("--server-pid", type=int, action="append", required=True)
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--settle", type=float, default=5.0, help="idle seconds before RSS")
    parser.add_argument("--batch", type=int, default=100, help="handshakes in flight")
    parser.add_argument("--user-prefix", default="bench")
    parser.add_argument("--connect-timeout", type=float, default=120.0)
    parser.add_argument("--json", action="store_true", help="also print one JSON line")
    parser.add_argument(
        "--tracemalloc",
        type=Path,
        metavar="DIR",
        help="the --dumps DIR of a node run by bench.memnode: break the bytes down",
    )
    parser.add_argument(
        "--trust-token-cache",
        action="store_true",
        help="use unexpired cached tokens without checking them (a slow server)",
    )
    parser.add_argument("--top", type=int, default=25, help="rows per --tracemalloc table")
    args = cli.parse(parser, argv)
    if min(args.connections, args.users, args.batch) < 1:
        parser.error("--connections, --users and --batch must be at least 1")
    args.users = min(args.users, args.connections)
    return args


def server_fd_warnings(pids: list[int], connections: int) -> list[str]:
    """A line for each server whose open-files limit is too low for ``connections``."""
    needed = connections // len(pids) + SERVER_FD_MARGIN
    return [
        f"server {pid} may open at most {limit} files, fewer than the ~{needed} needed"
        for pid in pids
        if (limit := open_files_limit(pid)) is not None and limit < needed
    ]


def rss_kb(moment: Snapshot) -> int:
    return sum(server.rss_kb for server in moment.servers)


def kb_per(span: Span, count: int) -> float | None:
    return round(span.rss_growth_kb / count, 2) if count else None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    limit = raise_fd_limit(args.connections + 64)
    if limit < args.connections + 16:
        print(f"this process may open only {limit} files: lower --connections", file=sys.stderr)
        return 1
    try:
        snapshot(args.server_pid)
    except ProcessLookupError as error:
        print(f"setup failed: {error}", file=sys.stderr)
        return 1
    warnings = server_fd_warnings(args.server_pid, args.connections)
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    try:
        users = ensure_users(
            args.url[0], args.users, prefix=args.user_prefix, trust_cache=args.trust_token_cache
        )
        targets = [
            (chat_url(args.url[k % len(args.url)], users[k % len(users)].access_token), k)
            for k in range(args.connections)
        ]
    except (SetupError, ValueError) as error:
        print(f"setup failed: {error}", file=sys.stderr)
        return 1

    loop = Loop()
    keep_idle(loop, 1.0)  # let the server settle after the logins
    base = snapshot(args.server_pid)
    dumps = _Dumps(args.tracemalloc, args.server_pid[0])
    dumps.take(loop)
    first = open_ready(loop, targets[: args.users], timeout=args.connect_timeout, batch=args.batch)
    events = keep_idle(loop, args.settle)
    one_each = snapshot(args.server_pid)
    dumps.take(loop)
    rest = open_ready(loop, targets[args.users :], timeout=args.connect_timeout, batch=args.batch)
    for key, count in keep_idle(loop, args.settle).items():
        events[key] = events.get(key, 0) + count
    full = snapshot(args.server_pid)
    if rest.connections:
        dumps.take(loop)
    connections = first.connections + rest.connections
    loop.close_all(connections, timeout=10.0)
    keep_idle(loop, args.settle)
    closed = snapshot(args.server_pid)

    failures = dict(first.failures)
    for reason, count in rest.failures.items():
        failures[reason] = failures.get(reason, 0) + count
    figures: dict[str, Value] = {
        "connections ready": len(connections),
        "of users": len(users),
        "failures": failures,
        "frames and closes while idle": events,
        "server rss kb before": rss_kb(base),
        "server rss kb, one connection per user": rss_kb(one_each),
        "server rss kb, all connections": rss_kb(full),
        "server rss kb after closing all": rss_kb(closed),
        "kb per connection (all)": kb_per(Span(base, full), len(connections)),
        "kb per user's first connection": kb_per(Span(base, one_each), len(first.connections)),
        "kb per further connection": kb_per(Span(one_each, full), len(rest.connections)),
        "server cpu s to open all": round(Span(base, full).server_cpu, 3),
        "server fd limit": {str(p): open_files_limit(p) for p in args.server_pid},
        "warnings": warnings,
    }
    emit("idle connections", figures, as_json=args.json)
    if args.tracemalloc is not None:
        heaps: dict[str, dict] = {
            "user's first connection": heap.compare(
                args.tracemalloc, 1, 2, len(first.connections), args.top
            )
        }
        if rest.connections:
            heaps["further connection"] = heap.compare(
                args.tracemalloc, 2, 3, len(rest.connections), args.top
            )
        for step, breakdown in heaps.items():
            heap.show(f"per {step}", breakdown)
        if args.json:
            print(orjson.dumps({"bench": "idle heap", **heaps}).decode())
    return 0


class _Dumps:
    """Heap dumps of a bench.memnode server, numbered from 1 in the order taken."""

    def __init__(self, directory: Path | None, pid: int) -> None:
        self.directory, self.pid, self.taken = directory, pid, 0

    def take(self, loop: Loop) -> None:
        if self.directory is None:
            return
        self.taken += 1
        # The server stops serving while it dumps: keep answering its pings after.
        heap.request(self.pid, self.directory, self.taken)
        keep_idle(loop, 1.0)


if __name__ == "__main__":
    sys.exit(main())
