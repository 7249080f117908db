"""Whatever a client sends, decoding yields a frame or a ProtocolError, never anything else."""

from __future__ import annotations

import json

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
    Ping,
    PresenceQuery,
    ReadDirect,
    ReadGroup,
    SendDirect,
    SendGroup,
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
    if name.endswith("_id"):
        return ids_near_bounds
    return st.text(max_size=60)


def client_shaped(cls: type) -> st.SearchStrategy[dict]:
    """Objects with ``cls``'s type and its fields (the optional ones maybe), each either a
    plausible value or any JSON value, with even odds."""
    required, optional = {"type": st.just(wire_type(cls))}, {}
    for field in attrs.fields(cls):
        if field.init:
            values = plausible(field.name) | st.deferred(lambda: field_values)
            (optional if field.default is None else required)[field.name] = values
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


valid_client_frames = st.one_of(
    st.builds(SendDirect, ids, texts, urls, client_ids).filter(has_content),
    st.builds(SendGroup, ids, texts, urls, client_ids).filter(has_content),
    st.builds(ReadDirect, ids),
    st.builds(ReadGroup, ids, ids),
    st.builds(PresenceQuery, st.lists(ids, max_size=20)),
    st.just(Ping()),
)


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
