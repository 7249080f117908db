"""``/messages/{user_id}``: direct history (message_routes.py)."""

from __future__ import annotations

from hubbub.http.message_routes import DEFAULT_LIMIT, MAX_LIMIT
from hubbub.http.openapi._parts import (
    ACCESS,
    ID,
    Schema,
    errors,
    ok,
    operation,
    path_id,
    query,
    ref,
)
from hubbub.http.validation import MAX_ID

TAG = "messages"


def page_parameters() -> list[Schema]:
    """``before`` and ``limit`` of a history page (message_routes.page_args)."""
    return [
        query("before", ID, "Only messages with a smaller id (default: the newest)"),
        query(
            "limit",
            {"type": "integer", "minimum": 1, "maximum": MAX_ID, "default": DEFAULT_LIMIT},
            f"At most this many (served as {MAX_LIMIT} above {MAX_LIMIT})",
        ),
    ]


PATHS = {
    "/messages/{user_id}": {
        "get": operation(
            "direct_history",
            "The caller's direct conversation with a user, oldest first",
            {
                **ok({"type": "array", "items": ref("DirectMessage")}),
                **errors(404),
            },
            tag=TAG,
            security=ACCESS,
            parameters=[path_id("user_id", "The other user"), *page_parameters()],
            description="The newest `limit` messages with id < `before`, in ascending id "
            "order. 404 if no such user.",
        )
    },
}
