"""Every HTTP route, driven with hostile input, never answers 5xx (both backends).

The routes come from the app's own url_map, so a route added later is covered without
touching this file. Each example is one request: any of the route's methods (or another),
path arguments, query arguments, a body of odd JSON, deep nesting, NUL, huge numbers,
bytes that are not UTF-8, wrong types or long strings, with or without a valid token.
Every refusal must be a 4xx with a JSON ``detail`` that tells nothing of the server's files.

The node runs in a thread of its own (its own ``trio.run``) so that Hypothesis' examples,
each a plain synchronous call, share it.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import attrs
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from hubbub.http.validation import BODY_LIMIT
from tests.helpers.apps import bare_app
from tests.helpers.nodes import node_in_thread

HOSTILE = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
PASSWORD = "correct horse battery"
#: Heads past the front door's limit and bodies past the cap may be cut off mid-send.
OVERSIZE = 16 * 1024


def _rules() -> list[tuple[str, list[str]]]:
    """Every route of the app, with its methods."""
    rules = bare_app().url_map.iter_rules()
    return sorted((rule.rule, sorted(rule.methods or ())) for rule in rules)


RULES = _rules()
ARGUMENT = re.compile(r"<(?:[a-z]+:)?([a-z_]+)>")


@attrs.frozen
class Live:
    """What the running node has: its URL, data dir and real ids and tokens to aim at."""

    url: str
    data_dir: Path
    tokens: dict[str, str]
    ids: tuple[int, ...]


@pytest.fixture
def live(tmp_path: Path, database_url: str) -> Iterator[Live]:
    """A node in a thread, with two users (one in a group) to make requests as."""
    data_dir = tmp_path / "data"
    with node_in_thread(data_dir, database_url) as url:
        yield _populate(url, data_dir)


def _populate(url: str, data_dir: Path) -> Live:
    with httpx.Client(base_url=url, timeout=10) as client:
        tokens: dict[str, str] = {}
        ids: list[int] = []
        for name in ("ada", "bob"):
            created = client.post(
                "/auth/signup",
                json={"username": name, "email": f"{name}@example.com", "password": PASSWORD},
            )
            ids.append(created.json()["id"])
            pair = client.post("/auth/login", data={"username": name, "password": PASSWORD})
            tokens[name] = pair.json()["access_token"]
            tokens[f"{name} refresh"] = pair.json()["refresh_token"]
        headers = {"Authorization": f"Bearer {tokens['ada']}"}
        group = client.post("/groups/create-group", params={"name": "g"}, headers=headers)
        ids.append(group.json()["group_id"])
    return Live(url, data_dir, tokens, tuple(ids))


# -- hostile pieces ----------------------------------------------------------------

odd_text = st.sampled_from(
    [
        "",
        "\x00",
        "a\x00b",
        "\u0661\u0662",
        "\uff11",
        "+5",
        " 5",
        "5_0",
        "-1",
        "0",
        "1",
        "1.0",
        "0x10",
        str(2**63 - 1),
        str(2**63),
        str(2**64),
        str(2**70),
        "9" * 5000,
        "1e400",
        "NaN",
        "null",
        "true",
        "[]",
        "{}",
        "..",
        "../../hubbub.db",
        "%00",
        "<script>@x.cc",
        '"q"@x.cc',
        "a@b.cc",
        "x" * 300,
        "x" * 70_000,
        "\u212a",
        "\U0001f600",
        "\r\n",
    ]
)
text = odd_text | st.text(max_size=30)
numbers = st.integers(min_value=-(2**70), max_value=2**70) | st.sampled_from(
    [0, 1, 2, 3, 2**63 - 1, 2**63, 2**64]
)
json_leaf = (
    st.none()
    | st.booleans()
    | numbers
    | st.floats()  # NaN and infinities too: the stdlib writes them, JSON has none
    | text
)
json_value = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(["username", "email", "password", "name"]) | text, inner)
    ),
    max_leaves=12,
)
known_fields = st.fixed_dictionaries(
    {},
    optional={
        name: json_value
        for name in ("username", "email", "password", "name", "user_id", "before", "limit")
    },
)


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


raw_bodies = (
    st.binary(max_size=200)
    | st.sampled_from(
        [
            b"",
            b"\xff\xfe",
            b'{"username": "\xff"}',
            b'{"username": "\\ud800"}',
            b'{"user_id": 1' + b"0" * 400 + b"}",
            b'{"a": NaN}',
            b"\xef\xbb\xbf{}",
            b"username=%ff&password=x",
            b"username=a%00&password=x",
            b"x" * (BODY_LIMIT + 1),
        ]
    )
    | st.sampled_from([1, 2, 100, 1024, 1025, 5000, 30_000, 100_000]).map(nested)
)
content_types = st.sampled_from(
    [
        None,
        "application/json",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=hostile",
        "multipart/form-data",
        "text/plain",
        "application/json; charset=latin-1",
    ]
)
authorisations = st.sampled_from([None, "ada", "bob", "ada refresh", "garbage", "Bearer", ""])


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (3, 2)).save(buffer, format="PNG")
    return buffer.getvalue()


PNG = _png()


def multipart(data: bytes, field: str = "file") -> bytes:
    return (
        b'--hostile\r\nContent-Disposition: form-data; name="'
        + field.encode()
        + b'"; filename="x.png"\r\nContent-Type: image/png\r\n\r\n'
        + data
        + b"\r\n--hostile--\r\n"
    )


multipart_bodies = st.builds(
    multipart,
    st.binary(max_size=100)
    | st.just(PNG)
    | st.just(PNG[:40])
    | st.just(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20),
    st.sampled_from(["file", "other", "\x00"]),
)


@attrs.frozen
class Request:
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    content: bytes | None

    @property
    def oversize(self) -> bool:
        target = len(self.path) + sum(len(k) + len(v) for k, v in self.params.items())
        return target > OVERSIZE or len(self.content or b"") > BODY_LIMIT


@st.composite
def requests(draw: st.DrawFn, live: Live) -> Request:
    rule, methods = draw(st.sampled_from(RULES))
    method = draw(st.sampled_from(methods) | st.sampled_from(["GET", "POST", "PUT", "DELETE"]))
    real_ids = st.sampled_from(live.ids).map(str)
    path = ARGUMENT.sub(
        lambda _match: quote(draw(real_ids | numbers.map(str) | text), safe=""), rule
    )
    params = draw(
        st.dictionaries(
            st.sampled_from(["before", "limit", "user_id", "name", "token"]) | text,
            real_ids | text,
            max_size=3,
        )
    )
    headers = {}
    who = draw(authorisations)
    if who is not None:
        headers["Authorization"] = f"Bearer {live.tokens.get(who, who)}".strip()
    content_type = draw(content_types)
    if content_type is not None:
        headers["Content-Type"] = content_type
    content = draw(
        st.none()
        | known_fields.map(lambda fields: json.dumps(fields).encode())
        | json_value.map(lambda value: json.dumps(value).encode())
        | raw_bodies
        | multipart_bodies
    )
    return Request(method, path, params, headers, content)


def send(client: httpx.Client, request: Request) -> httpx.Response | None:
    """The answer, or None if a request past the size limits was cut off mid-send (or
    too long for httpx to send at all)."""
    try:
        return client.request(
            request.method,
            request.path,
            params=request.params,
            headers=request.headers,
            content=request.content,
        )
    except (httpx.TransportError, httpx.InvalidURL):
        if request.oversize:
            return None
        raise


@HOSTILE
@given(data=st.data())
def test_no_route_answers_5xx_to_hostile_input(live: Live, data: st.DataObject) -> None:
    request = data.draw(requests(live))
    with httpx.Client(base_url=live.url, timeout=30) as client:
        response = send(client, request)
        if response is not None:
            assert response.status_code < 500, (request, response.text)
            if response.status_code >= 400 and request.method != "HEAD":
                detail = response.json()["detail"]
                assert isinstance(detail, str) and detail, (request, response.text)
                assert str(live.data_dir) not in detail and ".part" not in detail
        assert client.get("/health/live").status_code == 200
