"""Text to frames and frames to text: one cattrs converter, orjson underneath.

Decoding is strict where cattrs is lenient by default: an id must be a JSON integer
(not ``true``, not ``1.0``, not ``"1"``), a string must be a JSON string without NUL
(U+0000, which PostgreSQL cannot store and SQLite would), a list must be a JSON array.
Everything a client can send either becomes a frame or raises ``ProtocolError``; nothing
else escapes, whatever the bytes.

Encoding is on the hot path (one call per delivered message). The codec generates one
plain dict-building function per frame class from its attrs fields (``_make_encoder``: a
dict literal, plus an ``if`` per field left out while None); it costs the same as a
hand-written ``orjson.dumps({...})`` (about 0.5 µs for a ``MessageOut``), so the frame
classes stay the only definition of the wire shape.
"""

from __future__ import annotations

import linecache
from collections.abc import Callable
from typing import Any, Literal, get_args, get_origin

import attrs
import orjson
from cattrs.fns import identity
from cattrs.preconf.orjson import make_converter

from hubbub.protocol.errors import (
    EMPTY_MESSAGE,
    INVALID_FRAME,
    UNKNOWN_TYPE,
    ProtocolError,
)
from hubbub.protocol.frames import (
    CLIENT_FRAMES,
    SERVER_FRAMES,
    ClientFrame,
    ReactionSummary,
    SendDirect,
    SendGroup,
    ServerFrame,
    is_omitted_if_none,
    is_valid_client_id,
    wire_type,
)
from hubbub.protocol.rules import text_problem

DEFAULT_MAX_TEXT_LENGTH = 4000

# Without detailed validation cattrs raises the hook's or the validator's own exception
# (KeyError, TypeError, ValueError) instead of building an ExceptionGroup: cheaper, and
# the client only ever learns "invalid frame" anyway.
converter = make_converter(detailed_validation=False)


def _strict_int(value: Any, _type: type) -> int:
    if type(value) is not int:
        raise TypeError(f"expected a JSON integer, got {value!r}")
    return value


def _strict_str(value: Any, _type: type) -> str:
    if type(value) is not str:
        raise TypeError(f"expected a JSON string, got {value!r}")
    if "\x00" in value:
        raise ValueError("text may not contain NUL (U+0000)")
    return value


def _strict_int_list(value: Any, _type: type) -> tuple[int, ...]:
    if type(value) is not list:
        raise TypeError(f"expected a JSON array, got {value!r}")
    return tuple(_strict_int(item, int) for item in value)


def _strict_literal(value: Any, literal: Any) -> str:
    # cattrs' own Literal hook raises CattrsError, which would escape as not "invalid frame".
    if _strict_str(value, str) not in get_args(literal):
        raise ValueError(f"expected one of {get_args(literal)}, got {value!r}")
    return value


def _strict_optional_int(value: Any, _type: Any) -> int | None:
    return None if value is None else _strict_int(value, int)


def _strict_optional_str(value: Any, _type: Any) -> str | None:
    return None if value is None else _strict_str(value, str)


converter.register_structure_hook(int, _strict_int)
converter.register_structure_hook(str, _strict_str)
# Without these cattrs dispatches each optional field through its generic Optional hook.
converter.register_structure_hook(int | None, _strict_optional_int)
converter.register_structure_hook(str | None, _strict_optional_str)
# Generic aliases and Literal types are not classes, so they are matched by predicate.
converter.register_structure_hook_func(lambda t: t == tuple[int, ...], _strict_int_list)
converter.register_structure_hook_func(lambda t: get_origin(t) is Literal, _strict_literal)


# orjson writes these itself; registering the identity lets cattrs inline these fields
# instead of calling a hook per field (ints, bools and strings it inlines already).
converter.register_unstructure_hook(str | None, identity)
converter.register_unstructure_hook(int | None, identity)
# Reactions are built JSON-shaped already (``views``): a tuple of plain dicts.
converter.register_unstructure_hook_func(lambda t: t == tuple[ReactionSummary, ...], identity)

# Looked up by exact class on the hot path, skipping the converter's dispatch.
_ENCODERS: dict[type, Callable[[Any], dict[str, Any]]] = {}
#: The same objects built from field values, with no frame instance in between.
_OBJECT_BUILDERS: dict[type, Callable[..., dict[str, Any]]] = {}


def _make_encoder(cls: type, *, from_fields: bool = False) -> Callable[..., dict[str, Any]]:
    """Generate the plain function that builds ``cls``'s JSON object, keys in field order.

    ``type`` (an init=False field, the first) comes first. An ``omitted_if_none()`` field
    is set only when not None, in its place: cattrs' own generator moves such fields to the
    end, which would break the documented key order of frames with an optional field in
    the middle (``message_edited``'s ``group_id``). Fields whose converter hook is the
    identity (everything orjson writes itself) are read straight off the instance; any
    other goes through its hook (``tuple[int, ...]`` becomes a list).

    ``from_fields``: the function takes the fields as keyword arguments instead of an
    instance (defaults as the class has them), for hot paths that would build a frame
    only to encode it.
    """
    attrs.resolve_types(cls)
    namespace: dict[str, Any] = {}
    kind = "object" if from_fields else "encode"
    params: list[str] = []
    body = ["    res = {"]
    in_literal = True
    for field in attrs.fields(cls):
        name = field.name
        source = f"instance.{name}"
        if from_fields:
            source = name
            if not field.init:
                namespace[f"_default_{name}"] = field.default
                source = f"_default_{name}"
            elif field.default is attrs.NOTHING:
                params.append(name)
            else:
                namespace[f"_default_{name}"] = field.default
                params.append(f"{name}=_default_{name}")
        hook = converter.get_unstructure_hook(field.type)
        if hook is identity:
            value = source
        else:
            namespace[f"_hook_{name}"] = hook
            value = f"_hook_{name}({source})"
        if is_omitted_if_none(field):
            if in_literal:
                body.append("    }")
                in_literal = False
            body.append(f"    if {source} is not None:")
            body.append(f"        res[{name!r}] = {value}")
        elif in_literal:
            body.append(f"        {name!r}: {value},")
        else:
            body.append(f"    res[{name!r}] = {value}")
    if in_literal:
        body.append("    }")
    body.append("    return res")
    signature = f"*, {', '.join(params)}" if from_fields and params else "instance"
    if from_fields and not params:
        signature = ""
    lines = [f"def {kind}_{cls.__name__}({signature}):", *body]
    source = "\n".join(lines) + "\n"
    filename = f"<hubbub {kind} {cls.__qualname__}>"
    exec(compile(source, filename, "exec"), namespace)
    # Tracebacks and debuggers show the generated source.
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    fn: Callable[..., dict[str, Any]] = namespace[f"{kind}_{cls.__name__}"]
    return fn


def _register_encoder(cls: type) -> None:
    fn = _make_encoder(cls)
    converter.register_unstructure_hook(cls, fn)
    _ENCODERS[cls] = fn
    _OBJECT_BUILDERS[cls] = _make_encoder(cls, from_fields=True)


for _cls in CLIENT_FRAMES + SERVER_FRAMES:
    _register_encoder(_cls)

# Each frame's structure hook, looked up once: the converter's own dispatch per call
# costs about as much as the hook.
_CLIENT_FRAME_BY_TYPE: dict[str, tuple[type[ClientFrame], Callable[[Any, Any], Any]]] = {
    wire_type(c): (c, converter.get_structure_hook(c)) for c in CLIENT_FRAMES
}


def decode_client_frame(
    data: str | bytes, *, max_text_length: int = DEFAULT_MAX_TEXT_LENGTH
) -> ClientFrame:
    """Parse one WebSocket text frame from a client into a client frame.

    Raises ``ProtocolError`` and nothing else, for any input: ``invalid frame`` for bad
    JSON, a non-object, a missing or non-string ``type``, a missing or ill-typed field, or
    NUL (U+0000) in any text field;
    ``unknown_type`` for a ``type`` no frame has; ``message too long`` for text over
    ``max_text_length`` characters; ``empty message`` for a message with neither text
    (after stripping) nor an image. The error carries the frame's ``client_id`` whenever
    that field itself was valid. Unknown extra fields are ignored.

    ``edit`` and ``react`` get only the type checks here (an ``op`` or ``state`` outside
    its values, or a ``typing`` naming both or neither of ``recipient_id`` and
    ``group_id``, is an ``invalid frame``): the engine applies ``text_problem`` and
    ``emoji_problem`` after its permission check.
    """
    try:
        raw = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(INVALID_FRAME) from exc
    if type(raw) is not dict:
        raise ProtocolError(INVALID_FRAME)
    client_id = raw.get("client_id")
    if not is_valid_client_id(client_id):
        client_id = None
    name = raw.get("type")
    if type(name) is not str:
        raise ProtocolError(INVALID_FRAME, client_id)
    known = _CLIENT_FRAME_BY_TYPE.get(name)
    if known is None:
        raise ProtocolError(UNKNOWN_TYPE, client_id)
    cls, structure = known
    try:
        frame = structure(raw, cls)
    except (KeyError, TypeError, ValueError) as exc:
        raise ProtocolError(INVALID_FRAME, client_id) from exc
    if isinstance(frame, SendDirect | SendGroup):
        _check_content(frame, max_text_length)
    return frame


def _check_content(frame: SendDirect | SendGroup, max_text_length: int) -> None:
    # No text is empty text; an image makes empty text fine, never too long text.
    problem = text_problem(frame.message or "", max_text_length)
    if problem is not None and not (problem == EMPTY_MESSAGE and frame.image_url):
        raise ProtocolError(problem, frame.client_id)


def encode(frame: ServerFrame | ClientFrame) -> bytes:
    """The JSON text of a frame as UTF-8 bytes, ``type`` first, ``client_id`` (and every
    other ``omitted_if_none()`` field) only if set.

    Meant for server frames; client frames encode the same way (the Python client uses
    it), and ``decode_client_frame(encode(f)) == f`` for every valid client frame.
    """
    return encode_object(_ENCODERS[type(frame)](frame))


def object_builder(cls: type[ServerFrame]) -> Callable[..., dict[str, Any]]:
    """The function that builds the JSON object of a ``cls`` frame from its fields as
    keyword arguments (``builder(**fields) == as_dict(cls(**fields))``) without building
    the frame: for the hot paths (a frozen frame's construction costs more than its
    encoding). ``encode_object`` turns the object into the frame's bytes."""
    return _OBJECT_BUILDERS[cls]


def encode_object(obj: dict[str, Any]) -> bytes:
    """The bytes of a frame's JSON object (from ``as_dict`` or an ``object_builder``):
    what ``encode`` gives for the frame itself."""
    # orjson's result keeps the ~4 KiB buffer it wrote into; frames wait in queues and
    # mailboxes, so a right-sized copy (about 0.2 us) saves ~4 KiB per frame held.
    return bytes(memoryview(orjson.dumps(obj)))


def as_dict(frame: ServerFrame) -> dict[str, Any]:
    """The plain dict ``encode`` would serialise (``type`` included): for HTTP answers that
    embed frame-shaped objects, such as message history."""
    return _ENCODERS[type(frame)](frame)


def decode_server_frame(data: str | bytes) -> dict[str, Any]:
    """Parse a frame the server sent into a plain dict, for clients and tests.

    Raises ``ProtocolError(INVALID_FRAME)`` unless ``data`` is a JSON object with a
    string ``type``; the other fields are not checked.
    """
    try:
        raw = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(INVALID_FRAME) from exc
    if type(raw) is not dict or type(raw.get("type")) is not str:
        raise ProtocolError(INVALID_FRAME)
    return raw
