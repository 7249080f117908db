"""Start N hubbub nodes sharing one PostgreSQL and one Redis, for benchmarks.

    .venv/bin/python -m bench.cluster --nodes 3 --database-url postgresql://... \\
        --redis-url redis://127.0.0.1:6379/0 [--base-port 8200] [--seconds 600]

Prints one line per node, ``URL PID``, once every node answers ``/health/ready``,
then keeps them running until interrupted or ``--seconds`` pass, and stops them.
Rate limits are raised out of the way; the nodes share a generated JWT secret.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

READY_TIMEOUT = 60.0


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health/ready", timeout=1) as answer:
            return answer.status == 200
    except OSError:
        return False


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cluster", description=__doc__)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--base-port", type=int, default=8200)
    parser.add_argument("--seconds", type=float, default=600.0)
    args = parser.parse_args(argv)

    secret = secrets.token_urlsafe(48)
    logs = tempfile.mkdtemp(prefix="hubbub-cluster-")
    nodes: list[tuple[str, subprocess.Popen]] = []
    try:
        for index in range(args.nodes):
            port = args.base_port + index
            env = {
                **os.environ,
                "HUBBUB_PORT": str(port),
                "HUBBUB_DATA_DIR": os.path.join(logs, f"node{index}"),
                "HUBBUB_DATABASE_URL": args.database_url,
                "HUBBUB_REDIS_URL": args.redis_url,
                "HUBBUB_JWT_SECRET": secret,
                "HUBBUB_DIRECT_RATE_LIMIT": "1000000000",
                "HUBBUB_GROUP_RATE_LIMIT": "1000000000",
                "HUBBUB_LOG_LEVEL": "warning",
            }
            with open(os.path.join(logs, f"node{index}.log"), "ab") as log:
                process = subprocess.Popen(
                    [sys.executable, "-m", "hubbub", "serve"], env=env, stdout=log, stderr=log
                )
            nodes.append((f"http://127.0.0.1:{port}", process))
        deadline = time.monotonic() + READY_TIMEOUT
        for url, process in nodes:
            while not ready(url):
                if process.poll() is not None or time.monotonic() > deadline:
                    sys.exit(f"node {url} did not start; logs in {logs}")
                time.sleep(0.2)
        for url, process in nodes:
            print(url, process.pid, flush=True)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        time.sleep(args.seconds)
    except KeyboardInterrupt:
        pass
    finally:
        for _, process in nodes:
            process.terminate()
        for _, process in nodes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


if __name__ == "__main__":
    main()
