"""The server API's messages and groups (docs/integrations.md, "Server API").

A message is sent through the chat domain exactly as a WebSocket send of its author
(``engine/chat/server_send.py``): same rules, same refusals (their contract reasons are
the ``detail``), same live delivery; only the rate limit does not apply. Groups change
through the functions the user routes use (``group_routes.join`` and ``depart``), so live
membership, typing and the admin rule stay right.
"""

from __future__ import annotations

from typing import Any

import orjson

from hubbub.http.api_guard import api_blueprint
from hubbub.http.context import chat, context
from hubbub.http.errors import ApiError
from hubbub.http.group_routes import check_group_name, depart, join
from hubbub.http.message_routes import history_object
from hubbub.http.validation import check_id, json_body
from hubbub.protocol import errors as reasons
from hubbub.protocol import frames
from hubbub.protocol.codec import decode_client_frame
from hubbub.protocol.errors import ProtocolError
from hubbub.protocol.views import direct_frame, group_frame
from hubbub.storage import Group

api_chat = api_blueprint("api_chat")

#: Members one ``POST /api/v1/groups`` may add besides the admin.
MEMBERS_MAX = 1000
#: The HTTP status of each refusal a send can get; any other reason is 422.
_REFUSED = {
    reasons.RECIPIENT_NOT_FOUND: 404,
    reasons.GROUP_NOT_FOUND: 404,
    reasons.NOT_A_MEMBER: 403,
    reasons.NOT_ALLOWED: 403,
    reasons.STORAGE_UNAVAILABLE: 503,
    reasons.SERVER_BUSY: 503,
}
_MESSAGE_FIELDS = ("message", "image_url", "client_id")


# -- messages ----------------------------------------------------------------


@api_chat.post("/messages")
async def send_message() -> tuple[dict, int]:
    """``{author_id, recipient_id | group_id, message?, image_url?, client_id?,
    reply_to?}``: 201 and the message as history shows it, once committed and handed to
    live delivery. A resend with the same ``client_id`` answers the stored message."""
    body = await json_body()
    author_id = check_id(body.get("author_id"), "author_id")
    frame = _frame(body)
    author = await context().storage.user_by_id(author_id)
    if author is None:
        raise ApiError(404, "no such user: author_id")
    group = None
    if isinstance(frame, frames.SendGroup):
        group = await context().storage.group(frame.group_id)
        if group is None:
            raise ApiError(404, reasons.GROUP_NOT_FOUND)
    answer = await chat().send_as(author.id, author.username, frame)
    if answer.reason is not None:
        raise ApiError(_REFUSED.get(answer.reason, 422), answer.reason)
    return await _message_object(answer.message_id, answer.status, group), 201


def _frame(body: dict[str, Any]) -> frames.SendDirect | frames.SendGroup:
    """The WebSocket frame the body stands for, checked as a session's frame is (text
    length, empty message, image URL shape, ``client_id``); else 422 with the reason."""
    recipient_id, group_id = body.get("recipient_id"), body.get("group_id")
    if (recipient_id is None) == (group_id is None):
        raise ApiError(422, "give exactly one of recipient_id and group_id")
    raw: dict[str, Any] = {"type": "message" if group_id is None else "group_message"}
    if group_id is None:
        raw["recipient_id"] = check_id(recipient_id, "recipient_id")
    else:
        raw["group_id"] = check_id(group_id, "group_id")
    for field in _MESSAGE_FIELDS:
        value = body.get(field)
        if value is not None and not isinstance(value, str):
            raise ApiError(422, f"{field} must be a string")
        if value is not None:
            raw[field] = value
    if body.get("reply_to") is not None:
        raw["reply_to"] = check_id(body["reply_to"], "reply_to")
    try:
        frame = decode_client_frame(
            orjson.dumps(raw), max_text_length=context().settings.max_message_length
        )
    except ProtocolError as error:
        raise ApiError(422, _invalid(error.reason)) from None
    assert isinstance(frame, frames.SendDirect | frames.SendGroup)
    return frame


def _invalid(reason: str) -> str:
    if reason == reasons.INVALID_FRAME:
        return (
            f"{reason}: client_id must be 1 to {frames.MAX_CLIENT_ID_LENGTH} characters"
            f" and image_url at most {frames.MAX_IMAGE_URL_LENGTH}"
        )
    return reason


async def _message_object(message_id: Any, status: Any, group: Group | None) -> dict:
    """The stored message as history shows it (status: the ack's, as the author saw)."""
    storage = context().storage
    if group is None:
        direct = await storage.direct_message(message_id)
        if direct is None:  # committed a moment ago: only a database swap could do this
            raise ApiError(503, reasons.STORAGE_UNAVAILABLE)
        names = await chat().directory.names({direct.author_id, direct.recipient_id})
        frame: Any = direct_frame(
            direct, names.get(direct.author_id, ""), names.get(direct.recipient_id, ""), status
        )
        return history_object(frame)
    message = await storage.group_message(message_id)
    if message is None:
        raise ApiError(503, reasons.STORAGE_UNAVAILABLE)
    author = await chat().directory.name(message.author_id) or ""
    return history_object(group_frame(message, group.name, author))


# -- groups ------------------------------------------------------------------


@api_chat.post("/groups")
async def create_group() -> tuple[dict, int]:
    """``{name, admin_id, member_ids}``: 201 ``{group_id}``, the admin and every member in."""
    body = await json_body()
    name = check_group_name(body.get("name"))
    admin_id = check_id(body.get("admin_id"), "admin_id")
    raw_members = body.get("member_ids", [])
    if not isinstance(raw_members, list) or len(raw_members) > MEMBERS_MAX:
        raise ApiError(422, f"member_ids must be a list of at most {MEMBERS_MAX} user ids")
    member_ids = [check_id(value, "member_ids[]") for value in raw_members]
    wanted = list(dict.fromkeys(i for i in member_ids if i != admin_id))
    await _require_users([admin_id, *wanted])
    group = await context().storage.create_group(name, admin_id)
    for user_id in wanted:
        await join(group.id, user_id)
    return {"group_id": group.id}, 201


@api_chat.post("/groups/<int:group_id>/members")
async def add_member(group_id: int) -> tuple[dict, int]:
    """``{user_id}``: 201 once a member; 409 if already one."""
    body = await json_body()
    user_id = check_id(body.get("user_id"), "user_id")
    await _require_group(group_id)
    await _require_users([user_id])
    await join(group_id, user_id)
    return {"group_id": group_id, "user_id": user_id, "role": "member"}, 201


@api_chat.delete("/groups/<int:group_id>/members/<int:user_id>")
async def remove_member(group_id: int, user_id: int) -> tuple[str, int]:
    """204 once removed (the last admin leaving hands the role on, as for the user route)."""
    await _require_group(group_id)
    member = await context().storage.member(group_id, user_id)
    if member is None:
        raise ApiError(404, "that user is not a member of this group")
    await depart(member)
    return "", 204


async def _require_group(group_id: int) -> Group:
    group = await context().storage.group(group_id)
    if group is None:
        raise ApiError(404, reasons.GROUP_NOT_FOUND)
    return group


async def _require_users(user_ids: list[int]) -> None:
    known = await chat().directory.names(user_ids)
    unknown = [str(i) for i in user_ids if i not in known]
    if unknown:
        raise ApiError(404, f"no such user: {', '.join(unknown)}")
