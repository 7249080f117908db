"""Groups over HTTP: creation, membership and history (docs/contract.md, docs/groups.md).

Who sees what: a group is visible to its members only. docs/contract.md has history and
add-member answer a caller who is not a member of an existing group 403 (404 only for an
id no group has); every other group endpoint answers non-members 404 as for a missing
group. A member who is not an admin gets 403 for the admin-only actions (add, remove
others, promote).

The invariant kept here: a group with members has at least one admin. Leaving is always
allowed; when the last admin goes, the longest-standing remaining member becomes admin.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, jsonify, request
from quart.wrappers import Response

from hubbub.http.context import chat, context
from hubbub.http.errors import ApiError
from hubbub.http.guards import caller
from hubbub.http.message_routes import history_object, page_args
from hubbub.http.validation import check_id, int_arg, json_body
from hubbub.protocol.views import group_frame
from hubbub.storage import Conflict, Group, GroupMember

groups = Blueprint("groups", __name__, url_prefix="/groups")

NAME_MAX = 100


# -- groups ------------------------------------------------------------------


@groups.post("/create-group")
async def create_group() -> dict:
    """Create a group named by query ``name`` or JSON ``{"name"}``; the caller is its admin."""
    me = caller()
    name = await _name_arg()
    group = await context().storage.create_group(name, me.user_id)
    return {"Success": "Group Created", "group_id": group.id}


@groups.get("/all")
async def my_groups() -> Response:
    """The groups the caller belongs to, by id."""
    me = caller()
    return jsonify([_group_object(g) for g in await context().storage.groups_of(me.user_id)])


@groups.get("/<int:group_id>")
async def group_info(group_id: int) -> dict:
    """One group the caller belongs to, with its member count and the caller's role."""
    me = caller()
    storage = context().storage
    members = await storage.group_members(group_id)
    mine = _find(members, me.user_id)
    group = await storage.group(group_id)
    if mine is None or group is None:
        raise _not_visible()
    return {**_group_object(group), "member_count": len(members), "role": mine.role}


@groups.get("/<int:group_id>/messages")
async def history(group_id: int) -> Response:
    """The newest ``limit`` messages with id < ``before``, oldest first. Members only."""
    me = caller()
    before, limit = page_args()
    ctx = context()
    group = await ctx.storage.group(group_id)
    if group is None:
        raise _not_visible()
    if await ctx.storage.member(group_id, me.user_id) is None:
        raise _not_a_member()
    page = await ctx.storage.group_history(group_id, before, limit)
    names = await chat().directory.names({m.author_id for m in page})
    return jsonify(
        [history_object(group_frame(m, group.name, names.get(m.author_id, ""))) for m in page]
    )


# -- membership ----------------------------------------------------------------


@groups.get("/<int:group_id>/members")
async def members(group_id: int) -> Response:
    """Every member of a group the caller belongs to, by user id."""
    me = caller()
    everyone = await context().storage.group_members(group_id)
    if _find(everyone, me.user_id) is None:
        raise _not_visible()
    return jsonify([_member_object(m) for m in everyone])


@groups.post("/<int:group_id>/add-member")
async def add_member(group_id: int) -> dict:
    """An admin adds ``user_id`` (query or JSON) as a member."""
    me = caller()
    user_id = await _user_id_arg()
    ctx = context()
    mine = await ctx.storage.member(group_id, me.user_id)
    if mine is None:
        raise _not_visible() if await ctx.storage.group(group_id) is None else _not_a_member()
    _require_admin(mine, "add members")
    if await chat().directory.name(user_id) is None:
        raise ApiError(404, "no such user")
    await join(group_id, user_id)
    return {"Success": "User added to the group"}


@groups.delete("/<int:group_id>/members/<int:user_id>")
async def remove_member(group_id: int, user_id: int) -> dict:
    """An admin removes a member. Removing yourself is leaving, which any member may do."""
    me = caller()
    mine = await _membership(group_id, me.user_id)
    if user_id == me.user_id:
        await depart(mine)
        return {"Success": "Left the group"}
    _require_admin(mine, "remove members")
    target = await context().storage.member(group_id, user_id)
    if target is None:
        raise ApiError(404, "that user is not a member of this group")
    await depart(target)
    return {"Success": "User removed from the group"}


@groups.post("/<int:group_id>/leave")
async def leave(group_id: int) -> dict:
    """The caller leaves; see the module docstring for who becomes admin."""
    me = caller()
    await depart(await _membership(group_id, me.user_id))
    return {"Success": "Left the group"}


@groups.post("/<int:group_id>/members/<int:user_id>/promote")
async def promote(group_id: int, user_id: int) -> dict:
    """An admin makes a member an admin (promoting an admin again changes nothing)."""
    me = caller()
    ctx = context()
    _require_admin(await _membership(group_id, me.user_id), "promote members")
    if not await ctx.storage.set_member_role(group_id, user_id, "admin"):
        raise ApiError(404, "that user is not a member of this group")
    await chat().membership_changed(group_id)
    return {"Success": "User is now an admin of the group"}


# -- rules -------------------------------------------------------------------


async def _membership(group_id: int, user_id: int) -> GroupMember:
    """The caller's membership of ``group_id``, or 404 (also when no such group exists)."""
    member = await context().storage.member(group_id, user_id)
    if member is None:
        raise _not_visible()
    return member


def _require_admin(member: GroupMember, action: str) -> None:
    if member.role != "admin":
        raise ApiError(403, f"only an admin of this group can {action}")


def _not_visible() -> ApiError:
    # One answer for "no such group" and "not yours", so that group ids do not leak.
    return ApiError(404, "no such group among yours: check the id, or ask an admin to add you")


def _not_a_member() -> ApiError:
    return ApiError(403, "you are not a member of this group: ask one of its admins to add you")


async def join(group_id: int, user_id: int) -> None:
    """Add ``user_id`` (an existing user) to the existing group as a member, or 409 if
    already one; the chat service hears of it (live membership, the joiner's node)."""
    try:
        await context().storage.add_member(group_id, user_id)
    except Conflict as conflict:
        if conflict.field != "member":
            raise
        raise ApiError(409, "that user is already a member of this group") from None
    await chat().membership_changed(group_id, joined=user_id)


async def depart(member: GroupMember) -> None:
    """Remove ``member``. Guarantees that, when an admin leaves, the group's remaining
    members include an admin, and that the chat service hears of the change."""
    ctx = context()
    removed = await ctx.storage.remove_member(member.group_id, member.user_id)
    if removed and member.role == "admin":
        await _keep_an_admin(member.group_id)
    await chat().membership_changed(member.group_id)


async def _keep_an_admin(group_id: int) -> None:
    """If members remain but none is an admin, promote the longest-standing one.

    Runs after the removal has committed, so of two admins removed concurrently the later
    removal sees both gone and repairs; no lock is needed, across nodes either."""
    storage = context().storage
    remaining = await storage.group_members(group_id)
    if any(m.role == "admin" for m in remaining):
        return
    for heir in sorted(remaining, key=lambda m: (m.joined_at, m.user_id)):
        # False only if the heir left meanwhile: the next in line inherits instead.
        if await storage.set_member_role(group_id, heir.user_id, "admin"):
            return


def _find(members: list[GroupMember], user_id: int) -> GroupMember | None:
    return next((m for m in members if m.user_id == user_id), None)


# -- wire shapes and input ---------------------------------------------------


def _group_object(group: Group) -> dict[str, Any]:
    return {
        "id": group.id,
        "name": group.name,
        "created_by": group.created_by,
        "created_at": group.created_at.isoformat(),
    }


def _member_object(member: GroupMember) -> dict[str, Any]:
    return {
        "user_id": member.user_id,
        "username": member.username,
        "role": member.role,
        "last_read_message_id": member.last_read_message_id,
        "joined_at": member.joined_at.isoformat(),
    }


async def _name_arg() -> str:
    raw = request.args.get("name")
    if raw is None:
        raw = (await json_body(empty_ok=True)).get("name")
    return check_group_name(raw)


def check_group_name(raw: object) -> str:
    """A group name: 1 to ``NAME_MAX`` characters once outer spaces are stripped; else 422."""
    name = raw.strip() if isinstance(raw, str) else ""
    if not 1 <= len(name) <= NAME_MAX:
        raise ApiError(
            422, f"name is required: 1 to {NAME_MAX} characters, not counting outer spaces"
        )
    return name


async def _user_id_arg() -> int:
    if "user_id" in request.args:
        value: object = int_arg("user_id")
    else:
        value = (await json_body(empty_ok=True)).get("user_id")
    if value is None:
        raise ApiError(422, "user_id is required: a positive integer, in the query or JSON body")
    return check_id(value, "user_id")
