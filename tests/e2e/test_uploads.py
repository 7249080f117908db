"""Image uploads and media serving over real HTTP (docs/contract.md: /upload/image, /media)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import h11
import httpx
import pytest
import trio

from hubbub.client import HubbubHTTP
from hubbub.http import upload_routes
from hubbub.node import Node
from tests.helpers.images import encoded_image, png_bomb
from tests.helpers.users import UserMaker

NAME = re.compile(r"[0-9a-f]{32}\.(png|jpg|gif|webp)")
BOUNDARY = "hubbub-test-boundary"


def media_files(node: Node) -> list[str]:
    """Everything in the media folder, temporary files included."""
    return sorted(path.name for path in node.settings.media_dir.iterdir())


async def upload(
    http: HubbubHTTP, token: str | None, data: bytes, **file_options: str
) -> httpx.Response:
    name = file_options.get("name", "picture.png")
    content_type = file_options.get("content_type", "application/octet-stream")
    return await http.post("/upload/image", token, files={"file": (name, data, content_type)})


@pytest.mark.parametrize(
    ("pillow_format", "ext", "content_type"),
    [
        ("PNG", "png", "image/png"),
        ("JPEG", "jpg", "image/jpeg"),
        ("GIF", "gif", "image/gif"),
        ("WEBP", "webp", "image/webp"),
    ],
)
async def test_an_uploaded_image_is_served_back_unchanged(
    node: Node,
    http: HubbubHTTP,
    make_user: UserMaker,
    pillow_format: str,
    ext: str,
    content_type: str,
) -> None:
    alice = await make_user("alice")
    data = encoded_image(pillow_format, (31, 17))
    # The declared name and type lie on purpose: only the content counts.
    response = await upload(http, alice.access_token, data, name="x.txt", content_type="text/plain")
    assert response.status_code == 200, response.text
    body = response.json()
    assert NAME.fullmatch(body["filename"]) and body["filename"].endswith("." + ext)
    assert body == {
        "filename": body["filename"],
        "url": "/media/" + body["filename"],
        "width": 31,
        "height": 17,
        "content_type": content_type,
        "size": len(data),
    }

    served = await http.get(body["url"])  # no token: media is public
    assert served.status_code == 200
    assert served.content == data
    assert served.headers["content-type"] == content_type
    assert served.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert served.headers["etag"]
    assert media_files(node) == [body["filename"]]

    again = await http.http.get(body["url"], headers={"If-None-Match": served.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""


async def test_text_named_and_typed_as_png_is_415(
    node: Node, http: HubbubHTTP, make_user: UserMaker
) -> None:
    alice = await make_user("alice")
    response = await upload(
        http, alice.access_token, b"not a picture at all", content_type="image/png"
    )
    assert response.status_code == 415
    assert "PNG, JPEG, GIF or WebP" in response.json()["detail"]
    assert media_files(node) == []


async def test_a_truncated_png_is_415(node: Node, http: HubbubHTTP, make_user: UserMaker) -> None:
    alice = await make_user("alice")
    data = encoded_image("PNG", (64, 64), noisy=True)
    response = await upload(http, alice.access_token, data[: len(data) // 2])
    assert response.status_code == 415
    detail = response.json()["detail"]
    assert "does not decode" in detail
    # Nothing of the server's own files: not the data dir, not the temporary file's name.
    assert str(node.settings.data_dir) not in detail and ".part" not in detail
    assert media_files(node) == []


async def test_a_decompression_bomb_is_413_from_its_header(
    node: Node, http: HubbubHTTP, make_user: UserMaker
) -> None:
    alice = await make_user("alice")
    response = await upload(http, alice.access_token, png_bomb(7000, 7000))
    assert response.status_code == 413
    assert "7000x7000 pixels" in response.json()["detail"]
    assert media_files(node) == []


async def test_the_pixel_budget_is_configurable(
    node_factory: Callable[..., AsyncIterator[Node]],
) -> None:
    async with node_factory(max_image_pixels="100") as small, HubbubHTTP(small.url) as http:
        account = await http.register("px", "px@example.com", "correct horse battery")
        refused = await upload(http, account.access_token, encoded_image("PNG", (11, 10)))
        accepted = await upload(http, account.access_token, encoded_image("PNG", (10, 10)))
    assert refused.status_code == 413, refused.text
    assert "at most 100" in refused.json()["detail"]
    assert accepted.status_code == 200, accepted.text


async def test_uploading_needs_a_valid_token(
    node: Node, http: HubbubHTTP, make_user: UserMaker
) -> None:
    data = encoded_image("PNG")
    assert (await upload(http, None, data)).status_code == 401
    assert (await upload(http, "not-a-token", data)).status_code == 401
    assert media_files(node) == []


async def test_a_form_without_the_file_field_is_422(
    node: Node, http: HubbubHTTP, make_user: UserMaker
) -> None:
    alice = await make_user("alice")
    other_field = await http.post(
        "/upload/image",
        alice.access_token,
        data={"caption": "hello"},
        files={"image": ("a.png", encoded_image("PNG"), "image/png")},
    )
    not_multipart = await http.post("/upload/image", alice.access_token, json={"file": "x"})
    for response in (other_field, not_multipart):
        assert response.status_code == 422
        assert "'file'" in response.json()["detail"]
    assert media_files(node) == []


async def test_a_malformed_multipart_body_is_422(
    node: Node, http: HubbubHTTP, make_user: UserMaker
) -> None:
    alice = await make_user("alice")
    response = await http.http.post(
        "/upload/image",
        content=b"no boundary anywhere in here",
        headers={
            "Authorization": f"Bearer {alice.access_token}",
            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
        },
    )
    assert response.status_code == 422
    assert response.json()["detail"]
    assert media_files(node) == []


# Bodies over the limit, sent over a raw socket: an HTTP client library would insist on
# sending the whole body before reading the answer, which is exactly what must not be needed.


def part_head(field: str) -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{field}"; filename="a.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()


async def exchange(
    node: Node,
    method: str,
    target: str,
    headers: list[tuple[str, str]],
    body: Sequence[bytes] = (),
) -> tuple[h11.Response, bytes]:
    """Send a request head and ``body`` (never ending it) and read the whole response."""
    stream = await trio.open_tcp_stream(node.settings.host, node.port)
    connection = h11.Connection(h11.CLIENT)
    async with stream:
        with trio.fail_after(10):
            host = ("Host", f"{node.settings.host}:{node.port}")
            await stream.send_all(
                connection.send(h11.Request(method=method, target=target, headers=[host, *headers]))
            )
            for chunk in body:
                await stream.send_all(connection.send(h11.Data(data=chunk)))
            response, content = None, b""
            while True:
                event = connection.next_event()
                if event is h11.NEED_DATA:
                    connection.receive_data(await stream.receive_some())
                elif isinstance(event, h11.Response):
                    response = event
                elif isinstance(event, h11.Data):
                    content += event.data
                elif isinstance(event, h11.EndOfMessage):
                    assert response is not None
                    return response, content


def upload_head(token: str, **extra: str) -> list[tuple[str, str]]:
    return [
        ("Authorization", f"Bearer {token}"),
        ("Content-Type", f"multipart/form-data; boundary={BOUNDARY}"),
        *extra.items(),
    ]


@pytest.fixture
async def small_limit_node(
    node_factory: Callable[..., AsyncIterator[Node]],
) -> AsyncIterator[Node]:
    async with node_factory(max_upload_bytes="2048") as node:
        yield node


@pytest.fixture
async def small_http(small_limit_node: Node) -> AsyncIterator[HubbubHTTP]:
    async with HubbubHTTP(small_limit_node.url) as client:
        yield client


async def test_an_image_over_the_limit_is_413(
    small_limit_node: Node, small_http: HubbubHTTP
) -> None:
    account = await small_http.register("big", "big@example.com", "correct horse battery")
    data = encoded_image("PNG", (40, 40), noisy=True)
    assert len(data) > 2048
    response = await upload(small_http, account.access_token, data)
    assert response.status_code == 413
    assert "2048 bytes" in response.json()["detail"]
    assert media_files(small_limit_node) == []


async def test_a_declared_length_over_the_limit_is_413_before_any_body(
    small_limit_node: Node, small_http: HubbubHTTP
) -> None:
    account = await small_http.register("big", "big@example.com", "correct horse battery")
    head = upload_head(account.access_token, **{"Content-Length": str(10**9)})
    response, content = await exchange(small_limit_node, "POST", "/upload/image", head)
    assert response.status_code == 413
    assert b"2048 bytes" in content
    assert media_files(small_limit_node) == []


@pytest.mark.parametrize(
    "body",
    [
        # The image alone passes the limit.
        [part_head("file"), encoded_image("PNG", (60, 60), noisy=True)[:4096]],
        # Other fields make the whole body pass the limit plus the room for framing.
        [part_head("padding"), b"x" * (2048 + upload_routes.MULTIPART_OVERHEAD + 1)],
    ],
    ids=["file", "whole-body"],
)
async def test_a_streamed_body_is_refused_once_past_the_limit_without_waiting_for_the_end(
    small_limit_node: Node, small_http: HubbubHTTP, body: list[bytes]
) -> None:
    account = await small_http.register("big", "big@example.com", "correct horse battery")
    head = upload_head(account.access_token, **{"Transfer-Encoding": "chunked"})
    # The body never ends: only a server that counts as it reads can answer at all.
    response, content = await exchange(small_limit_node, "POST", "/upload/image", head, body)
    assert response.status_code == 413
    assert b"detail" in content
    assert media_files(small_limit_node) == []


async def test_a_stalled_upload_is_408_and_leaves_nothing(
    node: Node, http: HubbubHTTP, make_user: UserMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(upload_routes, "BODY_STALL_TIMEOUT", 0.2)
    alice = await make_user("alice")
    head = upload_head(alice.access_token, **{"Transfer-Encoding": "chunked"})
    body = [part_head("file"), encoded_image("PNG")[:30]]
    response, content = await exchange(node, "POST", "/upload/image", head, body)
    assert response.status_code == 408
    assert b"send it again" in content
    assert media_files(node) == []


async def test_media_names_cannot_reach_outside_the_media_folder(
    node: Node, http: HubbubHTTP, make_user: UserMaker
) -> None:
    alice = await make_user("alice")
    stored = (await upload(http, alice.access_token, encoded_image("PNG"))).json()["filename"]
    data_dir: Path = node.settings.data_dir
    (data_dir / "outside.png").write_bytes(b"SECRET outside the media folder")
    (node.settings.media_dir / "notes.txt").write_bytes(b"SECRET with an invalid name")
    (node.settings.media_dir / stored.upper()).write_bytes(b"SECRET upper case")
    targets = [
        "/media/../outside.png",
        "/media/..%2foutside.png",
        "/media/%2e%2e%2foutside.png",
        "/media/%2e%2e/outside.png",
        "/media/..%5coutside.png",
        "/media/..\\outside.png",
        "/media/" + str(data_dir / "outside.png"),
        "/media/" + str(data_dir / "outside.png").replace("/", "%2f"),
        "/media//etc/passwd",
        "/media/../jwt-secret",
        "/media/notes.txt",
        "/media/" + stored.upper(),
        "/media/" + stored + "/",
        "/media/" + stored + "%00.png",
        "/media/" + "0" * 32 + ".png",  # a valid name nobody stored
        "/media/",
    ]
    for target in targets:
        response, content = await exchange(node, "GET", target, [])
        assert response.status_code == 404, target
        assert b"SECRET" not in content and b'"detail"' in content, target
    assert (await http.get("/media/" + stored)).status_code == 200
