"""``--workers``: the refusal without PostgreSQL and Redis, the restart intensity, and
listeners sharing a port.
The running pool (real processes, PostgreSQL, Redis) is tested in
tests/cluster/test_workers_serve.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from hubbub.cli import main
from hubbub.config import ConfigError, load_settings
from hubbub.listeners import open_shared_listeners, reserve_port
from hubbub.workers import RestartIntensity

POSTGRES = "postgresql://hubbub@127.0.0.1:5432/hubbub"
REDIS = "redis://127.0.0.1:6379/0"
SECRET = "s" * 40


@pytest.mark.parametrize(
    ("environ", "missing"),
    [
        ({}, "missing PostgreSQL (HUBBUB_DATABASE_URL is SQLite) and HUBBUB_REDIS_URL (unset)"),
        ({"HUBBUB_DATABASE_URL": POSTGRES}, "missing HUBBUB_REDIS_URL (unset)"),
        (
            {"HUBBUB_REDIS_URL": REDIS, "HUBBUB_JWT_SECRET": SECRET},
            "missing PostgreSQL (HUBBUB_DATABASE_URL is SQLite)",
        ),
    ],
)
def test_several_workers_need_postgres_and_redis(environ: dict[str, str], missing: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings({"workers": "2"}, environ, prepare_data_dir=False)
    message = str(refused.value)
    assert message.startswith("--workers 2 runs 2 separate nodes")
    assert message.endswith(missing)


def test_serve_with_workers_on_sqlite_exits_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HUBBUB_DATABASE_URL", "HUBBUB_REDIS_URL", "HUBBUB_WORKERS"):
        monkeypatch.delenv(name, raising=False)
    status = main(["serve", "--workers", "3", "--data-dir", str(tmp_path)])
    lines = capsys.readouterr().err.splitlines()
    assert status == 2
    assert len(lines) == 1
    assert lines[0].startswith("hubbub: configuration error: --workers 3 runs 3 separate nodes")
    assert "PostgreSQL" in lines[0]
    assert "HUBBUB_REDIS_URL" in lines[0]


def test_one_worker_is_one_node_on_any_storage() -> None:
    settings = load_settings({}, {}, prepare_data_dir=False)
    assert settings.workers == 1
    assert settings.storage_backend == "sqlite"


def test_restart_intensity_allows_max_restarts_per_period() -> None:
    intensity = RestartIntensity(max_restarts=3, period=60.0)
    assert [intensity.allow(t) for t in (0.0, 1.0, 2.0)] == [True, True, True]
    assert intensity.allow(3.0) is False  # a fourth within 60 s
    assert intensity.allow(59.9) is False
    # The first restart (at 0) has left the window; the refused ones were never counted.
    assert intensity.allow(60.0) is True
    assert intensity.allow(60.5) is False
    assert intensity.allow(61.0) is True  # the one at 1.0 has left too


#: Connections made to two listeners of one port: all on one would be 1 in 2**31.
SPREAD_CONNECTIONS = 32


async def test_shared_listeners_on_a_reserved_port_take_every_connection_between_them() -> None:
    reserved = reserve_port("127.0.0.1")
    try:
        port = reserved.getsockname()[1]
        first = await open_shared_listeners("127.0.0.1", port)
        second = await open_shared_listeners("127.0.0.1", port)
        accepted = {0: 0, 1: 0}

        async def accept(index: int, listener: trio.SocketListener) -> None:
            while True:
                stream = await listener.accept()
                accepted[index] += 1
                await stream.aclose()

        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                for index, listeners in enumerate((first, second)):
                    nursery.start_soon(accept, index, listeners[0])
                for _ in range(SPREAD_CONNECTIONS):
                    stream = await trio.open_tcp_stream("127.0.0.1", port)
                    # The server closes it once accepted: EOF says which connection
                    # was taken (none waits in the reserved socket, which never listens).
                    assert await stream.receive_some(1) == b""
                    await stream.aclose()
                nursery.cancel_scope.cancel()
        assert sum(accepted.values()) == SPREAD_CONNECTIONS
        assert min(accepted.values()) > 0, accepted
        for listener in (*first, *second):
            await listener.aclose()
    finally:
        reserved.close()
