"""Storage for the integrations of issue 11, written once for both backends: users the
embedding product provisions by its own id (``external_id``), and server API keys.

A provisioned user may come without an email or a password. The schema keeps
``users.email`` and ``users.password_hash`` NOT NULL (and email unique), so "none" is
stored as a value that can never be a real one, and ``sql.to_user`` reads it back as
``None`` (so no client is ever shown it):

- no email: ``sql.NO_EMAIL_PREFIX`` and 32 random hex digits. It has no ``@``, so it can never
  be an address sign-up accepts (``http/validation.EMAIL``), and it is unique by chance,
  so the unique index stays honest;
- no password: ``sql.NO_PASSWORD``, which is no argon2 hash: nothing verifies against it, and
  a login for such a user costs the same time as for an unknown one (``verify_password``
  with ``None``).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from hubbub.storage.records import ApiKey, User
from hubbub.storage.sql import NO_EMAIL_PREFIX, NO_PASSWORD, USER, Plan, SqlStorage, Stamp, to_user
from hubbub.storage.values import check_text, storable

API_KEY = "id, name, created_at, revoked_at"

_USER_BY_EXTERNAL_ID = f"SELECT {USER} FROM users WHERE external_id = $1"
# Only the external id is the arbiter: a taken username still raises (Conflict("username")).
_PROVISION = (
    "INSERT INTO users (username, email, password_hash, external_id, created_at)"
    " VALUES ($1, $2, $3, $4, $5)"
    " ON CONFLICT (external_id) WHERE external_id IS NOT NULL DO NOTHING"
    f" RETURNING {USER}"
)
_CREATE_KEY = (
    f"INSERT INTO api_keys (name, key_hash, created_at) VALUES ($1, $2, $3) RETURNING {API_KEY}"
)
_KEYS = f"SELECT {API_KEY} FROM api_keys ORDER BY id"
_LIVE_KEY = f"SELECT {API_KEY} FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL"
_REVOKE_KEY = (
    "UPDATE api_keys SET revoked_at = $2 WHERE name = $1 AND revoked_at IS NULL RETURNING 1"
)


def stored_email(email: str | None) -> str:
    """What the email column holds for ``email`` (a unique non-address for None)."""
    return email if email is not None else NO_EMAIL_PREFIX + secrets.token_hex(16)


def to_api_key(row: Sequence[Any], stamp: Stamp) -> ApiKey:
    key_id, name, created_at, revoked_at = row
    revoked = None if revoked_at is None else stamp(revoked_at)
    return ApiKey(key_id, name, stamp(created_at), revoked)


class IntegrationStorage(SqlStorage):
    """The ``Storage`` methods of provisioning and API keys, on ``SqlStorage``'s
    statements and plans (each backend translates them to its dialect)."""

    def _stored_now(self) -> Any:
        return self._stored_time(datetime.now(UTC))

    # -- provisioning ------------------------------------------------------

    async def user_by_external_id(self, external_id: str) -> User | None:
        if not storable(external_id):
            return None
        return await self._first(to_user, _USER_BY_EXTERNAL_ID, external_id)

    async def provision_user(
        self,
        *,
        username: str,
        external_id: str | None,
        email: str | None = None,
        password_hash: str | None = None,
    ) -> tuple[User, bool]:
        check_text(
            username=username, external_id=external_id, email=email, password_hash=password_hash
        )
        row = (
            username,
            stored_email(email),
            NO_PASSWORD if password_hash is None else password_hash,
            external_id,
            self._stored_now(),
        )

        def plan() -> Plan[tuple[Sequence[Any], bool]]:
            # Looked up first: with the external id known, a taken username is no refusal.
            if external_id is not None:
                found = yield (_USER_BY_EXTERNAL_ID, (external_id,))
                if found:
                    return found[0], False
            created = yield (_PROVISION, row)
            if created:
                return created[0], True
            # A concurrent provisioning of the same external id committed first.
            found = yield (_USER_BY_EXTERNAL_ID, (external_id,))
            return found[0], False

        user_row, created = await self._plan(plan)
        return to_user(user_row, self._stamp), created

    # -- API keys ------------------------------------------------------------

    async def create_api_key(self, name: str, key_hash: str) -> ApiKey:
        check_text(name=name, key_hash=key_hash)
        rows = await self._rows(_CREATE_KEY, name, key_hash, self._stored_now())
        return to_api_key(rows[0], self._stamp)

    async def api_keys(self) -> list[ApiKey]:
        return await self._all(to_api_key, _KEYS)

    async def revoke_api_key(self, name: str) -> bool:
        if not storable(name):
            return False
        return bool(await self._rows(_REVOKE_KEY, name, self._stored_now()))

    async def live_api_key(self, key_hash: str) -> ApiKey | None:
        if not storable(key_hash):
            return None
        return await self._first(to_api_key, _LIVE_KEY, key_hash)
