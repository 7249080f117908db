"""The server API (``/api/v1/``) for tests: a key, and calls made with it."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from typing import Any

import attrs
import httpx
import trio

from hubbub.auth.api_keys import key_hash, new_key
from hubbub.client import Account, HubbubHTTP
from hubbub.storage import Storage
from tests.helpers.nodes import REPO_ROOT

COMMAND_TIMEOUT = 60

_names = itertools.count(1)


async def create_key(storage: Storage, name: str = "tests") -> str:
    """A live key, recorded the way ``hubbub api-key create`` records it."""
    key = new_key()
    await storage.create_api_key(name, key_hash(key))
    return key


async def api_key_command(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    """``python -m hubbub api-key ...`` with the HUBBUB_* settings ``env`` (none of the
    test's own); its exit status and output."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("HUBBUB_")}
    with trio.fail_after(COMMAND_TIMEOUT):
        return await trio.run_process(
            [sys.executable, "-m", "hubbub", "api-key", *args],
            env={**environ, **env},
            cwd=REPO_ROOT,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )


@attrs.frozen
class ServerApi:
    """Calls to one node's server API with ``key`` (or another credential, or none)."""

    http: HubbubHTTP
    key: str

    async def call(
        self, method: str, path: str, *, key: str | None = "", **kwargs: Any
    ) -> httpx.Response:
        """``key=""``: this API's key; None: no Authorization header; else that bearer."""
        bearer = self.key if key == "" else key
        headers = {"Authorization": f"Bearer {bearer}"} if bearer is not None else {}
        return await self.http.http.request(method, f"/api/v1{path}", headers=headers, **kwargs)

    async def post(self, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
        return await self.call("POST", path, json=body, **kwargs)

    async def provision(self, prefix: str = "user", **fields: Any) -> dict[str, Any]:
        """A new user (a fresh username from ``prefix``); its ``{id, username, external_id}``."""
        response = await self.post("/users", {"username": f"{prefix}{next(_names)}", **fields})
        assert response.status_code == 201, response.text
        return response.json()

    async def account(self, prefix: str = "user", **fields: Any) -> Account:
        """A new user signed in through the API: no password hashing involved."""
        user = await self.provision(prefix, **fields)
        response = await self.post(f"/users/{user['id']}/tokens")
        assert response.status_code == 200, response.text
        tokens = response.json()
        return Account(
            user["id"], user["username"], tokens["access_token"], tokens["refresh_token"]
        )
