"""``open_storage`` and ``parse_database_url``: which URLs they accept, and how opening
fails to connect."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from hubbub.storage import (
    DatabaseUrl,
    DatabaseUrlError,
    StorageUnavailable,
    open_storage,
    parse_database_url,
)
from tests.helpers.servers import free_port


@pytest.mark.parametrize(
    "url",
    [
        "hubbub.db",
        "mysql://localhost/hubbub",
        "sqlite://hubbub.db",
        "sqlite://host/hubbub.db",
        "sqlite:///",
        "sqlite:///folder/",
        "postgresql://localhost:notaport/hubbub",
        "postgresql:///hubbub",
    ],
)
async def test_a_malformed_url_says_which_forms_work(url: str) -> None:
    with pytest.raises(ValueError, match=r"sqlite:///relative/path\.db"):
        async with open_storage(url):
            pass  # pragma: no cover


@pytest.mark.parametrize(
    ("url", "parsed"),
    [
        ("sqlite:///hubbub.db", DatabaseUrl("sqlite", path=Path("hubbub.db"))),
        ("SQLite:///data/hub%20bub.db", DatabaseUrl("sqlite", path=Path("data/hub bub.db"))),
        ("sqlite:////var/lib/hubbub.db", DatabaseUrl("sqlite", path=Path("/var/lib/hubbub.db"))),
        (
            "postgresql://u:pw@db:5432/hubbub",
            DatabaseUrl("postgres", dsn="postgresql://u:pw@db:5432/hubbub"),
        ),
        (
            "postgres://u@/hubbub?host=/run/pg",
            DatabaseUrl("postgres", dsn="postgres://u@/hubbub?host=/run/pg"),
        ),
    ],
)
def test_parse_database_url_names_the_backend_and_target(url: str, parsed: DatabaseUrl) -> None:
    assert parse_database_url(url) == parsed


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("hubbub.db", "unsupported database URL scheme '(none)'"),
        ("mysql://localhost/hubbub", "unsupported database URL scheme 'mysql'"),
        ("sqlite://hubbub.db", "malformed SQLite URL"),
        ("sqlite:///x.db?mode=ro", "malformed SQLite URL"),
        ("sqlite:///", "names no file"),
        ("sqlite:///folder/", "names no file"),
        ("postgresql://u:secret@db:notaport/hubbub", "has a malformed port"),
        ("postgresql://u:secret@db:99999/hubbub", "has a malformed port"),
        ("postgresql://u:secret@/hubbub", "names no host"),
        ("postgresql://[::1/hubbub", "malformed database URL"),
        ("sqlite:///a\nb/", "names no file"),
    ],
)
def test_a_refused_url_says_what_to_fix_on_one_line(url: str, says: str) -> None:
    with pytest.raises(DatabaseUrlError) as refused:
        parse_database_url(url)
    message = str(refused.value)
    assert isinstance(refused.value, ValueError)
    assert says in message
    assert "sqlite:///relative/path.db" in message
    assert "\n" not in message
    assert "secret" not in message


async def test_a_relative_sqlite_path_is_created_with_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    async with open_storage("sqlite:///nested/folder/chat.db") as storage:
        assert storage.backend == "sqlite"
        assert await storage.migrate() >= 1
    assert (tmp_path / "nested" / "folder" / "chat.db").is_file()


async def test_an_absolute_sqlite_path(tmp_path: Path) -> None:
    path = tmp_path / "abs.db"
    async with open_storage(f"sqlite:///{path}") as storage:
        await storage.ping()
    assert path.is_file()


async def test_an_unopenable_sqlite_file_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(StorageUnavailable, match="a-file"):
        async with open_storage(f"sqlite:///{tmp_path / 'a-file' / 'x.db'}"):
            pass  # pragma: no cover


async def test_postgres_on_a_closed_port_is_unavailable() -> None:
    url = f"postgresql://postgres:secret@127.0.0.1:{free_port()}/hubbub"
    with trio.fail_after(10), pytest.raises(StorageUnavailable) as refused:
        async with open_storage(url, timeout=2):
            pass  # pragma: no cover
    assert "127.0.0.1" in str(refused.value)
    assert "secret" not in str(refused.value)


async def test_postgres_that_never_answers_is_unavailable_after_the_timeout() -> None:
    # A listener that accepts connections and then says nothing: a hung server.
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    accepted = []

    async def accept_silently() -> None:
        while True:
            accepted.append(await listeners[0].accept())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(accept_silently)
        with trio.fail_after(10), pytest.raises(StorageUnavailable, match=r"within 0\.5 s"):
            async with open_storage(f"postgresql://u@127.0.0.1:{port}/db", timeout=0.5):
                pass  # pragma: no cover
        assert accepted
        nursery.cancel_scope.cancel()
    for stream in accepted:
        await stream.aclose()
    await listeners[0].aclose()
