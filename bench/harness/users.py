"""Bench users with deterministic names, created once and logged back into afterwards.

Each signup or login costs the server an argon2 hash (~50-100 ms of CPU, more when
several run at once), so users are reused across runs (``bench_0``, ``bench_1``, ...),
set up a few at a time, and their access tokens are cached in a file: a cached token
still accepted by ``GET /users/me`` (cheap) spares a login.
"""

from __future__ import annotations

import base64
import os
import tempfile
import time
from pathlib import Path

import attrs
import httpx
import orjson
import trio

from hubbub.client import HubbubHTTP

PASSWORD = "bench-password"
TOKEN_CACHE = Path(tempfile.gettempdir()) / "hubbub-bench-tokens.json"
#: A cached token is used only if it stays valid at least this long.
TOKEN_MARGIN = 300.0
#: Setting a user up costs the server two argon2 hashes (signup, login): about 0.2 s of
#: CPU each on a 2-core machine, so 2,000 new users take longer than 5 minutes there.
SETUP_SECONDS_PER_USER = 0.5


class SetupError(Exception):
    """A bench user (or group) could not be set up: signed up, logged in, created."""


def first_setup_error(group: ExceptionGroup) -> SetupError:
    """The first SetupError inside ``group`` (nested groups searched), copied so it can be
    raised ``from group``. Raises ``group`` itself if it holds no SetupError."""
    failed = group.subgroup(SetupError)
    if failed is None:
        raise group
    first = failed.exceptions[0]
    while isinstance(first, ExceptionGroup):
        first = first.exceptions[0]
    return SetupError(str(first))


@attrs.frozen
class BenchUser:
    id: int
    username: str
    access_token: str


def _expires_at(token: str) -> float:
    """The ``exp`` claim of a JWT, read without verifying (only to skip stale tokens)."""
    payload = token.split(".")[1]
    claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return float(claims.get("exp", 0))


def _load_cache(base_url: str) -> dict[str, BenchUser]:
    try:
        entries = orjson.loads(TOKEN_CACHE.read_bytes()).get(base_url, {})
    except (OSError, orjson.JSONDecodeError):
        return {}
    return {
        name: BenchUser(entry["id"], name, entry["token"])
        for name, entry in entries.items()
        if _expires_at(entry["token"]) > time.time() + TOKEN_MARGIN
    }


def _save_cache(base_url: str, users: list[BenchUser]) -> None:
    try:
        everything = orjson.loads(TOKEN_CACHE.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        everything = {}
    entries = everything.setdefault(base_url, {})
    for user in users:
        entries[user.username] = {"id": user.id, "token": user.access_token}
    scratch = TOKEN_CACHE.with_suffix(f".{os.getpid()}")
    scratch.write_bytes(orjson.dumps(everything))
    scratch.replace(TOKEN_CACHE)


async def _still_valid(http: HubbubHTTP, cached: BenchUser) -> bool:
    me = await http.get("/users/me", cached.access_token)
    if me.status_code != 200:
        return False
    body = me.json()
    return body.get("id") == cached.id and body.get("username") == cached.username


async def _ensure_user(
    http: HubbubHTTP, username: str, cached: BenchUser | None, trust_cache: bool = False
) -> BenchUser:
    if cached is not None and (trust_cache or await _still_valid(http, cached)):
        return cached
    signup = await http.signup(username, f"{username}@bench.example.com", PASSWORD)
    if signup.status_code not in (201, 409):
        raise SetupError(f"signup of {username} answered {signup.status_code}: {signup.text}")
    login = await http.login(username, PASSWORD)
    if login.status_code != 200:
        raise SetupError(
            f"login of {username} answered {login.status_code}: a user of that name exists "
            "with another password? Use a fresh database or another --user-prefix."
        )
    token = login.json()["access_token"]
    if signup.status_code == 201:
        user_id = signup.json()["id"]
    else:
        me = await http.get("/users/me", token)
        me.raise_for_status()
        user_id = me.json()["id"]
    return BenchUser(user_id, username, token)


async def _ensure_users(
    base_url: str,
    names: list[str],
    cache: dict[str, BenchUser],
    concurrency: int,
    timeout: float,
    trust_cache: bool = False,
) -> list[BenchUser]:
    users: list[BenchUser | None] = [None] * len(names)
    limiter = trio.CapacityLimiter(concurrency)

    async def one(index: int, http: HubbubHTTP) -> None:
        async with limiter:
            try:
                users[index] = await _ensure_user(
                    http, names[index], cache.get(names[index]), trust_cache
                )
            except httpx.HTTPError as error:
                raise SetupError(
                    f"cannot reach {base_url} for {names[index]}: {error!r}; is the node running?"
                ) from error

    with trio.fail_after(timeout):
        async with HubbubHTTP(base_url, timeout=timeout) as http, trio.open_nursery() as nursery:
            for index in range(len(names)):
                nursery.start_soon(one, index, http)
    return [user for user in users if user is not None]


def ensure_users(
    base_url: str,
    count: int,
    *,
    prefix: str = "bench",
    concurrency: int = 8,
    timeout: float | None = None,
    trust_cache: bool = False,
) -> list[BenchUser]:
    """Users ``<prefix>_0`` .. ``<prefix>_<count-1>``, each with an access token valid for
    at least ``TOKEN_MARGIN`` seconds.

    Signs up those that do not exist yet and logs in the others (unless a cached token
    is still accepted; with ``trust_cache``, an unexpired cached token is used without
    asking, which spares a loaded server thousands of requests). Raises SetupError
    (or ``trio.TooSlowError`` after ``timeout`` seconds in all; by default 5 minutes, or
    ``SETUP_SECONDS_PER_USER`` each for many users) if any cannot be had."""
    if timeout is None:
        timeout = max(300.0, SETUP_SECONDS_PER_USER * count)
    names = [f"{prefix}_{index}" for index in range(count)]
    cache = _load_cache(base_url)
    try:
        users = trio.run(_ensure_users, base_url, names, cache, concurrency, timeout, trust_cache)
    except ExceptionGroup as group:
        raise first_setup_error(group) from group
    _save_cache(base_url, users)
    return users
