"""v2 reads: ``GET /conversations`` and ``GET /sync``."""

from __future__ import annotations

from quart import Blueprint, jsonify, request
from quart.wrappers import Response

from hubbub.http.context import chat
from hubbub.http.errors import ApiError
from hubbub.http.guards import caller
from hubbub.http.validation import int_arg

stream = Blueprint("stream", __name__)

CONVERSATIONS_LIMIT, MAX_CONVERSATIONS = 50, 200
SYNC_LIMIT, MAX_SYNC = 100, 500
MAX_TOKEN = 64


def _text_arg(name: str) -> str | None:
    value = request.args.get(name)
    if value is not None and (len(value) > MAX_TOKEN or "\x00" in value):
        raise ApiError(422, f"{name} is not a value this server gave")
    return value


@stream.get("/conversations")
async def conversations() -> Response:
    """The caller's conversations, most recent activity first."""
    me = caller()
    limit = min(int_arg("limit", default=CONVERSATIONS_LIMIT) or 1, MAX_CONVERSATIONS)
    before = _text_arg("before")
    try:
        page = await chat().conversations(me.user_id, before or None, limit)
    except ValueError as error:
        raise ApiError(422, str(error)) from None
    return jsonify(page)


@stream.get("/sync")
async def sync() -> Response:
    """The caller's stream after ``since``, for clients that poll."""
    me = caller()
    since = _text_arg("since")
    if not since:
        raise ApiError(422, "since is required: a cursor, or now")
    limit = min(int_arg("limit", default=SYNC_LIMIT) or 1, MAX_SYNC)
    return jsonify(await chat().sync(me.user_id, since, limit))
