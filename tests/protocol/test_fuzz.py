"""Whatever a client sends, decoding yields a frame or a ProtocolError, never anything else."""

from __future__ import annotations

import json
from typing import get_args

import attrs
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hubbub.protocol.codec import decode_client_frame, encode
from hubbub.protocol.errors import (
    EMPTY_MESSAGE,
    INVALID_FRAME,
    MESSAGE_TOO_LONG,
    UNKNOWN_TYPE,
    ProtocolError,
)
from hubbub.protocol.frames import (
    CLIENT_FRAMES,
    INT64_MAX,
    MAX_CLIENT_ID_LENGTH,
    SERVER_FRAMES,
    Delete,
    Edit,
    Ping,
    PresenceQuery,
    React,
    ReactionSummary,
    ReadDirect,
    ReadGroup,
    SendDirect,
    SendGroup,
    Typing,
    is_omitted_if_none,
    is_valid_client_id,
    wire_type,
)

DECODE_REASONS = {INVALID_FRAME, UNKNOWN_TYPE, MESSAGE_TOO_LONG, EMPTY_MESSAGE}
OUTCOMES = (ProtocolError, *CLIENT_FRAMES)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TYPE_NAMES = sorted({wire_type(cls) for cls in CLIENT_FRAMES + SERVER_FRAMES})
FIELD_NAMES = sorted(
    {field.name for cls in CLIENT_FRAMES + SERVER_FRAMES for field in attrs.fields(cls)}
)

# Text including lone surrogates, which no UTF-8 encoder accepts.
any_text = st.text(st.characters(codec=None, exclude_categories=()))

json_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**65), max_value=2**65)
    | st.floats()
    | st.text()
)
json_values = st.recursive(
    json_leaves,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=20,
)
field_values = st.none() | json_values


ids_near_bounds = st.integers(min_value=-1, max_value=10) | st.sampled_from(
    [INT64_MAX, INT64_MAX + 1, 2**64 - 1]
)


def plausible(name: str) -> st.SearchStrategy[object]:
    """Values that often pass the rules of field ``name``, so that random objects also
    reach the content checks and the accepted path, not only "invalid frame"."""
    if name == "user_ids":
        return st.lists(ids_near_bounds, max_size=5)
    if name == "client_id":
        return st.text(max_size=MAX_CLIENT_ID_LENGTH + 2)
    if name.endswith("_id") or name == "reply_to":
        return ids_near_bounds
    if name == "op":
        return st.sampled_from(["add", "remove", "ADD", "", "add\x00"]) | st.text(max_size=8)
    if name == "state":
        return st.sampled_from(["start", "stop", "Start", " stop"]) | st.text(max_size=8)
    if name == "emoji":
        return st.text(max_size=40)
    return st.text(max_size=60)


def client_shaped(cls: type) -> st.SearchStrategy[dict]:
    """Objects with ``cls``'s type and its fields (the optional ones maybe), each either a
    plausible value or any JSON value, with even odds."""
    required, optional = {"type": st.just(wire_type(cls))}, {}
    for field in attrs.fields(cls):
        if field.init:
            values = plausible(field.name) | st.deferred(lambda: field_values)
            has_default = field.default is not attrs.NOTHING
            (optional if has_default else required)[field.name] = values
    return st.fixed_dictionaries(required, optional=optional)


random_shaped = st.builds(
    lambda kind, fields: {**fields, "type": kind} if kind is not None else fields,
    st.none() | st.sampled_from(TYPE_NAMES) | st.text() | json_values,
    st.dictionaries(st.sampled_from(FIELD_NAMES) | st.text(), field_values, max_size=6),
)
frame_like = st.builds(
    lambda extra, shaped: {**extra, **shaped},
    st.dictionaries(st.text(), json_values, max_size=2),
    st.sampled_from(CLIENT_FRAMES).flatmap(client_shaped) | random_shaped,
)


def decode_or_error(data: str | bytes, **kwargs: int) -> object:
    """The decoded frame, or the ProtocolError; any other exception fails the test."""
    try:
        return decode_client_frame(data, **kwargs)
    except ProtocolError as exc:
        assert exc.reason in DECODE_REASONS
        return exc


def text_fields(frame: object) -> dict[str, str]:
    """The frame's fields that hold text, by name."""
    return {
        field.name: value
        for field in attrs.fields(type(frame))
        if field.init and isinstance(value := getattr(frame, field.name), str)
    }


def is_json(text: str) -> bool:
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    return True


def comparable(outcome: object) -> object:
    if isinstance(outcome, ProtocolError):
        return (outcome.reason, outcome.client_id)
    return outcome


@FUZZ
@given(any_text)
def test_arbitrary_text(data: str) -> None:
    assert isinstance(decode_or_error(data), OUTCOMES)


@FUZZ
@given(st.binary())
def test_arbitrary_bytes(data: bytes) -> None:
    assert isinstance(decode_or_error(data), OUTCOMES)


@FUZZ
@given(json_values)
def test_arbitrary_json(value: object) -> None:
    # The stdlib writes what orjson refuses (huge ints, NaN): those must be refused cleanly.
    outcome = decode_or_error(json.dumps(value))
    assert isinstance(outcome, OUTCOMES)
    if not isinstance(value, dict):
        assert isinstance(outcome, ProtocolError)
        assert outcome.reason == INVALID_FRAME


@FUZZ
@given(frame_like, st.integers(min_value=0, max_value=50))
def test_frame_like_objects(obj: dict, max_text_length: int) -> None:
    text = json.dumps(obj)
    outcome = decode_or_error(text, max_text_length=max_text_length)
    again = decode_or_error(text.encode(), max_text_length=max_text_length)
    assert comparable(again) == comparable(outcome)
    if isinstance(outcome, ProtocolError):
        # A valid client_id is echoed whenever the text was JSON at all.
        client_id = obj.get("client_id")
        if not is_json(text) or not is_valid_client_id(client_id):
            client_id = None
        assert outcome.client_id == client_id
    else:
        # What was accepted survives a trip through the encoder unchanged, and has no NUL.
        assert decode_client_frame(encode(outcome), max_text_length=max_text_length) == outcome
        assert not any("\x00" in text for text in text_fields(outcome).values())


ids = st.integers(min_value=1, max_value=INT64_MAX)
no_nul = st.characters(codec="utf-8", exclude_characters="\x00")
client_ids = st.none() | st.text(no_nul, min_size=1, max_size=MAX_CLIENT_ID_LENGTH)
texts = st.none() | st.text(no_nul, max_size=200)
urls = st.none() | st.text(no_nul, max_size=100)


def has_content(frame: SendDirect | SendGroup) -> bool:
    return bool((frame.message or "").strip() or frame.image_url)


optional_ids = st.none() | ids
any_texts = st.text(no_nul, max_size=200)  # edit text and emoji: no rule but "no NUL" here
valid_client_frames = st.one_of(
    st.builds(SendDirect, ids, texts, urls, client_ids, optional_ids).filter(has_content),
    st.builds(SendGroup, ids, texts, urls, client_ids, optional_ids).filter(has_content),
    st.builds(ReadDirect, ids),
    st.builds(ReadGroup, ids, ids),
    st.builds(PresenceQuery, st.lists(ids, max_size=20)),
    st.just(Ping()),
    st.builds(Edit, ids, any_texts, optional_ids, client_ids),
    st.builds(Delete, ids, optional_ids, client_ids),
    st.builds(React, ids, any_texts, optional_ids, st.sampled_from(["add", "remove"]), client_ids),
    st.builds(Typing, recipient_id=ids, state=st.sampled_from(["start", "stop"])),
    st.builds(Typing, group_id=ids, state=st.sampled_from(["start", "stop"])),
)


def test_valid_client_frames_cover_every_client_frame() -> None:
    @given(valid_client_frames)
    @settings(max_examples=500, deadline=None)
    def collect(frame: object) -> None:
        seen.add(type(frame))

    seen: set[type] = set()
    collect()
    assert seen == set(CLIENT_FRAMES)


@FUZZ
@given(valid_client_frames)
def test_valid_client_frames_round_trip(frame: object) -> None:
    data = encode(frame)
    assert data.startswith(b'{"type":')
    assert decode_client_frame(data) == frame


@FUZZ
@given(valid_client_frames, st.data())
def test_nul_in_any_text_field_is_an_invalid_frame(frame: object, data: st.DataObject) -> None:
    fields = text_fields(frame)
    if not fields:  # no text to poison: the frame must still decode
        assert decode_client_frame(encode(frame)) == frame
        return
    name = data.draw(st.sampled_from(sorted(fields)))
    at = data.draw(st.integers(min_value=0, max_value=len(fields[name])))
    obj = orjson.loads(encode(frame))
    obj[name] = fields[name][:at] + "\x00" + fields[name][at:]
    outcome = decode_or_error(orjson.dumps(obj))
    assert isinstance(outcome, ProtocolError)
    assert outcome.reason == INVALID_FRAME
    # The client_id is echoed only when it is not itself the poisoned field.
    assert outcome.client_id == (None if name == "client_id" else obj.get("client_id"))


@FUZZ
@given(frame_like)
def test_v2_decoding_applies_no_content_rule_to_edits_and_reactions(obj: dict) -> None:
    """An edit's text and a reaction's emoji get type checks only: whatever the codec
    refuses them for is an invalid frame, never a rule the engine applies after its
    permission check."""
    if obj.get("type") not in ("edit", "react", "delete", "typing"):
        return
    outcome = decode_or_error(json.dumps(obj), max_text_length=0)
    if isinstance(outcome, ProtocolError):
        assert outcome.reason in (INVALID_FRAME, UNKNOWN_TYPE)


def for_field_type(field_type: object) -> st.SearchStrategy[object]:
    """Values of a server frame field's type; ints are int64 as everywhere on the wire."""
    int64 = st.integers(min_value=-(2**63), max_value=INT64_MAX)
    if field_type is int:
        return int64
    if int in get_args(field_type):  # int | None
        return st.none() | int64
    if field_type == tuple[ReactionSummary, ...]:
        reaction = st.fixed_dictionaries(
            {"emoji": st.text(max_size=32), "user_ids": st.lists(int64, max_size=4)}
        )
        return st.lists(reaction, max_size=3).map(tuple)
    return st.from_type(field_type)  # type: ignore[arg-type]


def server_frames() -> st.SearchStrategy[object]:
    """Any server frame, its fields filled by type (optional ones often None)."""
    choices = []
    for cls in SERVER_FRAMES:
        attrs.resolve_types(cls)
        fields = {f.name: for_field_type(f.type) for f in attrs.fields(cls) if f.init}
        choices.append(st.builds(cls, **fields))
    return st.one_of(choices)


@FUZZ
@given(server_frames())
def test_server_frames_encode_every_field_in_order_leaving_out_only_unset_optional_ones(
    frame: object,
) -> None:
    expected = [
        (field.name, getattr(frame, field.name))
        for field in attrs.fields(type(frame))
        if not (is_omitted_if_none(field) and getattr(frame, field.name) is None)
    ]
    encoded = orjson.loads(encode(frame))  # type: ignore[arg-type]
    assert list(encoded) == [name for name, _ in expected]
    assert list(encoded.values()) == [orjson.loads(orjson.dumps(value)) for _, value in expected]
    assert encoded["type"] == wire_type(type(frame))
