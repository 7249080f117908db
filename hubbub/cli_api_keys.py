"""``hubbub api-key create|list|revoke``: the server API's keys, kept in the database.

Each command takes the same configuration as ``hubbub serve`` (so it reaches the same
database), migrates it if needed (safe beside running nodes), and exits non-zero with one
line on stderr when it cannot do what was asked. ``create`` prints the new key once, alone
on the last line of stdout: only its hash is stored, so it cannot be shown again.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TextIO

import trio

from hubbub.auth.api_keys import key_hash, new_key, valid_name
from hubbub.config import Settings, add_arguments
from hubbub.storage import ApiKey, Conflict, Storage, open_storage

COMMAND = "api-key"


class CommandFailed(Exception):
    """What the operator asked cannot be done; the message is the one line to show."""


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Register ``api-key`` and its three actions under the ``hubbub`` parser."""
    parser = commands.add_parser(COMMAND, help="create, list or revoke server API keys")
    actions = parser.add_subparsers(dest="action", required=True)
    for action, help_text in (
        ("create", "create a key NAME and print it once, alone on the last line"),
        ("list", "list every key (never the keys themselves)"),
        ("revoke", "revoke the live key NAME: calls with it get 401 from now on"),
    ):
        sub = actions.add_parser(action, help=help_text)
        if action != "list":
            sub.add_argument("name", metavar="NAME", help="1-64 of letters, digits, _ . : -")
        add_arguments(sub)


def run(settings: Settings, action: str, name: str | None, out: TextIO = sys.stdout) -> int:
    """Do ``action``; 0 on success, else 1 with the reason on stderr."""
    try:
        trio.run(_run, settings, action, name, out)
    except CommandFailed as failure:
        print(f"hubbub: {failure}", file=sys.stderr)
        return 1
    return 0


async def _run(settings: Settings, action: str, name: str | None, out: TextIO) -> None:
    if name is not None and not valid_name(name):
        raise CommandFailed(f"{name!r} is not a valid key name: 1-64 of letters, digits, _ . : -")
    async with open_storage(settings.database_url, timeout=settings.database_timeout) as storage:
        await storage.migrate()
        actions: dict[str, Callable[[Storage, str | None, TextIO], Awaitable[None]]] = {
            "create": _create,
            "list": _list,
            "revoke": _revoke,
        }
        await actions[action](storage, name, out)


async def _create(storage: Storage, name: str | None, out: TextIO) -> None:
    assert name is not None
    key = new_key()
    try:
        created = await storage.create_api_key(name, key_hash(key))
    except Conflict:
        raise CommandFailed(
            f"a live key named {name!r} exists already: revoke it first, or pick another name"
        ) from None
    print(f"created API key {created.name!r} (id {created.id}).", file=out)
    print("Keep it now: it is shown only this once. Calls send it as", file=out)
    print("Authorization: Bearer <key>", file=out)
    print(key, file=out)


async def _list(storage: Storage, name: str | None, out: TextIO) -> None:
    keys = await storage.api_keys()
    if not keys:
        print("no API keys (create one with: hubbub api-key create NAME)", file=out)
        return
    print(f"{'ID':>6}  {'NAME':<24}  {'CREATED':<25}  STATUS", file=out)
    for key in keys:
        print(f"{key.id:>6}  {key.name:<24}  {_when(key.created_at):<25}  {_status(key)}", file=out)


async def _revoke(storage: Storage, name: str | None, out: TextIO) -> None:
    assert name is not None
    if not await storage.revoke_api_key(name):
        raise CommandFailed(f"no live key named {name!r} (see: hubbub api-key list)")
    print(f"revoked API key {name!r}: calls with it are refused (401) from now on", file=out)


def _when(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _status(key: ApiKey) -> str:
    return "live" if key.revoked_at is None else f"revoked {_when(key.revoked_at)}"
