"""Direct message history: ``GET /messages/{user_id}``."""

from __future__ import annotations

from quart import Blueprint, jsonify
from quart.wrappers import Response

from hubbub.http.context import chat, context
from hubbub.http.errors import ApiError
from hubbub.http.guards import caller
from hubbub.http.validation import int_arg
from hubbub.protocol.codec import as_dict
from hubbub.protocol.views import direct_frame

messages = Blueprint("messages", __name__, url_prefix="/messages")

DEFAULT_LIMIT, MAX_LIMIT = 50, 200


def page_args() -> tuple[int | None, int]:
    """``before`` and ``limit`` (default 50, capped at 200) of a history request."""
    before = int_arg("before")
    limit = int_arg("limit", default=DEFAULT_LIMIT)
    assert limit is not None
    return before, min(limit, MAX_LIMIT)


@messages.get("/<int:user_id>")
async def conversation(user_id: int) -> Response:
    """The caller's conversation with ``user_id``, oldest first."""
    me = caller()
    before, limit = page_args()
    ctx = context()
    names = await chat().directory.names({me.user_id, user_id})
    if user_id not in names:
        raise ApiError(404, "no such user")
    history = await ctx.storage.direct_history(me.user_id, user_id, before, limit)
    return jsonify(
        [
            history_object(direct_frame(m, names[m.author_id], names[m.recipient_id], m.status))
            for m in history
        ]
    )


def history_object(frame: object) -> dict:
    """A message frame as a history entry: the same fields, without the frame ``type``."""
    entry = as_dict(frame)  # type: ignore[arg-type]
    del entry["type"]
    return entry
