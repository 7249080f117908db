"""End-to-end fixtures: a real node on a free port, over real HTTP and WebSocket."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from hubbub.client import Account, HubbubHTTP
from hubbub.config import load_settings
from hubbub.node import Node, open_node

_names = itertools.count(1)


@asynccontextmanager
async def running_node(data_dir: Path, database_url: str, **overrides: str) -> AsyncIterator[Node]:
    """A node on 127.0.0.1 and a free port; ``overrides`` are HUBBUB_* settings by name."""
    environ = {
        "HUBBUB_DATA_DIR": str(data_dir),
        "HUBBUB_PORT": "0",
        "HUBBUB_DATABASE_URL": database_url,
        **{f"HUBBUB_{key.upper()}": value for key, value in overrides.items()},
    }
    async with open_node(load_settings(environ=environ)) as node:
        yield node


@pytest.fixture
def node_factory(tmp_path: Path, database_url: str) -> Callable[..., AsyncIterator[Node]]:
    """``async with node_factory(direct_rate_limit="3") as node:`` for tests that tune it."""

    def factory(**overrides: str):  # type: ignore[no-untyped-def]
        return running_node(tmp_path / "data", database_url, **overrides)

    return factory


@pytest.fixture
async def node(node_factory: Callable[..., AsyncIterator[Node]]) -> AsyncIterator[Node]:
    async with node_factory() as running:
        yield running


@pytest.fixture
async def http(node: Node) -> AsyncIterator[HubbubHTTP]:
    async with HubbubHTTP(node.url) as client:
        yield client


UserMaker = Callable[..., Awaitable[Account]]


@pytest.fixture
def make_user(http: HubbubHTTP) -> UserMaker:
    """Sign up and log in a fresh user: ``alice = await make_user("alice")``."""

    async def make(prefix: str = "user") -> Account:
        name = f"{prefix}{next(_names)}"
        return await http.register(name, f"{name}@example.com", "correct horse battery")

    return make
