"""The conversation list and the replay on resume, at the sizes the v2 issue names.

    .venv/bin/python -m bench.conversations --database-url postgresql://.../db \\
        --url http://127.0.0.1:8100 [--conversations 1000] [--messages 100000] [--json]

Seeds (once per database: a rerun finds the user ready) a user with ``--conversations``
conversations (nine in ten direct, one in ten groups) holding ``--messages`` messages in
all, written straight through the storage layer (as the node writes them, unread counters
and stream events included). Then measures:

- ``storage_page_ms``: ``Storage.conversations`` for the first page of 50, in this
  process: the server's time for ``GET /conversations`` but for the JSON.
- ``http_page_ms``: the whole ``GET /conversations`` round trip to the node at ``--url``.
- ``replay_ms``: a WebSocket opened with ``since=<cursor>`` after ``--replay`` (1,000)
  direct messages were committed for the user: from the upgrade request to ``synced``.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import httpx
import orjson
import trio
from websockets.sync.client import connect

from bench.harness.report import Value, emit, latency_ms
from bench.harness.users import BenchUser, ensure_users
from hubbub.storage import NewDirectMessage, NewGroupMessage, Storage, open_storage

BATCH = 500
PAGE = 50


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser("python -m bench.conversations", description=__doc__)
    parser.add_argument("--database-url", required=True, help="the node's database")
    parser.add_argument("--url", default="http://127.0.0.1:8100", help="the node")
    parser.add_argument("--conversations", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--replay", type=int, default=1000, help="events missed, replayed")
    parser.add_argument("--repeat", type=int, default=200, help="page reads measured")
    parser.add_argument("--user-prefix", default="convbench")
    parser.add_argument("--json", action="store_true")
    return parser.parse_args(argv)


async def _partners(storage: Storage, prefix: str, count: int) -> list[int]:
    """``count`` users to talk to, created without a password hash worth the name (no
    login is needed for them: nothing here pays for argon2)."""
    ids = []
    for k in range(count):
        name = f"{prefix}_p{k}"
        user = await storage.user_by_username(name)
        if user is None:
            user = await storage.create_user(name, f"{name}@bench.invalid", "!")
        ids.append(user.id)
    return ids


async def seed(storage: Storage, me: int, prefix: str, conversations: int, messages: int) -> None:
    """Give ``me`` the conversations and messages (skipped if done for this prefix)."""
    groups = conversations // 10
    directs = conversations - groups
    existing = await storage.conversations(me, None, conversations + 1)
    if len(existing) >= conversations:
        return
    partners = await _partners(storage, prefix, directs)
    group_ids = []
    for k in range(groups):
        group = await storage.create_group(f"{prefix}_g{k}", partners[k % len(partners)])
        await storage.add_member(group.id, me)
        group_ids.append(group.id)
    per = max(1, messages // conversations)
    batch_d: list[NewDirectMessage] = []
    batch_g: list[NewGroupMessage] = []
    for round_ in range(per):
        for k, partner in enumerate(partners):
            # Half from each side: some unread for ``me``, some written by ``me``.
            author, recipient = (partner, me) if (round_ + k) % 2 else (me, partner)
            batch_d.append(NewDirectMessage(author, recipient, f"m{round_}", None))
            if len(batch_d) >= BATCH:
                await storage.store_direct_messages(batch_d)
                batch_d = []
        for k, group_id in enumerate(group_ids):
            author = partners[k % len(partners)] if round_ % 2 else me
            batch_g.append(NewGroupMessage(group_id, author, f"g{round_}", None))
            if len(batch_g) >= BATCH:
                await storage.store_group_messages(batch_g)
                batch_g = []
    if batch_d:
        await storage.store_direct_messages(batch_d)
    if batch_g:
        await storage.store_group_messages(batch_g)


async def storage_page_times(storage: Storage, me: int, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        page = await storage.conversations(me, None, PAGE)
        times.append(time.perf_counter() - started)
        assert len(page) == PAGE, f"expected a full page, got {len(page)}"
    return times


def http_page_times(url: str, token: str, repeat: int) -> list[float]:
    times = []
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as http:
        for _ in range(repeat):
            started = time.perf_counter()
            response = http.get("/conversations", params={"limit": PAGE})
            times.append(time.perf_counter() - started)
            response.raise_for_status()
    return times


def current_cursor(url: str, token: str) -> str:
    response = httpx.get(
        f"{url}/sync", params={"since": "now"}, headers={"Authorization": f"Bearer {token}"}
    )
    response.raise_for_status()
    return str(response.json()["cursor"])


def tail_position(url: str) -> int:
    """The node's stream-tail position, from its ``/metrics``."""
    text = httpx.get(f"{url}/metrics").raise_for_status().text
    for line in text.splitlines():
        if line.startswith("hubbub_stream_position "):
            return int(float(line.split()[1]))
    raise SystemExit(f"{url}/metrics has no hubbub_stream_position: an older node?")


def wait_for_tail(url: str, head: int, timeout: float = 30.0) -> None:
    """Return once the node's stream tail has dispatched up to position ``head``."""
    deadline = time.monotonic() + timeout
    while tail_position(url) < head:
        if time.monotonic() > deadline:
            raise SystemExit(f"the node's stream tail did not reach {head} in {timeout} s")
        time.sleep(0.05)


def replay_time(url: str, token: str, cursor: str, expected: int) -> tuple[float, int]:
    """Seconds from opening the resumed connection to its ``synced``; frames replayed."""
    ws_url = url.replace("http://", "ws://") + f"/ws/chat?token={token}&since={cursor}"
    started = time.perf_counter()
    replayed = 0
    with connect(ws_url, max_size=None, open_timeout=30) as ws:
        while True:
            frame: dict[str, Any] = orjson.loads(ws.recv(timeout=60))
            if frame.get("type") == "synced":
                return time.perf_counter() - started, replayed
            if "cursor" in frame:
                replayed += 1


async def main_async(
    args: argparse.Namespace, me: BenchUser, reader: BenchUser
) -> dict[str, Value]:
    async with open_storage(args.database_url) as storage:
        await storage.migrate()
        await seed(storage, me.id, args.user_prefix, args.conversations, args.messages)
        stored = await storage_page_times(storage, me.id, args.repeat)
        cursor = await trio.to_thread.run_sync(current_cursor, args.url, reader.access_token)
        partners = await _partners(storage, args.user_prefix, 1)
        for start in range(0, args.replay, BATCH):
            await storage.store_direct_messages(
                [
                    NewDirectMessage(partners[0], reader.id, f"r{k}", None)
                    for k in range(start, min(args.replay, start + BATCH))
                ]
            )
        head = (await storage.stream_state()).head
    # Written behind the node's back: its stream tail finds them on its next poll, and a
    # resume replays only up to the tail. Wait for it, or the replay measures nothing.
    await trio.to_thread.run_sync(wait_for_tail, args.url, head)
    served = await trio.to_thread.run_sync(http_page_times, args.url, me.access_token, 50)
    seconds, replayed = await trio.to_thread.run_sync(
        replay_time, args.url, reader.access_token, cursor, args.replay
    )
    return {
        "conversations": args.conversations,
        "messages": args.messages,
        "storage_page_ms": latency_ms(stored),
        "http_page_ms": latency_ms(served),
        "replayed": replayed,
        "replay_ms": round(seconds * 1000, 1),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Signed up (or logged in) first: ensure_users runs its own trio.run.
    me, reader = ensure_users(args.url, 2, prefix=args.user_prefix)
    figures = trio.run(main_async, args, me, reader)
    emit("conversation list and replay", figures, as_json=args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
