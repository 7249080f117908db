"""Block and mute over HTTP (docs/integrations.md, "Block and mute").

Every call needs a bearer access token (401 without one). Changes answer 204 with no body
and are idempotent: blocking twice, or unmuting what is not muted, is a 204 as well.
An id no user has is 404, and so is a group the caller does not belong to (as for the
other group endpoints but history and add-member: a group is visible to its members
only). What a block does is enforced by the chat domain (``engine/chat/blocks.py``); a
mute is read by ``GET /conversations`` and by the ``message.undelivered`` webhook.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from quart import Blueprint, jsonify, request
from quart.wrappers import Response

from hubbub.http.context import chat, context
from hubbub.http.errors import ApiError
from hubbub.http.guards import caller
from hubbub.http.validation import check_id, json_body
from hubbub.storage import MessageKind

blocks = Blueprint("blocks", __name__)

#: The longest ``until`` accepted: ISO-8601 needs far fewer characters.
UNTIL_MAX = 64


def _no_content() -> Response:
    return Response("", status=204)


async def _other_user(me: int, user_id: int) -> int:
    """``user_id``, if it is another user that exists: 422 for oneself, 404 if unknown."""
    if user_id == me:
        raise ApiError(422, "you cannot block or unblock yourself")
    if await chat().directory.name(user_id) is None:
        raise ApiError(404, "no such user")
    return user_id


# -- blocks --------------------------------------------------------------------------


# One rule for both methods: with two, werkzeug counts the POST rule's method before the
# DELETE rule's converter refuses an id out of range, and DELETE /users/0/block answers
# 405 (Allow: POST) instead of 404 (tests/e2e/test_method_not_allowed.py).
@blocks.route("/users/<int:user_id>/block", methods=["POST", "DELETE"])
async def block_or_unblock(user_id: int) -> Response:
    """POST: the caller blocks ``user_id``: that user's direct messages to the caller are
    refused, and presence and typing stop passing between them. DELETE: lifts it."""
    me = caller().user_id
    other = await _other_user(me, user_id)
    change = context().storage.block if request.method == "POST" else context().storage.unblock
    if await change(me, other):
        await chat().blocks_changed(me, other)
    return _no_content()


@blocks.get("/users/blocked")
async def blocked() -> Response:
    """``[{user_id, username}]``: whom the caller blocks, by user id."""
    me = caller().user_id
    found = await context().storage.blocked_users(me)
    return jsonify([{"user_id": ref.id, "username": ref.username} for ref in found])


# -- mutes ---------------------------------------------------------------------------


async def _conversation(me: int, body: dict[str, Any]) -> tuple[MessageKind, int]:
    """The conversation a mute body names: ``{"kind": "direct", "user_id"}`` (any existing
    user, a conversation not begun yet included) or ``{"kind": "group", "group_id"}`` (a
    group of the caller's)."""
    kind = body.get("kind")
    if kind == "direct":
        user_id = check_id(body.get("user_id"), "user_id")
        if await chat().directory.name(user_id) is None:
            raise ApiError(404, "no such user")
        return "direct", user_id
    if kind == "group":
        group_id = check_id(body.get("group_id"), "group_id")
        if await context().storage.member(group_id, me) is None:
            raise ApiError(404, "no such group")
        return "group", group_id
    raise ApiError(422, 'kind must be "direct" (with user_id) or "group" (with group_id)')


def _until(body: dict[str, Any]) -> datetime | None:
    """``until``: absent or null (until unmuted), or an ISO-8601 time with a timezone, in
    the future."""
    raw = body.get("until")
    if raw is None:
        return None
    if not isinstance(raw, str) or len(raw) > UNTIL_MAX:
        raise ApiError(422, "until must be an ISO-8601 time with a timezone, or null")
    try:
        until = datetime.fromisoformat(raw)
    except ValueError:
        raise ApiError(422, "until must be an ISO-8601 time with a timezone, or null") from None
    if until.tzinfo is None or until.utcoffset() is None:
        raise ApiError(422, "until needs a timezone (for instance 2030-01-01T00:00:00Z)")
    if until <= datetime.now(UTC):
        raise ApiError(422, "until is in the past")
    return until.astimezone(UTC)


@blocks.post("/conversations/mute")
async def mute() -> Response:
    """Mute a conversation until ``until`` (or until unmuted); muting again replaces it."""
    me = caller().user_id
    body = await json_body()
    kind, conversation_id = await _conversation(me, body)
    until = _until(body)
    await context().storage.mute(me, kind, conversation_id, until)
    return _no_content()


@blocks.delete("/conversations/mute")
async def unmute() -> Response:
    """Unmute a conversation (the body names it as for muting; ``until`` is ignored)."""
    me = caller().user_id
    body = await json_body()
    kind, conversation_id = await _conversation(me, body)
    await context().storage.unmute(me, kind, conversation_id)
    return _no_content()
