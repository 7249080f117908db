"""Idempotent message batches for PostgreSQL in one round trip.

A batch travels as one array per column. One statement then:

1. unnests the arrays WITH ORDINALITY and draws each row's id from the table's sequence in
   input order (so ids grow in the order messages were sent),
2. inserts them with ``ON CONFLICT (author_id, client_id) DO NOTHING``,
3. (direct messages) marks ``delivered_ids`` delivered, as a data-modifying CTE,
4. answers one row per input, in input order: the inserted row (``created``), or the row
   that already held that ``(author_id, client_id)``, found by joining back to the table.

The join reads the snapshot taken before the insert, which is exactly the rows that existed
before. A duplicate *within* the batch would be invisible to that join, so ``BatchPlan``
removes them before sending and answers them from their first occurrence afterwards.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, TypeVar, cast

import attrs

M = TypeVar("M")
S = TypeVar("S")


@attrs.frozen
class BatchPlan(Generic[M]):
    """A batch with repeats of one ``(author_id, client_id)`` taken out.

    ``unique`` is sent; ``first[i]`` is the index in ``unique`` that answers input ``i``."""

    unique: list[M]
    first: list[int]

    @classmethod
    def of(cls, batch: Sequence[M]) -> BatchPlan[M]:
        unique: list[M] = []
        first: list[int] = []
        seen: dict[tuple[int, str], int] = {}
        for message in batch:
            client_id = message.client_id  # type: ignore[attr-defined]
            key = (message.author_id, client_id)  # type: ignore[attr-defined]
            if client_id is not None and key in seen:
                first.append(seen[key])
                continue
            seen[key] = len(unique)
            first.append(len(unique))
            unique.append(message)
        return cls(unique, first)

    def columns(self, fields: Sequence[str]) -> list[list[Any]]:
        """One list per field, for the statement's array parameters."""
        return [[getattr(m, field) for m in self.unique] for field in fields]

    def answers(self, stored: Sequence[S]) -> list[S]:
        """Answers for ``unique``, spread back over the inputs: a repeat gets its first
        occurrence's row with ``created=False``."""
        answers = []
        used = set()
        for index in self.first:
            answer = stored[index]
            if index in used:
                answer = attrs.evolve(cast(Any, answer), created=False)
            used.add(index)
            answers.append(answer)
        return answers


@attrs.frozen
class BatchStatement:
    """The SQL to store one kind of message; parameters are ``fields`` as arrays, then (for
    direct messages) the ids to mark delivered."""

    table: str
    fields: tuple[str, ...]
    sql: str
    #: Rows that a concurrent transaction committed after our snapshot (rare): parameters
    #: are the author ids and client ids, as arrays.
    refetch_sql: str


def _statement(
    table: str, inputs: dict[str, str], outputs: tuple[str, ...], *, delivered: bool
) -> BatchStatement:
    fields = tuple(inputs)
    names = ", ".join(fields)
    arrays = ", ".join(f"${n}::{kind}[]" for n, kind in enumerate(inputs.values(), 1))
    picks = {c: f"CASE WHEN n.id IS NULL THEN o.{c} ELSE n.{c} END" for c in outputs}
    ctes = ""
    if delivered:
        marked = f"${len(fields) + 1}::bigint[]"
        ctes = (
            f" delivered AS (UPDATE {table} SET status = 'delivered'"
            f" WHERE id = ANY({marked}) AND status = 'pending'),"
        )
        # The join reads the pre-statement snapshot: show a duplicate the status the
        # delivered CTE gives it.
        picks["status"] = (
            "CASE WHEN n.id IS NOT NULL THEN n.status"
            f" WHEN o.status = 'pending' AND o.id = ANY({marked}) THEN 'delivered'"
            " ELSE o.status END"
        )
    returning = ", ".join(outputs)
    sql = (
        # MATERIALIZED: evaluate nextval() exactly once per row, in ordinality order.
        f"WITH input AS MATERIALIZED (SELECT nextval('{table}_id_seq') AS id, t.*"
        f" FROM unnest({arrays}) WITH ORDINALITY AS t({names}, ord)),{ctes}"
        f" inserted AS (INSERT INTO {table} (id, {names}) SELECT id, {names} FROM input"
        f" ON CONFLICT (author_id, client_id) DO NOTHING RETURNING {returning})"
        f" SELECT n.id IS NOT NULL AS created, "
        + ", ".join(f"{pick} AS {c}" for c, pick in picks.items())
        + f" FROM input i LEFT JOIN inserted n ON n.id = i.id LEFT JOIN {table} o"
        " ON n.id IS NULL AND o.author_id = i.author_id AND o.client_id = i.client_id"
        " ORDER BY i.ord"
    )
    refetch_sql = (
        f"SELECT false AS created, {returning} FROM {table} WHERE (author_id, client_id) IN"
        " (SELECT * FROM unnest($1::bigint[], $2::text[]))"
    )
    return BatchStatement(table, fields, sql, refetch_sql)


DIRECT_BATCH = _statement(
    "direct_messages",
    {
        "author_id": "bigint",
        "recipient_id": "bigint",
        "body": "text",
        "image_url": "text",
        "client_id": "text",
    },
    ("id", "author_id", "recipient_id", "body", "image_url", "client_id", "status", "created_at"),
    delivered=True,
)

GROUP_BATCH = _statement(
    "group_messages",
    {
        "author_id": "bigint",
        "group_id": "bigint",
        "body": "text",
        "image_url": "text",
        "client_id": "text",
    },
    ("id", "group_id", "author_id", "body", "image_url", "client_id", "created_at"),
    delivered=False,
)
