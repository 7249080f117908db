"""The codec against the wire contract: each frame's exact JSON shape, each refusal's reason."""

from __future__ import annotations

import orjson
import pytest

from hubbub.protocol import errors
from hubbub.protocol.codec import (
    DEFAULT_MAX_TEXT_LENGTH,
    decode_client_frame,
    decode_server_frame,
    encode,
)
from hubbub.protocol.errors import ProtocolError
from hubbub.protocol.frames import (
    CLIENT_FRAMES,
    SERVER_FRAMES,
    Ack,
    ErrorOut,
    GroupMessageOut,
    GroupReadOut,
    MessageOut,
    Ping,
    Pong,
    PresenceOut,
    PresenceQuery,
    ReadDirect,
    ReadGroup,
    ReadReceipt,
    SendDirect,
    SendGroup,
    StatusOut,
    wire_type,
)

TS = "2025-01-02T03:04:05.123456+00:00"

# Each server frame with the (key, value) pairs docs/contract.md gives it, in wire order.
SERVER_CASES = [
    (
        MessageOut(7, 1, "alice", 2, "bob", "hi", None, TS, "delivered"),
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
        ],
    ),
    (
        MessageOut(7, 1, "alice", 2, "bob", None, "/media/a.png", TS, "pending", "c-1"),
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
        GroupMessageOut(3, "team", 9, 1, "alice", "hello", None, TS, "delivered"),
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
        ],
    ),
    (
        GroupMessageOut(3, "team", 9, 1, "alice", "hello", None, TS, "delivered", "g-1"),
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
            ("client_id", "g-1"),
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
        GroupReadOut(3, 2, 9),
        [("type", "group_read"), ("group_id", 3), ("user_id", 2), ("message_id", 9)],
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
    (Pong(), [("type", "pong")]),
    (ErrorOut("rate limit exceeded"), [("type", "error"), ("reason", "rate limit exceeded")]),
    (
        ErrorOut("empty message", "c-9"),
        [("type", "error"), ("reason", "empty message"), ("client_id", "c-9")],
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
