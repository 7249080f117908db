"""argon2 password hashing, always in a worker thread: a hash costs tens of milliseconds."""

from __future__ import annotations

import trio
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
# Verifying against this when the user does not exist keeps the answer time the same,
# so a login attempt cannot tell unknown usernames from wrong passwords.
_DUMMY_HASH = _hasher.hash("hubbub-timing-equaliser")


async def hash_password(password: str) -> str:
    return await trio.to_thread.run_sync(_hasher.hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    """True if ``password`` matches; with ``password_hash=None`` spends the same time, False."""

    def check() -> bool:
        try:
            return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
        except (VerificationError, InvalidHashError):
            return False

    return await trio.to_thread.run_sync(check)
