"""``hubbub`` as a command: start-up failures are one clear line, not a traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from hubbub.storage.migrate import load_migrations


def run_hubbub(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hubbub", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("hubbub:")]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_bad_configuration_stops_with_exit_2(tmp_path: Path) -> None:
    result = run_hubbub("serve", env={"HUBBUB_DATA_DIR": str(tmp_path), "HUBBUB_PORT": "x"})
    assert result.returncode == 2
    assert "HUBBUB_PORT" in one_line(result.stderr)


def test_redis_without_a_shared_jwt_secret_stops_with_exit_2(tmp_path: Path) -> None:
    env = {
        "HUBBUB_DATA_DIR": str(tmp_path),
        # Nothing listens there: the check must come before any attempt to reach Redis.
        "HUBBUB_REDIS_URL": "redis://127.0.0.1:1/0",
        # Empty is unset, whatever the test's own environment carries.
        "HUBBUB_JWT_SECRET": "",
    }
    result = run_hubbub("serve", env=env)
    assert result.returncode == 2
    line = one_line(result.stderr)
    assert line.startswith("hubbub: configuration error: ")
    assert "set HUBBUB_JWT_SECRET to the same value on every node" in line


def test_unreachable_database_stops_with_exit_1(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    result = run_hubbub(
        "serve",
        env={
            "HUBBUB_DATA_DIR": str(tmp_path),
            "HUBBUB_DATABASE_URL": f"postgresql://nobody@127.0.0.1:{closed_port}/none",
        },
    )
    assert result.returncode == 1
    assert "cannot start" in one_line(result.stderr)


def test_a_taken_port_stops_with_exit_1(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_hubbub(
            "serve", env={"HUBBUB_DATA_DIR": str(tmp_path), "HUBBUB_PORT": str(port)}
        )
    assert result.returncode == 1
    assert "cannot start" in one_line(result.stderr)


def test_migrate_applies_the_schema_and_is_idempotent(tmp_path: Path, database_url: str) -> None:
    env = {"HUBBUB_DATA_DIR": str(tmp_path), "HUBBUB_DATABASE_URL": database_url}
    first, second = run_hubbub("migrate", env=env), run_hubbub("migrate", env=env)
    assert first.returncode == second.returncode == 0, first.stderr
    assert "schema is current" in first.stderr
    assert f"version={len(load_migrations('sqlite'))}" in second.stderr
