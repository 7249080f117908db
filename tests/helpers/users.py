"""Fresh users for a test: unique names, one password."""

from __future__ import annotations

import itertools

import attrs

from hubbub.client import Account, HubbubHTTP

PASSWORD = "correct horse battery"

_names = itertools.count(1)


async def register(http: HubbubHTTP, prefix: str = "user") -> Account:
    """Sign up and log in a user whose name is ``prefix`` and a number never used before."""
    name = f"{prefix}{next(_names)}"
    return await http.register(name, f"{name}@example.com", PASSWORD)


@attrs.frozen
class UserMaker:
    """``alice = await make_user("alice")``: fresh users through one node's HTTP API."""

    http: HubbubHTTP

    async def __call__(self, prefix: str = "user") -> Account:
        return await register(self.http, prefix)
