"""Fixtures for the engine's Redis-backed parts: a client, and a key prefix per test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import coredis
import pytest


@pytest.fixture
def prefix() -> str:
    """Keys of this test's own on the shared test Redis."""
    return f"test:{uuid.uuid4().hex}:"


@pytest.fixture
async def client(redis_server_url: str) -> AsyncIterator[coredis.Redis]:
    async with coredis.Redis.from_url(redis_server_url, decode_responses=False) as client:
        yield client
