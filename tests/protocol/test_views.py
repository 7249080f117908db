"""Stored messages as message objects: v1 fields, v2 state, tombstones, cursors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import orjson

from hubbub.http.message_routes import history_object
from hubbub.protocol.codec import as_dict, encode
from hubbub.protocol.frames import Ack
from hubbub.protocol.views import direct_frame, direct_object, encoded_ack, group_frame
from hubbub.storage.records import DirectMessage, GroupMessage, MessageState, Reaction

SENT = datetime(2025, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
EDITED = datetime(2025, 1, 2, 3, 9, tzinfo=UTC)
RICH = MessageState(
    position=41,
    reply_to=5,
    edited_at=EDITED,
    reactions=(Reaction("👍", (1, 2)), Reaction("🎉", (2,))),
)


PLAIN = MessageState()


def direct(state: MessageState = PLAIN, **overrides: object) -> DirectMessage:
    fields: dict = {
        "id": 7,
        "author_id": 1,
        "recipient_id": 2,
        "body": "hi",
        "image_url": "/media/a.png",
        "client_id": "c-1",
        "status": "delivered",
        "created_at": SENT,
        "state": state,
    }
    return DirectMessage(**{**fields, **overrides})


def group(state: MessageState = PLAIN) -> GroupMessage:
    return GroupMessage(9, 3, 1, "hello", None, None, SENT, state)


def wire(frame: object) -> dict:
    return orjson.loads(encode(frame))  # type: ignore[arg-type]


def test_a_plain_direct_message_has_the_v1_fields_then_empty_v2_ones() -> None:
    obj = wire(direct_frame(direct(), "alice", "bob", "delivered"))
    assert list(obj.items()) == [
        ("type", "message"),
        ("message_id", 7),
        ("author_id", 1),
        ("author_name", "alice"),
        ("recipient_id", 2),
        ("recipient_name", "bob"),
        ("message", "hi"),
        ("image_url", "/media/a.png"),
        ("timestamp", SENT.isoformat()),
        ("status", "delivered"),
        ("edited_at", None),
        ("deleted", False),
        ("reply_to", None),
        ("reactions", []),
        ("client_id", "c-1"),
    ]


def test_a_direct_message_shows_its_state_and_cursor() -> None:
    obj = wire(direct_frame(direct(RICH, body="fixed"), "alice", "bob", "read", cursor="e.29"))
    assert obj["message"] == "fixed"
    assert obj["image_url"] == "/media/a.png"
    assert obj["status"] == "read"
    assert obj["edited_at"] == EDITED.isoformat()
    assert obj["deleted"] is False
    assert obj["reply_to"] == 5
    assert obj["reactions"] == [
        {"emoji": "👍", "user_ids": [1, 2]},
        {"emoji": "🎉", "user_ids": [2]},
    ]
    assert obj["cursor"] == "e.29"
    assert list(obj)[-2:] == ["cursor", "client_id"]


def test_a_deleted_message_is_a_tombstone() -> None:
    state = MessageState(position=3, reply_to=5, deleted=True, reactions=RICH.reactions)
    obj = wire(direct_frame(direct(state), "alice", "bob", "delivered", cursor="e.3"))
    assert (obj["message_id"], obj["author_id"], obj["timestamp"]) == (7, 1, SENT.isoformat())
    assert (obj["message"], obj["image_url"], obj["deleted"]) == (None, None, True)
    assert b"hi" not in encode(direct_frame(direct(state), "alice", "bob", "delivered"))
    assert b"/media/a.png" not in encode(direct_frame(direct(state), "alice", "bob", "delivered"))
    deleted_group = wire(
        group_frame(GroupMessage(9, 3, 1, "secret", "/m/x", None, SENT, state), "t", "a")
    )
    assert (deleted_group["message"], deleted_group["image_url"]) == (None, None)
    assert deleted_group["deleted"] is True


def test_a_group_message_shows_its_state_and_cursor() -> None:
    obj = wire(group_frame(group(RICH), "team", "alice", cursor="e.2a"))
    assert list(obj.items()) == [
        ("type", "group_message"),
        ("group_id", 3),
        ("group_name", "team"),
        ("message_id", 9),
        ("author_id", 1),
        ("author_name", "alice"),
        ("message", "hello"),
        ("image_url", None),
        ("timestamp", SENT.isoformat()),
        ("status", "delivered"),
        ("edited_at", EDITED.isoformat()),
        ("deleted", False),
        ("reply_to", 5),
        ("reactions", [{"emoji": "👍", "user_ids": [1, 2]}, {"emoji": "🎉", "user_ids": [2]}]),
        ("cursor", "e.2a"),
    ]


def test_without_a_cursor_the_key_is_absent() -> None:
    assert "cursor" not in wire(group_frame(group(), "team", "alice"))
    assert "cursor" not in wire(direct_frame(direct(), "alice", "bob", "pending"))


def test_history_objects_have_the_v2_fields_and_no_type_nor_cursor() -> None:
    entry = history_object(direct_frame(direct(RICH), "alice", "bob", "delivered"))
    assert "type" not in entry and "cursor" not in entry
    assert entry["edited_at"] == EDITED.isoformat()
    assert (entry["deleted"], entry["reply_to"]) == (False, 5)
    assert orjson.loads(orjson.dumps(entry["reactions"])) == [
        {"emoji": "👍", "user_ids": [1, 2]},
        {"emoji": "🎉", "user_ids": [2]},
    ]
    group_entry = history_object(group_frame(group(), "team", "alice"))
    assert {"edited_at", "deleted", "reply_to", "reactions"} <= set(group_entry)
    assert group_entry["reactions"] == ()


def test_a_direct_object_is_the_direct_frames_and_an_encoded_ack_the_acks() -> None:
    for message, cursor in (
        (direct(), None),
        (direct(RICH), "e.29"),
        (direct(MessageState(deleted=True)), "e.2a"),
    ):
        built = direct_object(message, "alice", "bob", "pending", cursor)
        frame = direct_frame(message, "alice", "bob", "pending", cursor)
        assert list(built.items()) == list(as_dict(frame).items())
    assert encoded_ack(7, "delivered", "c-1") == encode(Ack(7, "delivered", "c-1"))
    assert encoded_ack(7, "pending") == encode(Ack(7, "pending"))


def test_each_message_shows_its_own_time_though_the_last_one_formatted_is_kept() -> None:
    """Messages of one commit share a timestamp, so its text is reused; an equal instant
    in another zone, or another instant, is formatted anew."""
    later = datetime(2025, 1, 2, 3, 4, 6, tzinfo=UTC)
    same_instant_elsewhere = SENT.astimezone(timezone(timedelta(hours=2)))
    times = [SENT, SENT.replace(), same_instant_elsewhere, later, SENT]
    shown = [direct_object(direct(created_at=t), "a", "b", "pending")["timestamp"] for t in times]
    assert shown == [t.isoformat() for t in times]
    assert shown[2] == "2025-01-02T05:04:05.123456+02:00"
