"""``hubbub api-key create|list|revoke`` as a real command, on both backends: the key is
printed once, alone on the last line; it opens the server API of a node on the same
database until it is revoked; mistakes are one clear line and a non-zero exit."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import httpx

from hubbub.auth.api_keys import key_hash
from hubbub.client import HubbubHTTP
from tests.helpers.nodes import running_node
from tests.helpers.server_api import api_key_command as hubbub

KEY = re.compile(r"hbk_[A-Za-z0-9_-]{43}")


def error_line(result: subprocess.CompletedProcess[bytes]) -> str:
    stderr = result.stderr.decode()
    lines = [line for line in stderr.splitlines() if line.startswith("hubbub:")]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


async def test_a_created_key_works_until_revoked(tmp_path: Path, database_url: str) -> None:
    env = {"HUBBUB_DATA_DIR": str(tmp_path / "cli"), "HUBBUB_DATABASE_URL": database_url}
    async with (
        running_node(tmp_path / "node", database_url) as node,
        HubbubHTTP(node.url) as http,
    ):
        created = await hubbub("create", "product-backend", env=env)
        assert created.returncode == 0, created.stderr
        lines = created.stdout.decode().splitlines()
        key = lines[-1]
        assert KEY.fullmatch(key), lines
        assert all(key not in line for line in lines[:-1])  # shown once
        # Stored hashed: the database holds the SHA-256 of the key, never the key.
        rows = await node.storage._rows("SELECT name, key_hash FROM api_keys")  # type: ignore[attr-defined]
        assert [tuple(row) for row in rows] == [("product-backend", key_hash(key))]

        async def provision(name: str) -> httpx.Response:
            return await http.http.post(
                "/api/v1/users",
                json={"username": name},
                headers={"Authorization": f"Bearer {key}"},
            )

        assert (await provision("via-cli")).status_code == 201

        listed = await hubbub("list", env=env)
        assert listed.returncode == 0, listed.stderr
        [row] = [line for line in listed.stdout.decode().splitlines() if "product-backend" in line]
        assert row.rstrip().endswith("live") and key not in listed.stdout.decode()

        revoked = await hubbub("revoke", "product-backend", env=env)
        assert revoked.returncode == 0, revoked.stderr
        refused = await provision("after-revoke")
        assert refused.status_code == 401
        assert refused.json()["detail"] == "unknown or revoked API key"
        listed = await hubbub("list", env=env)
        assert "revoked" in listed.stdout.decode()


async def test_mistakes_are_one_line_and_a_non_zero_exit(tmp_path: Path, database_url: str) -> None:
    env = {"HUBBUB_DATA_DIR": str(tmp_path), "HUBBUB_DATABASE_URL": database_url}
    empty = await hubbub("list", env=env)
    assert empty.returncode == 0 and "no API keys" in empty.stdout.decode()
    assert (await hubbub("create", "bot", env=env)).returncode == 0

    duplicate = await hubbub("create", "bot", env=env)
    assert duplicate.returncode == 1
    assert "a live key named 'bot' exists already" in error_line(duplicate)
    assert not KEY.search(duplicate.stdout.decode())

    unknown = await hubbub("revoke", "nobody", env=env)
    assert unknown.returncode == 1
    assert "no live key named 'nobody'" in error_line(unknown)

    bad_name = await hubbub("create", "two words", env=env)
    assert bad_name.returncode == 1
    assert "not a valid key name" in error_line(bad_name)

    # After a revoke the name is free again, for a new key.
    assert (await hubbub("revoke", "bot", env=env)).returncode == 0
    again = await hubbub("create", "bot", env=env)
    assert again.returncode == 0 and KEY.fullmatch(again.stdout.decode().splitlines()[-1])

    bad_config = await hubbub("list", env={**env, "HUBBUB_DATABASE_TIMEOUT": "never"})
    assert bad_config.returncode == 2
    assert "HUBBUB_DATABASE_TIMEOUT" in error_line(bad_config)
