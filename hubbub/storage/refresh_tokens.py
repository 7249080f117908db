"""What spending a refresh token does, decided once for both backends.

Each backend reads the rows of the token's family inside one transaction that keeps them
from changing (PostgreSQL: ``FOR UPDATE``; SQLite: ``BEGIN IMMEDIATE``), asks ``decide``,
and runs the writes it answers in that same transaction. So of two spends of one token,
exactly one finds it unspent, and a revocation is never missed by a spend running beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from hubbub.storage.records import SpentRefreshToken
from hubbub.storage.sql import Queries

#: The columns of ``Queries.refresh_family``, in order.
_JTI, _USER, _FAMILY, _EXPIRES, _SPENT, _REVOKED = range(6)


@attrs.frozen
class Spend:
    """The answer to give, and what to write for it."""

    answer: SpentRefreshToken | None
    mark_spent: bool = False
    revoke_family: bool = False

    def writes(self, queries: Queries, jti: str, now: Any) -> list[tuple[str, tuple]]:
        """The statements to run, each with its parameters, in ``queries``' dialect."""
        if self.answer is None:
            return []
        if self.revoke_family:
            return [(queries.revoke_refresh_family, (self.answer.family_id, now))]
        return [(queries.spend_refresh_token, (jti, now))] if self.mark_spent else []


def decide(family: Sequence[Sequence[Any]], jti: str, now: Any) -> Spend:
    """From every row of the family of ``jti`` (empty if unknown) and ``now``, in the
    backend's units for timestamps:

    - unknown, or expired: nothing to answer, nothing to write;
    - spent before: a replay, answered ``reused=True``; the family is revoked;
    - of a revoked family: nothing to answer;
    - else: spent now, answered ``reused=False``."""
    token = next((row for row in family if row[_JTI] == jti), None)
    if token is None or token[_EXPIRES] <= now:
        return Spend(None)
    if token[_SPENT] is not None:
        return Spend(SpentRefreshToken(token[_USER], token[_FAMILY], True), revoke_family=True)
    if any(row[_REVOKED] is not None for row in family):
        return Spend(None)
    return Spend(SpentRefreshToken(token[_USER], token[_FAMILY], False), mark_spent=True)
