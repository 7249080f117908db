"""Measure WebSocket echo transports on this machine and print one table.

    .venv/bin/python -m bench.decisions.0001.ws_transports [--seconds 10]
        [--connections 50] [--inflight 10] [--only a,b,c,d,e] [--procs 2] [--pin]
        [--repeat 1] [--settle 0]

The experiment behind docs/decisions/0001-websocket-transport.md, kept so its figures
can be reproduced. Each candidate server (``servers.py`` here) runs in its own
subprocess; lean load processes (``load.py`` here) drive it twice: request/response (one
frame in flight per connection) and pipelined (``--inflight`` frames in flight).
Beside throughput and round-trip latency it reports what docs/design.md asks for: the
server's CPU seconds per 1,000 echoed messages and the load generator's CPU, both
read from /proc/<pid>/stat over the measured window, so the reader can see who ran
out of CPU first; "other CPU" is what the rest of the machine spent meanwhile (kernel
softirq for loopback, and any other process: a noisy neighbour shows up there). For the
front door it also checks that plain HTTP reaches Hypercorn.
"""

from __future__ import annotations

import argparse
import array
import datetime
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import attrs
import orjson

from bench.harness.procstat import machine_busy_seconds, sample

from .load import DRAIN_TIMEOUT

ROOT = Path(__file__).resolve().parents[3]
#: This folder as a package, for ``python -m`` of its servers and load processes.
PACKAGE = "bench.decisions.0001"
CANDIDATES = {
    "a": ("quart", "a) Quart-Trio on Hypercorn (wsproto)"),
    "b": ("triows", "b) trio-websocket serve_websocket"),
    "c": ("sansio", "c) websockets Sans-I/O on trio"),
    "d": ("frontdoor", "d) c) behind the front door"),
    "e": ("wstrio", "e) websockets.trio server (ref.)"),
}
START_TIMEOUT = 20.0
# Busy cores below which the machine counts as quiet enough to start a run.
QUIET = 0.15


@attrs.frozen
class Result:
    """One measured run: counts and CPU over the measured window only."""

    label: str
    load: str
    seconds: float
    messages: int
    latencies: array.array
    server_cpu: float
    load_cpu: float
    # Busy CPU seconds on the machine that neither the server nor the load spent:
    # kernel softirq work for loopback TCP, and any other process (noise).
    other_cpu: float
    problems: tuple[str, ...]

    def row(self) -> list[str]:
        """The table cells for this run, in HEADER's order."""
        ordered = sorted(self.latencies)

        def percentile(q: float) -> str:
            if not ordered:
                return "-"
            return f"{ordered[int(q * (len(ordered) - 1))] * 1000:.2f}"

        per_1k = self.server_cpu / self.messages * 1000 if self.messages else float("nan")
        return [
            self.label,
            self.load,
            f"{self.messages / self.seconds:,.0f}",
            percentile(0.50),
            percentile(0.99),
            f"{self.server_cpu / self.seconds:.0%}",
            f"{per_1k:.4f}",
            f"{self.load_cpu / self.seconds:.0%}",
            f"{self.other_cpu / self.seconds:.0%}",
        ]


HEADER = [
    "server",
    "load",
    "msgs/s",
    "p50 ms",
    "p99 ms",
    "srv CPU",
    "srv CPU s/1k msgs",
    "load CPU",
    "other CPU",
]


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of process ``pid`` so far."""
    return sample(pid).cpu_seconds


def wait_for_quiet(limit: float) -> float:
    """Wait up to ``limit`` seconds for the machine to be nearly idle; return busy cores.

    Other sessions share this machine; a run that starts while they compute measures them.
    """
    deadline = time.monotonic() + limit
    while True:
        before = machine_busy_seconds()
        time.sleep(0.5)
        busy = (machine_busy_seconds() - before) / 0.5
        if busy < QUIET or time.monotonic() >= deadline:
            return busy


def read_line(proc: subprocess.Popen, timeout: float) -> str:
    """The next stdout line of ``proc``; raises RuntimeError if none comes in time."""
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        raise RuntimeError(f"{proc.args} said nothing in {timeout}s")
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"{proc.args} exited with {proc.wait()} before saying anything")
    return line.strip()


def spawn(args: list[str], **kwargs: Any) -> subprocess.Popen:
    """Start ``python -m <args>`` from the repository root, stdout piped as text."""
    return subprocess.Popen(
        [sys.executable, "-m", *args], cwd=ROOT, stdout=subprocess.PIPE, text=True, **kwargs
    )


def pin(proc: subprocess.Popen, cpu: int, enabled: bool) -> None:
    """Restrict ``proc`` to one CPU when ``enabled``."""
    if enabled:
        os.sched_setaffinity(proc.pid, {cpu})


def measure(
    label: str,
    server: subprocess.Popen,
    port: int,
    args: argparse.Namespace,
    inflight: int,
    workdir: Path,
) -> Result:
    """Drive ``server`` with ``args.procs`` load processes and measure one window."""
    shares = [args.connections // args.procs] * args.procs
    shares[0] += args.connections - sum(shares)
    loads, files = [], []
    for i, share in enumerate(shares):
        files.append(workdir / f"latencies-{i}.bin")
        first = sum(shares[:i])
        command = [f"{PACKAGE}.load", "--port", str(port), "--inflight", str(inflight)]
        command += ["--connections", str(share), "--first-index", str(first)]
        loads.append(spawn([*command, "--latencies", str(files[-1])], stdin=subprocess.PIPE))
        pin(loads[-1], 1, args.pin)
    try:
        for proc in loads:
            if read_line(proc, START_TIMEOUT) != "READY":
                raise RuntimeError("load process did not get ready")
        start = time.monotonic() + args.warmup
        until = start + args.seconds
        for proc in loads:
            proc.stdin.write(f"GO {start} {until}\n")
            proc.stdin.flush()
        time.sleep(max(0.0, start - time.monotonic()))
        before = [cpu_seconds(p.pid) for p in (server, *loads)], machine_busy_seconds()
        time.sleep(max(0.0, until - time.monotonic()))
        after = [cpu_seconds(p.pid) for p in (server, *loads)], machine_busy_seconds()
        summaries = []
        for proc in loads:
            out, _ = proc.communicate(timeout=3 * DRAIN_TIMEOUT + 5)
            if proc.returncode:
                raise RuntimeError(f"load process exited with {proc.returncode}: see its stderr")
            summaries.append(orjson.loads(out))
    finally:
        for proc in loads:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    latencies = array.array("d")
    for path in files:
        latencies.frombytes(path.read_bytes())
    cpu = [b - a for a, b in zip(before[0], after[0], strict=True)]
    problems = tuple(f"{k}={s[k]}" for s in summaries for k in ("mismatches", "lost") if s[k])
    return Result(
        label=label,
        load=f"{args.connections}x{inflight}",
        seconds=args.seconds,
        messages=sum(s["messages"] for s in summaries),
        latencies=latencies,
        server_cpu=cpu[0],
        load_cpu=sum(cpu[1:]),
        other_cpu=max(0.0, after[1] - before[1] - sum(cpu)),
        problems=problems,
    )


def start_server(kind: str, workdir: Path, pinned: bool) -> tuple[subprocess.Popen, int]:
    """Start one candidate; return it and its port once it accepts connections."""
    log_path = workdir / f"{kind}.log"
    # The child keeps its own copy of the descriptor; ours can close at once.
    with log_path.open("w") as log:
        server = spawn([f"{PACKAGE}.servers", kind], stderr=log)
    pin(server, 0, pinned)
    try:
        line = read_line(server, START_TIMEOUT)
    except RuntimeError as error:
        stop_server(server)
        raise RuntimeError(f"{error}; server log:\n{log_path.read_text()}") from error
    return server, int(line.split()[1])


def stop_server(server: subprocess.Popen) -> None:
    """SIGINT, then SIGKILL if it has not exited within 10 s."""
    server.send_signal(signal.SIGINT)
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def exchange(sock: socket.socket, request: bytes) -> tuple[str, dict[str, str], bytes]:
    """Send one HTTP request; read one response head and its Content-Length body."""
    sock.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    while len(body) < int(headers.get("content-length", 0)):
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return lines[0], headers, body


UPGRADE = (
    b"GET /ws/chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
HEALTH = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"


def front_door_checks(port: int) -> list[str]:
    """Plain HTTP, an oversized head and a keep-alive upgrade, through the front door."""
    results = []

    def connect() -> socket.socket:
        return socket.create_connection(("127.0.0.1", port), timeout=5)

    with connect() as sock:
        status, headers, body = exchange(sock, HEALTH)
        results.append(f"GET /health -> {status} {body!r} (server: {headers.get('server')})")
    with connect() as sock:
        status, _, _ = exchange(sock, HEALTH[:-2] + b"X-Big: " + b"a" * 20000 + b"\r\n\r\n")
        results.append(f"20 KB request head -> {status}")
    with connect() as sock:
        status, headers, _ = exchange(sock, UPGRADE)
        results.append(f"fresh upgrade -> {status} (server: {headers.get('server')})")
    with connect() as sock:
        exchange(sock, HEALTH)
        status, headers, _ = exchange(sock, UPGRADE)
        results.append(
            f"upgrade after keep-alive GET -> {status} (server: {headers.get('server')})"
        )
    return results


def print_table(rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [HEADER, *rows]) for i in range(len(HEADER))]
    for row in [HEADER, ["-" * w for w in widths], *rows]:
        cells = (
            c.ljust(w) if i < 2 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        print("| " + " | ".join(cells) + " |")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured window per run")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured lead-in per run")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--inflight", type=int, default=10, help="pipelined run; 1 skips it")
    parser.add_argument("--only", default=",".join(CANDIDATES), help="e.g. a,c,d")
    parser.add_argument("--procs", type=int, default=2, help="load processes")
    parser.add_argument("--pin", action="store_true", help="server on CPU 0, load on CPU 1")
    parser.add_argument(
        "--settle", type=float, default=0.0, help="wait up to this long for an idle machine"
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per cell; the one with least other CPU is kept"
    )
    args = parser.parse_args(argv)
    args.only = [c.strip() for c in args.only.split(",") if c.strip()]
    unknown = set(args.only) - set(CANDIDATES)
    if unknown:
        parser.error(f"unknown candidates {sorted(unknown)}; choose from {sorted(CANDIDATES)}")
    if args.connections < args.procs:
        parser.error("--connections must be at least --procs")
    return args


def main(argv: list[str] | None = None) -> None:
    """Run every selected candidate, print the table and the front-door checks."""
    args = parse_args(argv)
    inflights = [1] if args.inflight <= 1 else [1, args.inflight]
    results: list[Result] = []
    checks: list[str] = []
    with tempfile.TemporaryDirectory(prefix="ws-transports-") as tmp:
        for key in args.only:
            kind, label = CANDIDATES[key]
            server, port = start_server(kind, Path(tmp), args.pin)
            try:
                for inflight in inflights:
                    runs = []
                    for _ in range(args.repeat):
                        if args.settle > 0 and wait_for_quiet(args.settle) >= QUIET:
                            print("  machine still busy; measuring anyway", file=sys.stderr)
                        runs.append(measure(label, server, port, args, inflight, Path(tmp)))
                        print(f"  {' | '.join(runs[-1].row())}", file=sys.stderr)
                    # Other sessions share this machine: keep the least disturbed run.
                    results.append(min(runs, key=lambda r: r.other_cpu))
                if kind == "frontdoor":
                    checks = front_door_checks(port)
            finally:
                stop_server(server)
    print(f"# {datetime.date.today()}  {os.cpu_count()} cores  python {sys.version.split()[0]}")
    print(f"# {' '.join([f'python -m {PACKAGE}.ws_transports', *(argv or sys.argv[1:])])}")
    print_table([r.row() for r in results])
    for r in results:
        if r.problems:
            print(f"PROBLEM {r.label} {r.load}: {', '.join(r.problems)}")
    for line in checks:
        print(f"front door: {line}")


if __name__ == "__main__":
    main()
