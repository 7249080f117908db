"""Throwaway PostgreSQL and Redis servers for tests.

Each server lives in its own temporary directory on a free loopback port, never touching a
server the machine already runs. ``start()`` returns once the server answers (or raises with
the server's log); ``stop()`` shuts it down gracefully, ``kill()`` SIGKILLs it (to test
crashes), and ``start()`` again brings it back on the same port with the same data. Call
``cleanup()`` at the end to stop it and delete its directory.

PostgreSQL's ``initdb`` and ``postgres`` refuse to run as root, so as root they run as the
``postgres`` user. That is done with ``subprocess.Popen(user=...)`` rather than ``runuser``
because runuser forks: the pid we hold would be runuser's, and SIGKILLing it would orphan
the server.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import attrs

_PG_USER = "postgres"


class ServerError(RuntimeError):
    """A throwaway server could not be set up; the message carries its log."""


def find_binary(name: str) -> str | None:
    """``name`` on PATH, else in the newest ``/usr/lib/postgresql/<version>/bin``."""
    found = shutil.which(name)
    if found:
        return found
    candidates = glob.glob(f"/usr/lib/postgresql/*/bin/{name}")
    candidates.sort(key=lambda p: _version_key(Path(p).parent.parent.name))
    return candidates[-1] if candidates else None


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until(ready, process: subprocess.Popen, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerError(f"{what} exited with {process.returncode}:\n{_tail(log)}")
        if ready():
            return
        time.sleep(0.05)
    raise ServerError(f"{what} was not ready within {timeout} s:\n{_tail(log)}")


def _tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _terminate(process: subprocess.Popen | None, sig: int, timeout: float) -> None:
    """Send ``sig`` to the server's process group, SIGKILL it if it outlives ``timeout``."""
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout)


@attrs.define
class PostgresServer:
    """A PostgreSQL cluster in a temporary directory, trust auth for user ``postgres``."""

    base_dir: Path
    port: int
    _bin_dir: Path
    _process: subprocess.Popen | None = None

    @classmethod
    def create(cls) -> PostgresServer:
        """``initdb`` a new cluster (not started yet). Raises ``ServerError`` if the
        binaries are missing or initdb fails."""
        initdb = find_binary("initdb")
        if initdb is None or find_binary("postgres") is None:
            raise ServerError("PostgreSQL server binaries (initdb, postgres) not found")
        base_dir = Path(tempfile.mkdtemp(prefix="hubbub-pg-"))
        if os.geteuid() == 0:
            entry = pwd.getpwnam(_PG_USER)
            os.chown(base_dir, entry.pw_uid, entry.pw_gid)
        server = cls(base_dir, free_port(), Path(initdb).resolve().parent)
        result = subprocess.run(
            [
                *(initdb, "-D", str(server.data_dir), "-U", "postgres", "--auth=trust"),
                *("--encoding=UTF8", "--locale=C", "--no-sync"),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            **_as_postgres_user(),
        )
        if result.returncode != 0:
            shutil.rmtree(base_dir, ignore_errors=True)
            raise ServerError(f"initdb failed:\n{result.stdout}\n{result.stderr}")
        return server

    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    @property
    def log_path(self) -> Path:
        return self.base_dir / "postgres.log"

    @property
    def url(self) -> str:
        """The maintenance database ``postgres``, as user ``postgres``."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self, timeout: float = 30.0) -> None:
        """Start the server and return once ``pg_isready`` says it accepts connections."""
        if self._process is not None and self._process.poll() is None:
            return
        postgres = str(self._bin_dir / "postgres")
        # Opened as root, inherited by the child: the file needs no ownership change.
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                [
                    *(postgres, "-D", str(self.data_dir), "-p", str(self.port)),
                    *("-k", str(self.base_dir), "-c", "listen_addresses=127.0.0.1"),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **_as_postgres_user(),
            )
        _wait_until(self._is_ready, self._process, timeout, "postgres", self.log_path)

    def _is_ready(self) -> bool:
        pg_isready = find_binary("pg_isready")
        if pg_isready is None:
            return _tcp_accepts(self.port)
        result = subprocess.run(
            [pg_isready, "-q", "-h", "127.0.0.1", "-p", str(self.port), "-t", "1"],
            capture_output=True,
            timeout=10,
        )
        return result.returncode == 0

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown (SIGINT: abort sessions, checkpoint), SIGKILL past ``timeout``."""
        _terminate(self._process, signal.SIGINT, timeout)

    def kill(self) -> None:
        """SIGKILL the server and its backends, as a crash would; ``start()`` recovers."""
        _terminate(self._process, signal.SIGKILL, 10.0)

    def cleanup(self) -> None:
        """Stop the server and delete its directory."""
        self.stop()
        shutil.rmtree(self.base_dir, ignore_errors=True)


def _as_postgres_user() -> dict:
    if os.geteuid() != 0:
        return {}
    entry = pwd.getpwnam(_PG_USER)
    env = dict(os.environ, HOME=entry.pw_dir, USER=_PG_USER, LOGNAME=_PG_USER)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": [], "env": env}


@attrs.define
class RedisServer:
    """A Redis server that keeps nothing on disk."""

    base_dir: Path
    port: int
    _binary: str
    _process: subprocess.Popen | None = None
    #: More ``redis-server`` arguments (e.g. a Redis Cluster node's).
    extra_args: tuple[str, ...] = ()

    @classmethod
    def create(cls) -> RedisServer:
        """Prepare a server (not started yet). Raises ``ServerError`` without redis-server."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise ServerError("redis-server not found")
        return cls(Path(tempfile.mkdtemp(prefix="hubbub-redis-")), free_port(), binary)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.base_dir / "redis.log"

    def start(self, timeout: float = 15.0) -> None:
        """Start the server and return once it answers PING."""
        if self._process is not None and self._process.poll() is None:
            return
        self._process = subprocess.Popen(
            [
                *(self._binary, "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(self.base_dir)),
                *("--logfile", str(self.log_path)),
                *self.extra_args,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        _wait_until(self._answers_ping, self._process, timeout, "redis-server", self.log_path)

    def _answers_ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (Redis saves nothing here), SIGKILL past ``timeout``."""
        _terminate(self._process, signal.SIGTERM, timeout)

    def kill(self) -> None:
        """SIGKILL the server, as a crash would; every key is lost, ``start()`` restarts."""
        _terminate(self._process, signal.SIGKILL, 10.0)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.base_dir, ignore_errors=True)


def _tcp_accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False
