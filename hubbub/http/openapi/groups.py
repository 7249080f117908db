"""``/groups``: creation, membership and history (group_routes.py).

Non-members get 404 as for a missing group, except history and add-member, which answer
403 for an existing group the caller is not in (CONTRACT.md)."""

from __future__ import annotations

from hubbub.http.group_routes import NAME_MAX
from hubbub.http.openapi._parts import (
    ACCESS,
    ID,
    TEXT,
    TIMESTAMP,
    errors,
    json_content,
    obj,
    ok,
    operation,
    path_id,
    query,
    ref,
)
from hubbub.http.openapi.messages import page_parameters
from hubbub.http.validation import MAX_ID

TAG = "groups"

_ROLE = {"type": "string", "enum": ["admin", "member"]}
#: At most NAME_MAX once outer spaces are stripped (longer ones are 422).
_NAME = {"type": "string", "minLength": 1, "pattern": "\\S"}
_GROUP = {"group_id": ID}
_GROUP_ID = path_id("group_id", "The group")
_USER_ID = path_id("user_id", "The member")

SCHEMAS = {
    "Group": obj({"id": ID, "name": TEXT, "created_by": ID, "created_at": TIMESTAMP}),
    "GroupInfo": {
        "allOf": [
            ref("Group"),
            obj({"member_count": {"type": "integer", "minimum": 0}, "role": _ROLE}),
        ]
    },
    "Member": obj(
        {
            "user_id": ID,
            "username": TEXT,
            "role": _ROLE,
            # The group_read marker, from the group's newest message at joining: 0 for a
            # member of a group that had none (docs/groups.md), never null.
            "last_read_message_id": {
                "type": "integer",
                "minimum": 0,
                "maximum": MAX_ID,
                "description": "Read up to this message id; 0: nothing yet",
            },
            "joined_at": TIMESTAMP,
        }
    ),
}


def _success(description: str = "Done") -> dict:
    return ok(ref("Success"), description)


PATHS = {
    "/groups/create-group": {
        "post": operation(
            "create_group",
            "Create a group; the caller is its admin",
            ok(obj({"Success": TEXT, "group_id": ID}), "The group was created"),
            tag=TAG,
            security=ACCESS,
            parameters=[query("name", _NAME, 'The name (or JSON {"name"} in the body)')],
            body={
                "required": False,
                "content": json_content(obj({"name": _NAME})),
            },
            description=f"The name is 1 to {NAME_MAX} characters, outer spaces not "
            "counted; the query's wins over the body's (422 otherwise).",
        )
    },
    "/groups/all": {
        "get": operation(
            "my_groups",
            "The groups the caller belongs to",
            ok({"type": "array", "items": ref("Group")}),
            tag=TAG,
            security=ACCESS,
        )
    },
    "/groups/{group_id}": {
        "get": operation(
            "group_info",
            "One of the caller's groups, with its member count and the caller's role",
            {**ok(ref("GroupInfo")), **errors(404)},
            tag=TAG,
            security=ACCESS,
            parameters=[_GROUP_ID],
        )
    },
    "/groups/{group_id}/messages": {
        "get": operation(
            "group_history",
            "A group's history, oldest first (members only)",
            {**ok({"type": "array", "items": ref("GroupMessage")}), **errors(403, 404)},
            tag=TAG,
            security=ACCESS,
            parameters=[_GROUP_ID, *page_parameters()],
        )
    },
    "/groups/{group_id}/members": {
        "get": operation(
            "group_members",
            "Every member of one of the caller's groups",
            {**ok({"type": "array", "items": ref("Member")}), **errors(404)},
            tag=TAG,
            security=ACCESS,
            parameters=[_GROUP_ID],
        )
    },
    "/groups/{group_id}/add-member": {
        "post": operation(
            "add_member",
            "An admin adds a user as a member",
            {**_success("The user was added"), **errors(403, 404, 409)},
            tag=TAG,
            security=ACCESS,
            parameters=[_GROUP_ID, query("user_id", ID, 'The user (or JSON {"user_id"})')],
            body={"required": False, "content": json_content(obj({}, {"user_id": ID}))},
            description="403 if the caller is not an admin (or not a member) of the group; "
            "404 for no such group or user; 409 if already a member.",
        )
    },
    "/groups/{group_id}/members/{user_id}": {
        "delete": operation(
            "remove_member",
            "An admin removes a member; removing yourself is leaving",
            {**_success("The member was removed, or the caller left"), **errors(403, 404)},
            tag=TAG,
            security=ACCESS,
            parameters=[_GROUP_ID, _USER_ID],
        )
    },
    "/groups/{group_id}/leave": {
        "post": operation(
            "leave_group",
            "The caller leaves (the longest-standing member inherits the last admin's role)",
            {**_success("The caller left"), **errors(404)},
            tag=TAG,
            security=ACCESS,
            parameters=[_GROUP_ID],
        )
    },
    "/groups/{group_id}/members/{user_id}/promote": {
        "post": operation(
            "promote_member",
            "An admin makes a member an admin",
            {**_success("The member is an admin"), **errors(403, 404)},
            tag=TAG,
            security=ACCESS,
            parameters=[_GROUP_ID, _USER_ID],
        )
    },
}
