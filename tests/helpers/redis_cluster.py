"""A throwaway Redis Cluster for tests: three masters, no replicas, on free loopback ports,
each in its own directory under one temporary directory.

``start()`` starts the three ``redis-server --cluster-enabled yes`` processes, joins them
with ``redis-cli --cluster create`` and returns once every node says
``cluster_state:ok``; ``cleanup()`` stops them and deletes the directory. Its ``url`` is a
``redis+cluster://`` URL naming all three masters, as ``HUBBUB_REDIS_URL`` takes it.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import attrs

from hubbub.config import cluster_nodes
from tests.helpers.servers import RedisServer, ServerError, free_port

MASTERS = 3
#: Redis's cluster bus listens on the client port plus this.
BUS_OFFSET = 10000


def _free_cluster_port(taken: set[int]) -> int:
    """A free port whose cluster-bus port (``+ BUS_OFFSET``) is free too."""
    for _ in range(100):
        port = free_port()
        if port + BUS_OFFSET >= 65536 or port in taken:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + BUS_OFFSET))
            except OSError:
                continue
        return port
    raise ServerError("no free port pair for a Redis Cluster node")


def _command(port: int, *args: str, timeout: float = 2.0) -> str:
    """One ``redis-cli`` command on the node at ``port``; its output ('' if it failed)."""
    try:
        done = subprocess.run(
            ["redis-cli", "-h", "127.0.0.1", "-p", str(port), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout


@attrs.define
class RedisClusterServer:
    """Three cluster-enabled Redis servers joined into one cluster (16384 slots spread)."""

    base_dir: Path
    nodes: list[RedisServer]

    @classmethod
    def create(cls) -> RedisClusterServer:
        """Prepare the nodes (not started). Raises ``ServerError`` without the binaries."""
        for binary in ("redis-server", "redis-cli"):
            if shutil.which(binary) is None:
                raise ServerError(f"{binary} not found")
        base_dir = Path(tempfile.mkdtemp(prefix="hubbub-redis-cluster-"))
        taken: set[int] = set()
        nodes = []
        for index in range(MASTERS):
            port = _free_cluster_port(taken)
            taken.add(port)
            node_dir = base_dir / f"node-{index}"
            node_dir.mkdir()
            nodes.append(
                RedisServer(
                    node_dir,
                    port,
                    shutil.which("redis-server") or "redis-server",
                    extra_args=(
                        *("--cluster-enabled", "yes"),
                        *("--cluster-config-file", str(node_dir / "nodes.conf")),
                        *("--cluster-node-timeout", "5000"),
                    ),
                )
            )
        return cls(base_dir, nodes)

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{node.port}" for node in self.nodes)
        return f"redis+cluster://{hosts}"

    def start(self, timeout: float = 30.0) -> None:
        """Start the nodes, create the cluster, and return once it serves every slot."""
        for node in self.nodes:
            node.start()
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        try:
            created = subprocess.run(
                [
                    *("redis-cli", "--cluster", "create", *addresses),
                    *("--cluster-replicas", "0", "--cluster-yes"),
                ],
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise ServerError(f"redis-cli --cluster create took over {timeout} s") from None
        if created.returncode != 0:
            raise ServerError(f"redis-cli --cluster create failed:\n{created.stdout[-2000:]}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(
                "cluster_state:ok" in _command(node.port, "cluster", "info") for node in self.nodes
            ):
                return
            time.sleep(0.1)
        raise ServerError(f"the Redis Cluster did not reach cluster_state:ok in {timeout} s")

    def flush(self) -> None:
        """Empty every node (between tests: user ids restart at 1 in each test's database)."""
        flush_cluster(self.url)

    def cleanup(self) -> None:
        for node in self.nodes:
            node.stop()
        shutil.rmtree(self.base_dir, ignore_errors=True)


@attrs.frozen
class ExternalRedisCluster:
    """A Redis Cluster the tests were given (``HUBBUB_TEST_REDIS_CLUSTER_URL``)."""

    url: str

    def flush(self) -> None:
        """Empty every node of it: the tests own that cluster."""
        flush_cluster(self.url)


def flush_cluster(url: str) -> None:
    """``FLUSHALL`` on every master of the cluster ``url`` names (its first node finds the
    others). Raises ``ServerError`` if that fails."""
    host, port = cluster_nodes(url)[0]
    done = subprocess.run(
        ["redis-cli", "--cluster", "call", f"{host}:{port}", "FLUSHALL"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if done.returncode != 0:
        raise ServerError(f"FLUSHALL on the Redis Cluster {url} failed:\n{done.stdout[-2000:]}")
