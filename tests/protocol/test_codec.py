"""The codec against the wire contract: each frame's exact JSON shape, each refusal's reason."""

from __future__ import annotations

import attrs
import orjson
import pytest

from hubbub.protocol import errors
from hubbub.protocol.codec import (
    DEFAULT_MAX_TEXT_LENGTH,
    as_dict,
    decode_client_frame,
    decode_server_frame,
    encode,
    encode_object,
    object_builder,
)
from hubbub.protocol.errors import ProtocolError
from hubbub.protocol.frames import (
    CLIENT_FRAMES,
    SERVER_FRAMES,
    STREAM_FRAMES,
    Ack,
    Delete,
    Edit,
    ErrorOut,
    GroupMessageOut,
    GroupReadOut,
    MessageDeleted,
    MessageEdited,
    MessageOut,
    Ping,
    Pong,
    PresenceOut,
    PresenceQuery,
    React,
    ReactionOut,
    ReadDirect,
    ReadGroup,
    ReadReceipt,
    SendDirect,
    SendGroup,
    StatusOut,
    Synced,
    Typing,
    TypingOut,
    wire_type,
)

TS = "2025-01-02T03:04:05.123456+00:00"
EDITED = "2025-01-02T03:09:00.000001+00:00"
CURSOR = "k3x9.2a"
NO_V2 = {"edited_at": None, "deleted": False, "reply_to": None, "reactions": ()}
# What a message object with no v2 state says, in wire order.
NO_V2_ITEMS = [("edited_at", None), ("deleted", False), ("reply_to", None), ("reactions", [])]

# Each server frame with the (key, value) pairs docs/contract.md gives it, in wire order.
SERVER_CASES = [
    (
        MessageOut(7, 1, "alice", 2, "bob", "hi", None, TS, "delivered", **NO_V2),
        [
            ("type", "message"),
            ("message_id", 7),
            ("author_id", 1),
            ("author_name", "alice"),
            ("recipient_id", 2),
            ("recipient_name", "bob"),
            ("message", "hi"),
            ("image_url", None),
            ("timestamp", TS),
            ("status", "delivered"),
            *NO_V2_ITEMS,
        ],
    ),
    (
        MessageOut(
            7, 1, "alice", 2, "bob", None, "/media/a.png", TS, "pending", **NO_V2, client_id="c-1"
        ),
        [
            ("type", "message"),
            ("message_id", 7),
            ("author_id", 1),
            ("author_name", "alice"),
            ("recipient_id", 2),
            ("recipient_name", "bob"),
            ("message", None),
            ("image_url", "/media/a.png"),
            ("timestamp", TS),
            ("status", "pending"),
            *NO_V2_ITEMS,
            ("client_id", "c-1"),
        ],
    ),
    (
        # A stream event of a tombstone that answered message 3 and kept its reactions.
        MessageOut(
            7,
            1,
            "alice",
            2,
            "bob",
            None,
            None,
            TS,
            "read",
            edited_at=EDITED,
            deleted=True,
            reply_to=3,
            reactions=({"emoji": "👍", "user_ids": [1, 2]}, {"emoji": "🎉", "user_ids": [2]}),
            cursor=CURSOR,
            client_id="c-1",
        ),
        [
            ("type", "message"),
            ("message_id", 7),
            ("author_id", 1),
            ("author_name", "alice"),
            ("recipient_id", 2),
            ("recipient_name", "bob"),
            ("message", None),
            ("image_url", None),
            ("timestamp", TS),
            ("status", "read"),
            ("edited_at", EDITED),
            ("deleted", True),
            ("reply_to", 3),
            (
                "reactions",
                [{"emoji": "👍", "user_ids": [1, 2]}, {"emoji": "🎉", "user_ids": [2]}],
            ),
            ("cursor", CURSOR),
            ("client_id", "c-1"),
        ],
    ),
    (
        Ack(7, "pending"),
        [("type", "ack"), ("message_id", 7), ("status", "pending")],
    ),
    (
        Ack(7, "delivered", "c-1"),
        [("type", "ack"), ("message_id", 7), ("status", "delivered"), ("client_id", "c-1")],
    ),
    (
        GroupMessageOut(3, "team", 9, 1, "alice", "hello", None, TS, "delivered", **NO_V2),
        [
            ("type", "group_message"),
            ("group_id", 3),
            ("group_name", "team"),
            ("message_id", 9),
            ("author_id", 1),
            ("author_name", "alice"),
            ("message", "hello"),
            ("image_url", None),
            ("timestamp", TS),
            ("status", "delivered"),
            *NO_V2_ITEMS,
        ],
    ),
    (
        GroupMessageOut(
            3, "team", 9, 1, "alice", "hello", None, TS, "delivered", **NO_V2, client_id="g-1"
        ),
        [
            ("type", "group_message"),
            ("group_id", 3),
            ("group_name", "team"),
            ("message_id", 9),
            ("author_id", 1),
            ("author_name", "alice"),
            ("message", "hello"),
            ("image_url", None),
            ("timestamp", TS),
            ("status", "delivered"),
            *NO_V2_ITEMS,
            ("client_id", "g-1"),
        ],
    ),
    (
        GroupMessageOut(
            3,
            "team",
            9,
            1,
            "alice",
            "hello, edited",
            None,
            TS,
            "delivered",
            edited_at=EDITED,
            deleted=False,
            reply_to=8,
            reactions=({"emoji": "a" * 32, "user_ids": [5]},),
            cursor=CURSOR,
        ),
        [
            ("type", "group_message"),
            ("group_id", 3),
            ("group_name", "team"),
            ("message_id", 9),
            ("author_id", 1),
            ("author_name", "alice"),
            ("message", "hello, edited"),
            ("image_url", None),
            ("timestamp", TS),
            ("status", "delivered"),
            ("edited_at", EDITED),
            ("deleted", False),
            ("reply_to", 8),
            ("reactions", [{"emoji": "a" * 32, "user_ids": [5]}]),
            ("cursor", CURSOR),
        ],
    ),
    (
        ReadReceipt(7, 2, "bob", 1),
        [
            ("type", "read_receipt"),
            ("message_id", 7),
            ("reader_id", 2),
            ("reader_name", "bob"),
            ("author_id", 1),
        ],
    ),
    (
        ReadReceipt(7, 2, "bob", 1, cursor=CURSOR),
        [
            ("type", "read_receipt"),
            ("message_id", 7),
            ("reader_id", 2),
            ("reader_name", "bob"),
            ("author_id", 1),
            ("cursor", CURSOR),
        ],
    ),
    (
        GroupReadOut(3, 2, 9),
        [("type", "group_read"), ("group_id", 3), ("user_id", 2), ("message_id", 9)],
    ),
    (
        GroupReadOut(3, 2, 9, CURSOR),
        [
            ("type", "group_read"),
            ("group_id", 3),
            ("user_id", 2),
            ("message_id", 9),
            ("cursor", CURSOR),
        ],
    ),
    (
        PresenceOut(2, "bob", "online", None),
        [
            ("type", "presence"),
            ("user_id", 2),
            ("username", "bob"),
            ("presence_status", "online"),
            ("last_seen_iso", None),
        ],
    ),
    (
        PresenceOut(2, "bob", "offline", TS),
        [
            ("type", "presence"),
            ("user_id", 2),
            ("username", "bob"),
            ("presence_status", "offline"),
            ("last_seen_iso", TS),
        ],
    ),
    (StatusOut(7, "read"), [("type", "status"), ("message_id", 7), ("status", "read")]),
    (
        StatusOut(7, "delivered", CURSOR),
        [("type", "status"), ("message_id", 7), ("status", "delivered"), ("cursor", CURSOR)],
    ),
    (Pong(), [("type", "pong")]),
    (ErrorOut("rate limit exceeded"), [("type", "error"), ("reason", "rate limit exceeded")]),
    (
        ErrorOut("empty message", "c-9"),
        [("type", "error"), ("reason", "empty message"), ("client_id", "c-9")],
    ),
    # v2 events: an optional key in the middle (group_id) stays in its place when set.
    (
        MessageEdited(
            message_id=7, author_id=1, message="hi again", edited_at=EDITED, cursor=CURSOR
        ),
        [
            ("type", "message_edited"),
            ("message_id", 7),
            ("author_id", 1),
            ("message", "hi again"),
            ("edited_at", EDITED),
            ("cursor", CURSOR),
        ],
    ),
    (
        MessageEdited(
            message_id=9,
            group_id=3,
            author_id=1,
            message="hello",
            edited_at=EDITED,
            cursor=CURSOR,
            client_id="e-1",
        ),
        [
            ("type", "message_edited"),
            ("message_id", 9),
            ("group_id", 3),
            ("author_id", 1),
            ("message", "hello"),
            ("edited_at", EDITED),
            ("cursor", CURSOR),
            ("client_id", "e-1"),
        ],
    ),
    (
        # A replayed edit of a message deleted since: its text is never sent again.
        MessageEdited(message_id=7, author_id=1, message=None, edited_at=EDITED, cursor=CURSOR),
        [
            ("type", "message_edited"),
            ("message_id", 7),
            ("author_id", 1),
            ("message", None),
            ("edited_at", EDITED),
            ("cursor", CURSOR),
        ],
    ),
    (
        MessageDeleted(message_id=7, deleted_by=1, cursor=CURSOR),
        [("type", "message_deleted"), ("message_id", 7), ("deleted_by", 1), ("cursor", CURSOR)],
    ),
    (
        MessageDeleted(message_id=9, group_id=3, deleted_by=4, cursor=CURSOR, client_id="d-1"),
        [
            ("type", "message_deleted"),
            ("message_id", 9),
            ("group_id", 3),
            ("deleted_by", 4),
            ("cursor", CURSOR),
            ("client_id", "d-1"),
        ],
    ),
    (
        ReactionOut(message_id=7, user_id=2, emoji="👍", op="add", cursor=CURSOR),
        [
            ("type", "reaction"),
            ("message_id", 7),
            ("user_id", 2),
            ("emoji", "👍"),
            ("op", "add"),
            ("cursor", CURSOR),
        ],
    ),
    (
        ReactionOut(
            message_id=9,
            group_id=3,
            user_id=2,
            emoji="🎉",
            op="remove",
            cursor=CURSOR,
            client_id="r-1",
        ),
        [
            ("type", "reaction"),
            ("message_id", 9),
            ("group_id", 3),
            ("user_id", 2),
            ("emoji", "🎉"),
            ("op", "remove"),
            ("cursor", CURSOR),
            ("client_id", "r-1"),
        ],
    ),
    (
        TypingOut(user_id=1, username="alice", recipient_id=2, state="start"),
        [
            ("type", "typing"),
            ("user_id", 1),
            ("username", "alice"),
            ("recipient_id", 2),
            ("state", "start"),
        ],
    ),
    (
        TypingOut(user_id=1, username="alice", group_id=3, state="stop"),
        [
            ("type", "typing"),
            ("user_id", 1),
            ("username", "alice"),
            ("group_id", 3),
            ("state", "stop"),
        ],
    ),
    (
        Synced(CURSOR, True),
        [("type", "synced"), ("cursor", CURSOR), ("recovered", True)],
    ),
    (
        Synced(CURSOR, recovered=False),
        [("type", "synced"), ("cursor", CURSOR), ("recovered", False)],
    ),
]


@pytest.mark.parametrize(("frame", "items"), SERVER_CASES, ids=lambda v: type(v).__name__)
def test_server_frame_wire_shape(frame: object, items: list[tuple[str, object]]) -> None:
    data = encode(frame)
    assert isinstance(data, bytes)
    assert list(orjson.loads(data).items()) == items
    assert decode_server_frame(data) == dict(items)


def test_every_server_frame_class_is_covered() -> None:
    assert {type(frame) for frame, _ in SERVER_CASES} == set(SERVER_FRAMES)


@pytest.mark.parametrize(("frame", "items"), SERVER_CASES, ids=lambda v: type(v).__name__)
def test_as_dict_is_what_encode_writes(frame: object, items: list[tuple[str, object]]) -> None:
    assert list(orjson.loads(orjson.dumps(as_dict(frame))).items()) == items


@pytest.mark.parametrize(("frame", "items"), SERVER_CASES, ids=lambda v: type(v).__name__)
def test_an_object_built_from_fields_is_the_frames(
    frame: object, items: list[tuple[str, object]]
) -> None:
    fields = {f.name: getattr(frame, f.name) for f in attrs.fields(type(frame)) if f.init}
    built = object_builder(type(frame))(**fields)  # type: ignore[arg-type]
    assert list(built.items()) == list(as_dict(frame).items())  # type: ignore[arg-type]
    assert encode_object(built) == encode(frame)  # type: ignore[arg-type]
    # Fields left at their defaults are left out alike.
    required = {
        f.name: fields[f.name]
        for f in attrs.fields(type(frame))
        if f.init and f.default is attrs.NOTHING
    }
    bare = type(frame)(**required)
    assert object_builder(type(frame))(**required) == as_dict(bare)  # type: ignore[arg-type]


def test_stream_frames_are_the_contract_ones_and_carry_a_cursor() -> None:
    assert {wire_type(cls) for cls in STREAM_FRAMES} == {
        "message",
        "group_message",
        "message_edited",
        "message_deleted",
        "reaction",
        "read_receipt",
        "group_read",
        "status",
    }
    assert all("cursor" in attrs.fields_dict(cls) for cls in STREAM_FRAMES)
    assert set(STREAM_FRAMES) <= set(SERVER_FRAMES)


def test_encode_keeps_non_ascii_text_intact() -> None:
    frame = Ack(1, "pending", "clé-🙂")
    assert orjson.loads(encode(frame))["client_id"] == "clé-🙂"
    assert "clé-🙂".encode() in encode(frame)


CLIENT_CASES = [
    (
        {"type": "message", "recipient_id": 2, "message": "hi"},
        SendDirect(recipient_id=2, message="hi"),
    ),
    (
        {"type": "message", "recipient_id": 2, "image_url": "/media/a.png", "client_id": "c"},
        SendDirect(recipient_id=2, image_url="/media/a.png", client_id="c"),
    ),
    (
        {"type": "group_message", "group_id": 3, "message": "hello", "image_url": None},
        SendGroup(group_id=3, message="hello"),
    ),
    (
        {"type": "group_message", "group_id": 3, "message": "x", "client_id": "g" * 128},
        SendGroup(group_id=3, message="x", client_id="g" * 128),
    ),
    ({"type": "read", "message_id": 7}, ReadDirect(message_id=7)),
    ({"type": "group_read", "group_id": 3, "message_id": 9}, ReadGroup(group_id=3, message_id=9)),
    ({"type": "presence", "user_ids": [4, 2, 4, 9, 2]}, PresenceQuery(user_ids=(4, 2, 9))),
    ({"type": "presence", "user_ids": []}, PresenceQuery(user_ids=())),
    ({"type": "ping"}, Ping()),
    # Unknown extra fields are ignored: newer clients may send more.
    ({"type": "ping", "sent_at": 123, "nested": {"a": [1]}}, Ping()),
    ({"type": "read", "message_id": 2**63 - 1, "extra": None}, ReadDirect(message_id=2**63 - 1)),
    # v2: replies.
    (
        {"type": "message", "recipient_id": 2, "message": "re", "reply_to": 7},
        SendDirect(recipient_id=2, message="re", reply_to=7),
    ),
    (
        {"type": "group_message", "group_id": 3, "message": "re", "reply_to": None},
        SendGroup(group_id=3, message="re"),
    ),
    (
        {"type": "group_message", "group_id": 3, "image_url": "/m/x", "reply_to": 2**63 - 1},
        SendGroup(group_id=3, image_url="/m/x", reply_to=2**63 - 1),
    ),
    # v2: edit, delete, react, typing.
    ({"type": "edit", "message_id": 7, "message": "fixed"}, Edit(message_id=7, message="fixed")),
    (
        {"type": "edit", "message_id": 9, "group_id": 3, "message": "x", "client_id": "e"},
        Edit(message_id=9, message="x", group_id=3, client_id="e"),
    ),
    # The text rules are the engine's, after its permission check: not applied here.
    ({"type": "edit", "message_id": 7, "message": ""}, Edit(message_id=7, message="")),
    ({"type": "edit", "message_id": 7, "message": " \t"}, Edit(message_id=7, message=" \t")),
    (
        {"type": "edit", "message_id": 7, "message": "x" * 4001},
        Edit(message_id=7, message="x" * 4001),
    ),
    ({"type": "delete", "message_id": 7}, Delete(message_id=7)),
    (
        {"type": "delete", "message_id": 9, "group_id": 3, "client_id": "d"},
        Delete(message_id=9, group_id=3, client_id="d"),
    ),
    ({"type": "react", "message_id": 7, "emoji": "👍"}, React(message_id=7, emoji="👍")),
    (
        {"type": "react", "message_id": 9, "group_id": 3, "emoji": "🎉", "op": "remove"},
        React(message_id=9, emoji="🎉", group_id=3, op="remove"),
    ),
    (
        {"type": "react", "message_id": 7, "emoji": "x", "op": "add", "client_id": "r"},
        React(message_id=7, emoji="x", client_id="r"),
    ),
    # Nor the emoji rule.
    ({"type": "react", "message_id": 7, "emoji": ""}, React(message_id=7, emoji="")),
    ({"type": "react", "message_id": 7, "emoji": "a b"}, React(message_id=7, emoji="a b")),
    ({"type": "typing", "recipient_id": 2}, Typing(recipient_id=2)),
    ({"type": "typing", "recipient_id": 2, "state": "stop"}, Typing(recipient_id=2, state="stop")),
    (
        {"type": "typing", "group_id": 3, "recipient_id": None, "state": "start"},
        Typing(group_id=3),
    ),
]


@pytest.mark.parametrize(("obj", "frame"), CLIENT_CASES)
def test_client_frame_decodes(obj: dict, frame: object) -> None:
    data = orjson.dumps(obj)
    assert decode_client_frame(data) == frame
    assert decode_client_frame(data.decode()) == frame


def test_every_client_frame_class_is_covered() -> None:
    assert {type(frame) for _, frame in CLIENT_CASES} == set(CLIENT_FRAMES)


@pytest.mark.parametrize("frame", [frame for _, frame in CLIENT_CASES])
def test_client_frame_round_trips(frame: object) -> None:
    data = encode(frame)
    assert data.startswith(b'{"type":')
    assert decode_client_frame(data) == frame


def test_wire_types_are_unique_per_direction() -> None:
    for classes in (CLIENT_FRAMES, SERVER_FRAMES):
        names = [wire_type(cls) for cls in classes]
        assert len(names) == len(set(names))


INVALID = errors.INVALID_FRAME
REFUSED = [
    # Not JSON, or not an object.
    (b"", INVALID),
    (b"{", INVALID),
    (b"not json", INVALID),
    (b"\xff\xfe{}", INVALID),
    ('"\ud800"', INVALID),
    (b"[]", INVALID),
    (b'"message"', INVALID),
    (b"42", INVALID),
    (b"null", INVALID),
    (b"[" * 5000, INVALID),
    # The type itself.
    (b"{}", INVALID),
    (b'{"type": null}', INVALID),
    (b'{"type": 1}', INVALID),
    (b'{"type": ["ping"]}', INVALID),
    (b'{"type": "pong"}', errors.UNKNOWN_TYPE),
    (b'{"type": "PING"}', errors.UNKNOWN_TYPE),
    (b'{"type": ""}', errors.UNKNOWN_TYPE),
    # Missing or ill-typed fields.
    (b'{"type": "message", "message": "hi"}', INVALID),
    (b'{"type": "message", "recipient_id": "2", "message": "hi"}', INVALID),
    (b'{"type": "message", "recipient_id": true, "message": "hi"}', INVALID),
    (b'{"type": "message", "recipient_id": 2.0, "message": "hi"}', INVALID),
    (b'{"type": "message", "recipient_id": null, "message": "hi"}', INVALID),
    (b'{"type": "message", "recipient_id": 0, "message": "hi"}', INVALID),
    (b'{"type": "message", "recipient_id": -5, "message": "hi"}', INVALID),
    (b'{"type": "message", "recipient_id": 9223372036854775808, "message": "hi"}', INVALID),
    (b'{"type": "message", "recipient_id": 99999999999999999999999, "message": "hi"}', INVALID),
    (b'{"type": "message", "recipient_id": 2, "message": 5}', INVALID),
    (b'{"type": "message", "recipient_id": 2, "message": ["hi"]}', INVALID),
    (b'{"type": "message", "recipient_id": 2, "message": "hi", "image_url": 1}', INVALID),
    (b'{"type": "message", "recipient_id": 2, "image_url": "' + b"u" * 2049 + b'"}', INVALID),
    (b'{"type": "message", "recipient_id": 2, "message": "hi", "client_id": 7}', INVALID),
    (b'{"type": "message", "recipient_id": 2, "message": "hi", "client_id": ""}', INVALID),
    (b'{"type": "group_message", "message": "hi"}', INVALID),
    (b'{"type": "group_message", "group_id": false, "message": "hi"}', INVALID),
    (b'{"type": "read"}', INVALID),
    (b'{"type": "read", "message_id": "7"}', INVALID),
    (b'{"type": "group_read", "message_id": 7}', INVALID),
    (b'{"type": "group_read", "group_id": 3, "message_id": {}}', INVALID),
    (b'{"type": "presence"}', INVALID),
    (b'{"type": "presence", "user_ids": 3}', INVALID),
    (b'{"type": "presence", "user_ids": "123"}', INVALID),
    (b'{"type": "presence", "user_ids": ""}', INVALID),
    (b'{"type": "presence", "user_ids": {}}', INVALID),
    (b'{"type": "presence", "user_ids": {"1": 2}}', INVALID),
    (b'{"type": "presence", "user_ids": [1, "2"]}', INVALID),
    (b'{"type": "presence", "user_ids": [1, true]}', INVALID),
    (b'{"type": "presence", "user_ids": [1, 0]}', INVALID),
    (orjson.dumps({"type": "presence", "user_ids": list(range(1, 1002))}), INVALID),
    # v2: reply_to.
    (b'{"type": "message", "recipient_id": 2, "message": "hi", "reply_to": "7"}', INVALID),
    (b'{"type": "message", "recipient_id": 2, "message": "hi", "reply_to": true}', INVALID),
    (b'{"type": "message", "recipient_id": 2, "message": "hi", "reply_to": 7.0}', INVALID),
    (b'{"type": "message", "recipient_id": 2, "message": "hi", "reply_to": [7]}', INVALID),
    (b'{"type": "message", "recipient_id": 2, "message": "hi", "reply_to": 0}', INVALID),
    (b'{"type": "group_message", "group_id": 3, "message": "hi", "reply_to": -1}', INVALID),
    (
        orjson.dumps({"type": "group_message", "group_id": 3, "message": "x", "reply_to": 2**63}),
        INVALID,
    ),
    # v2: edit.
    (b'{"type": "edit", "message": "x"}', INVALID),
    (b'{"type": "edit", "message_id": 7}', INVALID),
    (b'{"type": "edit", "message_id": 7, "message": null}', INVALID),
    (b'{"type": "edit", "message_id": 7, "message": 5}', INVALID),
    (b'{"type": "edit", "message_id": 7, "message": ["x"]}', INVALID),
    (b'{"type": "edit", "message_id": "7", "message": "x"}', INVALID),
    (b'{"type": "edit", "message_id": 0, "message": "x"}', INVALID),
    (b'{"type": "edit", "message_id": 7, "group_id": "3", "message": "x"}', INVALID),
    (b'{"type": "edit", "message_id": 7, "group_id": false, "message": "x"}', INVALID),
    (b'{"type": "edit", "message_id": 7, "group_id": 0, "message": "x"}', INVALID),
    (b'{"type": "edit", "message_id": 7, "message": "x", "client_id": 1}', INVALID),
    # v2: delete.
    (b'{"type": "delete"}', INVALID),
    (b'{"type": "delete", "message_id": null}', INVALID),
    (b'{"type": "delete", "message_id": true}', INVALID),
    (b'{"type": "delete", "message_id": 7, "group_id": 1.5}', INVALID),
    (b'{"type": "delete", "message_id": 7, "client_id": ""}', INVALID),
    # v2: react.
    (b'{"type": "react", "message_id": 7}', INVALID),
    (b'{"type": "react", "emoji": "x"}', INVALID),
    (b'{"type": "react", "message_id": 7, "emoji": null}', INVALID),
    (b'{"type": "react", "message_id": 7, "emoji": 128077}', INVALID),
    (b'{"type": "react", "message_id": 7, "emoji": ["x"]}', INVALID),
    (b'{"type": "react", "message_id": 7, "emoji": "x", "op": "ADD"}', INVALID),
    (b'{"type": "react", "message_id": 7, "emoji": "x", "op": "toggle"}', INVALID),
    (b'{"type": "react", "message_id": 7, "emoji": "x", "op": ""}', INVALID),
    (b'{"type": "react", "message_id": 7, "emoji": "x", "op": null}', INVALID),
    (b'{"type": "react", "message_id": 7, "emoji": "x", "op": 1}', INVALID),
    (b'{"type": "react", "message_id": 7, "emoji": "x", "op": ["add"]}', INVALID),
    (b'{"type": "react", "message_id": 7, "emoji": "x", "op": {"add": 1}}', INVALID),
    (b'{"type": "react", "message_id": 7, "emoji": "x", "op": "add\\u0000"}', INVALID),
    (b'{"type": "react", "message_id": 7, "emoji": "x", "group_id": "3"}', INVALID),
    # v2: typing.
    (b'{"type": "typing"}', INVALID),
    (b'{"type": "typing", "state": "start"}', INVALID),
    (b'{"type": "typing", "recipient_id": null, "group_id": null}', INVALID),
    (b'{"type": "typing", "recipient_id": 2, "group_id": 3}', INVALID),
    (b'{"type": "typing", "recipient_id": 2, "group_id": 3, "state": "stop"}', INVALID),
    (b'{"type": "typing", "recipient_id": "2"}', INVALID),
    (b'{"type": "typing", "recipient_id": true}', INVALID),
    (b'{"type": "typing", "group_id": 0}', INVALID),
    (b'{"type": "typing", "group_id": 3, "state": "typing"}', INVALID),
    (b'{"type": "typing", "group_id": 3, "state": "Stop"}', INVALID),
    (b'{"type": "typing", "group_id": 3, "state": null}', INVALID),
    (b'{"type": "typing", "group_id": 3, "state": 0}', INVALID),
    (b'{"type": "typing", "group_id": 3, "state": ["start"]}', INVALID),
    # Content rules.
    (b'{"type": "message", "recipient_id": 2}', errors.EMPTY_MESSAGE),
    (b'{"type": "message", "recipient_id": 2, "message": ""}', errors.EMPTY_MESSAGE),
    (b'{"type": "message", "recipient_id": 2, "message": " \\n\\t "}', errors.EMPTY_MESSAGE),
    (
        b'{"type": "message", "recipient_id": 2, "message": null, "image_url": ""}',
        errors.EMPTY_MESSAGE,
    ),
    (b'{"type": "group_message", "group_id": 3, "message": "  "}', errors.EMPTY_MESSAGE),
    (
        orjson.dumps({"type": "message", "recipient_id": 2, "message": "x" * 4001}),
        errors.MESSAGE_TOO_LONG,
    ),
    (
        orjson.dumps({"type": "group_message", "group_id": 3, "message": "é" * 4001}),
        errors.MESSAGE_TOO_LONG,
    ),
]


@pytest.mark.parametrize(("data", "reason"), REFUSED)
def test_refused_frames_get_their_reason(data: str | bytes, reason: str) -> None:
    with pytest.raises(ProtocolError) as info:
        decode_client_frame(data)
    assert info.value.reason == reason
    assert info.value.client_id is None


@pytest.mark.parametrize(
    ("obj", "reason"),
    [
        ({"type": "bogus"}, errors.UNKNOWN_TYPE),
        ({"type": 5}, INVALID),
        ({"type": "message", "recipient_id": "2", "message": "hi"}, INVALID),
        ({"type": "message", "recipient_id": 2, "image_url": "u" * 2049}, INVALID),
        ({"type": "message", "recipient_id": 2, "message": "   "}, errors.EMPTY_MESSAGE),
        ({"type": "group_message", "group_id": 1, "message": "x" * 4001}, errors.MESSAGE_TOO_LONG),
        ({"type": "message", "recipient_id": 2, "message": "hi", "reply_to": "1"}, INVALID),
        ({"type": "edit", "message_id": 7, "message": 3}, INVALID),
        ({"type": "delete", "message_id": "7"}, INVALID),
        ({"type": "react", "message_id": 7, "emoji": "x", "op": "flip"}, INVALID),
    ],
)
def test_refusal_echoes_a_valid_client_id(obj: dict, reason: str) -> None:
    with pytest.raises(ProtocolError) as info:
        decode_client_frame(orjson.dumps({**obj, "client_id": "abc"}))
    assert (info.value.reason, info.value.client_id) == (reason, "abc")


@pytest.mark.parametrize(
    "obj",
    [
        {"type": "message", "recipient_id": 2, "message": "hi\u0000there"},
        {"type": "message", "recipient_id": 2, "message": "\u0000"},
        {"type": "message", "recipient_id": 2, "message": "hi", "image_url": "/media/\u0000"},
        {"type": "group_message", "group_id": 3, "message": "hi\u0000"},
        {"type": "group_message", "group_id": 3, "image_url": "\u0000/media/x.png"},
        {"type": "edit", "message_id": 7, "message": "fixed\u0000"},
        {"type": "edit", "message_id": 7, "group_id": 3, "message": "\u0000"},
        {"type": "react", "message_id": 7, "emoji": "\u0000"},
        {"type": "react", "message_id": 7, "emoji": "👍\u0000", "group_id": 3},
    ],
)
def test_nul_in_a_text_field_is_an_invalid_frame(obj: dict) -> None:
    with pytest.raises(ProtocolError) as info:
        decode_client_frame(orjson.dumps({**obj, "client_id": "abc"}))
    assert (info.value.reason, info.value.client_id) == (INVALID, "abc")


def test_nul_in_the_client_id_is_an_invalid_frame_and_not_echoed() -> None:
    obj = {"type": "message", "recipient_id": 2, "message": "hi", "client_id": "a\u0000b"}
    with pytest.raises(ProtocolError) as info:
        decode_client_frame(orjson.dumps(obj))
    assert (info.value.reason, info.value.client_id) == (INVALID, None)


@pytest.mark.parametrize("client_id", ["", "c" * 129, 12, None, ["abc"], "\u0000"])
def test_refusal_never_echoes_an_invalid_client_id(client_id: object) -> None:
    obj = {"type": "message", "recipient_id": 2, "client_id": client_id}
    with pytest.raises(ProtocolError) as info:
        decode_client_frame(orjson.dumps(obj))
    assert info.value.client_id is None


def test_text_limit_counts_characters_and_is_configurable() -> None:
    at_limit = {"type": "message", "recipient_id": 2, "message": "🙂" * DEFAULT_MAX_TEXT_LENGTH}
    assert decode_client_frame(orjson.dumps(at_limit)).message == at_limit["message"]

    short = orjson.dumps({"type": "message", "recipient_id": 2, "message": "hello"})
    assert decode_client_frame(short, max_text_length=5).message == "hello"
    with pytest.raises(ProtocolError) as info:
        decode_client_frame(short, max_text_length=4)
    assert info.value.reason == errors.MESSAGE_TOO_LONG


def test_image_alone_is_content_and_text_is_kept_verbatim() -> None:
    frame = decode_client_frame(
        b'{"type": "message", "recipient_id": 2, "message": "  ", "image_url": "/media/a.png"}'
    )
    assert frame == SendDirect(recipient_id=2, message="  ", image_url="/media/a.png")


@pytest.mark.parametrize("data", [b"nope", b"[1]", b"{}", b'{"type": 3}'])
def test_decode_server_frame_refuses_what_is_not_a_frame(data: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        decode_server_frame(data)
    assert info.value.reason == errors.INVALID_FRAME


def test_reason_strings_are_the_contract_ones() -> None:
    assert errors.ALL_REASONS == (
        "rate limit exceeded",
        "empty message",
        "user is not a member of the group",
        "unknown_type",
        "invalid frame",
        "recipient not found",
        "message too long",
        "storage unavailable",
        "not allowed",
        "group not found",
        "invalid image_url",
        "server busy",
        "invalid reply_to",
        "invalid reaction",
    )


def test_protocol_error_carries_reason_and_client_id() -> None:
    err = ProtocolError(errors.NOT_ALLOWED, "c-1")
    assert (err.reason, err.client_id, str(err)) == ("not allowed", "c-1", "not allowed")
    assert ProtocolError(errors.RATE_LIMITED).client_id is None


def test_client_frames_refuse_invalid_values_at_construction() -> None:
    with pytest.raises(ValueError):
        SendDirect(recipient_id=0, message="hi")
    with pytest.raises(ValueError):
        SendGroup(group_id=1, message="hi", client_id="")
    with pytest.raises(ValueError):
        PresenceQuery(user_ids=range(1, 1002))
    assert PresenceQuery(user_ids=[3, 3, 1]).user_ids == (3, 1)


@pytest.mark.parametrize(
    "build",
    [
        lambda: SendDirect(recipient_id=2, message="hi", reply_to=0),
        lambda: SendGroup(group_id=3, message="hi", reply_to=2**63),
        lambda: Edit(message_id=0, message="x"),
        lambda: Edit(message_id=7, message="x", group_id=-1),
        lambda: Edit(message_id=7, message="x", client_id="c" * 129),
        lambda: Delete(message_id=7, group_id=0),
        lambda: React(message_id=7, emoji="x", group_id=0),
        lambda: React(message_id=7, emoji="x", client_id=""),
        lambda: Typing(),
        lambda: Typing(recipient_id=2, group_id=3),
        lambda: Typing(recipient_id=0),
        lambda: Typing(group_id=2**63),
    ],
)
def test_v2_client_frames_refuse_invalid_values_at_construction(build) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError):
        build()


def test_v2_client_frames_encode_without_their_unset_optional_keys() -> None:
    assert orjson.loads(encode(SendDirect(recipient_id=2, message="hi"))) == {
        "type": "message",
        "recipient_id": 2,
        "message": "hi",
        "image_url": None,
    }
    assert list(orjson.loads(encode(Typing(group_id=3)))) == ["type", "group_id", "state"]
    assert list(orjson.loads(encode(Typing(recipient_id=2)))) == ["type", "recipient_id", "state"]
    assert list(orjson.loads(encode(React(message_id=1, emoji="x")))) == [
        "type",
        "message_id",
        "emoji",
        "op",
    ]
    assert list(orjson.loads(encode(Edit(message_id=1, message="x", group_id=3)))) == [
        "type",
        "message_id",
        "message",
        "group_id",
    ]
