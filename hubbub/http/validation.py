"""Input checks at the HTTP boundary. Each failure is an ``ApiError`` (422 unless noted).

Every route reads its input through these functions, so each rule holds for every route:

- a body is at most ``BODY_LIMIT`` bytes (413; uploads stream under their own limit), is
  UTF-8, and a JSON body is an object nested at most 1024 levels deep;
- no text anywhere in a body or a query argument contains NUL (U+0000), which PostgreSQL
  cannot store;
- an integer in a path, a query or a JSON body is ASCII decimal (``int()`` would also take
  ``"١٢"``, ``" 5"`` and ``"5_0"``) and within the 64-bit range both backends store.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl

import orjson
from quart import request
from werkzeug.routing import BaseConverter, ValidationError

from hubbub.auth.usernames import USERNAME
from hubbub.http.errors import ApiError

#: Largest body of any request but an upload: far above any real JSON or form input.
BODY_LIMIT = 64 * 1024
#: Ids are positive and fit PostgreSQL's BIGINT (and SQLite's INTEGER).
MAX_ID = 2**63 - 1
NUL = "\x00"

# An address's local part is a dot-atom of RFC 5322's printable ASCII (no quoted strings,
# no '<', '>' or '"', nothing outside ASCII); the domain is dot-separated LDH labels
# ending in a top-level label of at least two letters (punycode for non-ASCII domains).
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
EMAIL = re.compile(
    rf"(?=[^@]{{1,64}}@){_ATOM}(?:\.{_ATOM})*@(?:{_LABEL}\.)+(?:[A-Za-z]{{2,63}}|xn--[A-Za-z0-9-]{{1,59}})"
)
EMAIL_MAX = 254
PASSWORD_MIN, PASSWORD_MAX = 8, 256
_DIGITS = re.compile(r"[0-9]{1,32}")


# -- text ------------------------------------------------------------------------


def require_text(body: dict[str, Any], field: str) -> str:
    value = body.get(field)
    if not isinstance(value, str) or not value:
        raise ApiError(422, f"{field} is required and must be a non-empty string")
    return value


def check_username(value: str) -> str:
    if not USERNAME.fullmatch(value):
        raise ApiError(422, "username must be 1-32 characters of letters, digits, '_', '.', '-'")
    return value


def check_email(value: str) -> str:
    """An ordinary address (``name.tag+x@mail.example.org``); refuses quoted local parts,
    angle brackets, non-ASCII and control characters."""
    if len(value) > EMAIL_MAX or not EMAIL.fullmatch(value):
        raise ApiError(422, "email is not a valid address")
    return value


def check_password(value: str) -> str:
    if not PASSWORD_MIN <= len(value) <= PASSWORD_MAX:
        raise ApiError(422, f"password must be {PASSWORD_MIN} to {PASSWORD_MAX} characters")
    return value


def refuse_nul(values: Iterable[str], where: str) -> None:
    """422 if any of ``values`` contains NUL (U+0000)."""
    if any(NUL in value for value in values):
        raise ApiError(422, f"{where} must not contain NUL (U+0000)")


def _strings_in(value: object) -> Iterable[str]:
    """Every string in a parsed JSON value, keys included. Iterative: the nesting may be
    deeper than Python's recursion limit."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            yield from item.keys()
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)


# -- bodies ----------------------------------------------------------------------


async def _body() -> bytes:
    # The request class caps the body (413 past it), see boundary.py.
    data = await request.get_data(as_text=False)
    assert isinstance(data, bytes)  # as_text=False
    return data


async def json_body(*, empty_ok: bool = False) -> dict[str, Any]:
    """The request's body as a JSON object (``{}`` for no body at all with ``empty_ok``).

    Guarantees the rules of the module docstring; anything else is 422 (413 if too large)."""
    raw = await _body()
    if not raw:
        if empty_ok:
            return {}
        raise ApiError(422, "body must be a JSON object")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(422, "the body is not valid UTF-8") from None
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        # orjson's message names the problem and its position in the body, nothing else.
        raise ApiError(422, f"the body is not valid JSON ({error})") from None
    if not isinstance(body, dict):
        raise ApiError(422, "body must be a JSON object")
    refuse_nul(_strings_in(body), "text in the body")
    return body


async def form_or_json() -> dict[str, Any]:
    """Form fields (OAuth2 password flow) or a JSON object, whichever the client sent.

    A field given twice keeps its first value. Same guarantees as ``json_body``."""
    fields: Iterable[tuple[str, str]]
    if request.mimetype == "application/x-www-form-urlencoded":
        raw = await _body()
        try:
            fields = parse_qsl(
                raw.decode("utf-8"), keep_blank_values=True, errors="strict", max_num_fields=64
            )
        except ValueError:  # UnicodeDecodeError included
            raise ApiError(422, "the form is not valid UTF-8 form data") from None
    elif request.mimetype == "multipart/form-data":
        fields = list((await request.form).items(multi=True))
    else:
        return await json_body()
    form: dict[str, Any] = {}
    for name, value in fields:
        refuse_nul((name, value), "form fields")
        form.setdefault(name, value)
    return form


# -- integers --------------------------------------------------------------------


def parse_int(text: str, *, minimum: int = 1, maximum: int = MAX_ID) -> int | None:
    """``text`` as an integer if it is 1-32 ASCII digits with a value in
    ``minimum..maximum``, else None."""
    if not _DIGITS.fullmatch(text):
        return None
    value = int(text)
    return value if minimum <= value <= maximum else None


def int_arg(
    name: str, *, default: int | None = None, minimum: int = 1, maximum: int = MAX_ID
) -> int | None:
    """An integer query argument in ``minimum..maximum``, ``default`` if absent, else 422."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    value = parse_int(raw, minimum=minimum, maximum=maximum)
    if value is None:
        raise ApiError(422, f"{name} must be an integer from {minimum} to {maximum}")
    return value


def check_id(value: object, name: str) -> int:
    """A JSON value that must be an id: an integer (not a bool, not 1.0) in 1..2**63-1."""
    if type(value) is not int or not 1 <= value <= MAX_ID:
        raise ApiError(422, f"{name} must be an integer from 1 to {MAX_ID}")
    return value


class IdConverter(BaseConverter):
    """The ``<int:...>`` of every route: ASCII digits with a value in 1..2**63-1.

    Anything else does not match the route, so it answers 404: no such id can exist."""

    regex = r"[0-9]+"
    part_isolating = True

    def to_python(self, value: str) -> int:
        parsed = parse_int(value)
        if parsed is None:
            raise ValidationError
        return parsed

    def to_url(self, value: Any) -> str:
        return str(int(value))
