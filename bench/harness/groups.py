"""A bench group with a given name and members, created once and reused afterwards.

Re-running a group benchmark must not create a new group (nor re-add its members)
each time: the group is found by name among the owner's groups, and only the bench
users not yet in it are added, a few requests at a time.
"""

from __future__ import annotations

import httpx
import trio

from bench.harness.users import BenchUser, SetupError, first_setup_error
from hubbub.client import HubbubHTTP


async def _find_group(http: HubbubHTTP, owner: BenchUser, name: str) -> int | None:
    """The lowest id among the owner's groups called ``name``, if any."""
    answer = await http.get("/groups/all", owner.access_token)
    if answer.status_code != 200:
        raise SetupError(f"GET /groups/all answered {answer.status_code}: {answer.text}")
    ids = [g["id"] for g in answer.json() if g["name"] == name]
    return min(ids) if ids else None


async def _create_group(http: HubbubHTTP, owner: BenchUser, name: str) -> int:
    answer = await http.post("/groups/create-group", owner.access_token, params={"name": name})
    if answer.status_code != 200:
        raise SetupError(f"creating group {name!r} answered {answer.status_code}: {answer.text}")
    return int(answer.json()["group_id"])


async def _member_ids(http: HubbubHTTP, owner: BenchUser, group_id: int) -> set[int]:
    answer = await http.get(f"/groups/{group_id}/members", owner.access_token)
    if answer.status_code != 200:
        raise SetupError(f"listing group {group_id} answered {answer.status_code}: {answer.text}")
    return {m["user_id"] for m in answer.json()}


async def _ensure_group(
    base_url: str, name: str, owner: BenchUser, members: list[BenchUser], concurrency: int
) -> int:
    limiter = trio.CapacityLimiter(concurrency)

    async def add(http: HubbubHTTP, group_id: int, user: BenchUser) -> None:
        async with limiter:
            answer = await http.post(
                f"/groups/{group_id}/add-member", owner.access_token, params={"user_id": user.id}
            )
        # 409: already a member (a concurrent or earlier run added them): as good.
        if answer.status_code not in (200, 409):
            raise SetupError(
                f"adding {user.username} to group {group_id} answered "
                f"{answer.status_code}: {answer.text}"
            )

    async with HubbubHTTP(base_url) as http:
        try:
            group_id = await _find_group(http, owner, name)
            if group_id is None:
                group_id = await _create_group(http, owner, name)
            present = await _member_ids(http, owner, group_id)
            async with trio.open_nursery() as nursery:
                for user in members:
                    if user.id not in present:
                        nursery.start_soon(add, http, group_id, user)
        except httpx.HTTPError as error:
            raise SetupError(f"cannot reach {base_url}: {error!r}; is the node running?") from None
    return group_id


def ensure_group(
    base_url: str,
    name: str,
    owner: BenchUser,
    members: list[BenchUser],
    *,
    concurrency: int = 8,
    timeout: float = 120.0,
) -> int:
    """The id of ``owner``'s group called ``name`` (created if it has none), with every
    user of ``members`` in it (the missing ones added, ``concurrency`` at a time).

    Members already in the group and not in ``members`` are left alone. Raises
    SetupError if the node refuses a step (or ``trio.TooSlowError`` after ``timeout``)."""

    async def run() -> int:
        with trio.fail_after(timeout):
            return await _ensure_group(base_url, name, owner, members, concurrency)

    try:
        return trio.run(run)
    except ExceptionGroup as group:
        raise first_setup_error(group) from group
