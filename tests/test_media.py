"""The media store: name validation, format detection, uploads on disk, the URL policy."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from hubbub import media
from hubbub.media import (
    GIF,
    JPEG,
    PNG,
    WEBP,
    ImageFormat,
    MediaStore,
    NotAnImage,
    TooLarge,
    detect_format,
    format_of_name,
    name_of_url,
    store_for,
)
from tests.helpers.images import encoded_image, png_bomb

NAME = "0123456789abcdef0123456789abcdef.png"


def cut(data: bytes, fraction: float) -> bytes:
    return data[: int(len(data) * fraction)]


def corrupt(data: bytes) -> bytes:
    """``data`` with one byte in its middle changed."""
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]


def temp_files(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


@pytest.mark.parametrize(
    "name",
    [NAME, NAME.replace(".png", ".jpg"), NAME.replace(".png", ".gif"), "f" * 32 + ".webp"],
)
def test_names_the_store_gives_out_are_valid(name: str) -> None:
    assert format_of_name(name) is not None


@pytest.mark.parametrize(
    "name",
    [
        "",
        "../" + NAME,
        "..",
        "/" + NAME,
        "sub/" + NAME,
        "..\\" + NAME,
        NAME.upper(),
        NAME.replace(".png", ".jpeg"),
        NAME.replace(".png", ".svg"),
        NAME + ".png",
        NAME + "\n",
        NAME[1:],
        "g" + NAME[1:],
        NAME.replace(".png", ""),
        ".upload-abc.part",
        "jwt-secret",
    ],
)
def test_every_other_name_is_invalid(name: str) -> None:
    assert format_of_name(name) is None


def test_the_format_of_a_name_follows_its_extension() -> None:
    assert format_of_name(NAME) is PNG
    assert format_of_name(NAME.replace(".png", ".jpg")) is JPEG
    assert format_of_name(NAME.replace(".png", ".gif")) is GIF
    assert format_of_name(NAME.replace(".png", ".webp")) is WEBP


@pytest.mark.parametrize(
    ("pillow_format", "expected"),
    [("PNG", PNG), ("JPEG", JPEG), ("GIF", GIF), ("WEBP", WEBP)],
)
def test_formats_are_detected_from_their_first_bytes(
    pillow_format: str, expected: ImageFormat
) -> None:
    head = encoded_image(pillow_format)[: media.MAGIC_BYTES]
    assert detect_format(head) is expected


@pytest.mark.parametrize(
    "head",
    [
        b"",
        b"hello, world",
        b"<svg xmlns='http://www.w3.org/2000/svg'>",
        b"RIFF\x00\x00\x00\x00WAVE",
        b"\x89PNG\r\n",  # a PNG signature cut short
        b"GIF88a" + b"\x00" * 6,
        b"BM" + b"\x00" * 10,  # BMP: an image, but not one we accept
    ],
)
def test_anything_else_is_no_format(head: bytes) -> None:
    assert detect_format(head) is None


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("/media/" + NAME, NAME),
        ("/media/" + NAME.upper(), None),
        ("/media/../" + NAME, None),
        ("/media/" + NAME + "?x=1", None),
        ("/media/" + NAME + "#top", None),
        ("media/" + NAME, None),
        ("/media//" + NAME, None),
        ("http://example.com/media/" + NAME, None),
        ("https://localhost:8000/media/" + NAME, None),
        ("//evil.example/media/" + NAME, None),
        ("/static/" + NAME, None),
        ("", None),
    ],
)
def test_only_relative_media_urls_name_a_file(url: str, expected: str | None) -> None:
    assert name_of_url(url) == expected


async def store_image(
    store: MediaStore, data: bytes, chunk: int = 5, max_pixels: int = media.DEFAULT_MAX_PIXELS
) -> media.StoredImage:
    async with store.upload(limit=1024 * 1024, max_pixels=max_pixels) as upload:
        for start in range(0, len(data), chunk):
            await upload.write(data[start : start + chunk])
        return await upload.finish()


async def test_an_upload_is_stored_under_a_new_name_with_its_size(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    data = encoded_image("PNG", (13, 8))
    first = await store_image(store, data)
    second = await store_image(store, data)
    assert first.filename != second.filename
    assert format_of_name(first.filename) is PNG
    assert (first.width, first.height, first.size) == (13, 8, len(data))
    assert first.url == "/media/" + first.filename
    assert (tmp_path / first.filename).read_bytes() == data
    assert await store.read(first.filename) == data
    assert temp_files(tmp_path) == sorted([first.filename, second.filename])


async def test_a_write_past_the_limit_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    data = encoded_image("PNG", (20, 20), noisy=True)
    with pytest.raises(TooLarge, match="limit of 100 bytes"):
        async with store.upload(limit=100) as upload:
            await upload.write(data[:60])
            await upload.write(data[60:120])
    assert temp_files(tmp_path) == []


async def test_a_wrong_signature_is_refused_as_soon_as_it_arrives(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    with pytest.raises(NotAnImage):
        async with store.upload(limit=1000) as upload:
            await upload.write(b"just some text, not an image")
    assert temp_files(tmp_path) == []


@pytest.mark.parametrize(
    "data",
    [
        encoded_image("PNG", (40, 40), noisy=True)[:200],  # right signature, cut body
        encoded_image("JPEG", (40, 40), noisy=True)[:300],
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 50,  # signature and garbage
        b"\x89PNG",  # too short to say
        # A header that parses, then a body cut short, in each format.
        cut(encoded_image("PNG", (64, 64), noisy=True), 0.9),
        cut(encoded_image("JPEG", (64, 64), noisy=True), 0.9),
        cut(encoded_image("GIF", (64, 64), noisy=True), 0.9),
        cut(encoded_image("WEBP", (64, 64), noisy=True), 0.9),
        corrupt(encoded_image("PNG", (64, 64), noisy=True)),  # a chunk's CRC fails
    ],
)
async def test_a_file_that_does_not_decode_is_refused(tmp_path: Path, data: bytes) -> None:
    store = MediaStore(tmp_path)
    with pytest.raises(NotAnImage, match=r"not a PNG|does not decode") as refused:
        await store_image(store, data, chunk=4096)
    # Shown to the uploader: nothing of the server's files or of Pillow's internals.
    assert str(tmp_path) not in str(refused.value) and ".part" not in str(refused.value)
    assert temp_files(tmp_path) == []


@pytest.mark.parametrize("pillow_format", ["PNG", "JPEG", "GIF", "WEBP"])
async def test_a_whole_image_of_each_format_passes_the_checks(
    tmp_path: Path, pillow_format: str
) -> None:
    data = encoded_image(pillow_format, (64, 48), noisy=True)
    stored = await store_image(MediaStore(tmp_path), data, chunk=4096)
    assert (stored.width, stored.height) == (64, 48)


async def test_a_jpeg_signature_on_a_png_body_is_refused(tmp_path: Path) -> None:
    # Pillow is told the format the signature claims, so it may not guess another.
    data = b"\xff\xd8\xff" + encoded_image("PNG")
    with pytest.raises(NotAnImage):
        await store_image(MediaStore(tmp_path), data)


async def test_too_many_pixels_is_refused_before_decoding(tmp_path: Path) -> None:
    with pytest.raises(TooLarge, match="10x10 pixels"):
        await store_image(MediaStore(tmp_path), encoded_image("GIF", (10, 10)), max_pixels=99)
    assert temp_files(tmp_path) == []


@pytest.mark.parametrize("pixels", [True, False], ids=["real bitmap", "garbage bitmap"])
async def test_a_decompression_bomb_is_refused_from_its_header(
    tmp_path: Path, pixels: bool
) -> None:
    # 7000x7000 RGBA: about 190 KB that decode to 196 MB. Refused as too large even when
    # its pixel data is garbage: so the body was never looked at, let alone decoded.
    data = png_bomb(7000, 7000, pixels=pixels)
    assert len(data) < 300_000
    with pytest.raises(TooLarge, match="7000x7000 pixels; at most 25000000"):
        await store_image(MediaStore(tmp_path), data, chunk=64 * 1024)
    assert temp_files(tmp_path) == []


async def test_past_pillows_own_bomb_limit_is_too_large_too(tmp_path: Path) -> None:
    data = png_bomb(20_000, 20_000, pixels=False)  # Pillow itself refuses to open this
    with pytest.raises(TooLarge, match="more than 25000000 pixels"):
        await store_image(MediaStore(tmp_path), data)


async def test_no_more_checks_run_at_once_than_the_store_allows(tmp_path: Path) -> None:
    store = MediaStore(tmp_path, check_concurrency=2)
    path = tmp_path / "image.png"
    path.write_bytes(encoded_image("PNG", (300, 300), noisy=True))
    sizes: list[tuple[int, int]] = []

    async def check() -> None:
        sizes.append(await store.check(path, PNG, media.DEFAULT_MAX_PIXELS))

    async with trio.open_nursery() as nursery:
        for _ in range(8):
            nursery.start_soon(check)
    assert sizes == [(300, 300)] * 8
    # All eight started together; without the limiter all eight would have run at once.
    assert store.checks_peak == 2
    assert store.checks_running == 0


async def test_a_cancelled_upload_leaves_no_temporary_file(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    wrote = trio.Event()

    async def stalled_upload() -> None:
        async with store.upload(limit=1000) as upload:
            await upload.write(encoded_image("PNG")[:20])
            wrote.set()
            await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(stalled_upload)
        with trio.fail_after(5):
            await wrote.wait()
        assert len(temp_files(tmp_path)) == 1
        nursery.cancel_scope.cancel()
    assert temp_files(tmp_path) == []


async def test_read_refuses_invalid_and_unknown_names(tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("no")
    store = MediaStore(tmp_path / "media")
    (tmp_path / "media").mkdir()
    assert await store.read("../secret.txt") is None
    assert await store.read(NAME) is None


async def test_known_urls_are_stored_files_only(tmp_path: Path) -> None:
    (tmp_path / NAME).write_bytes(b"placed by another node")
    urls = [
        "/media/" + NAME,
        "/media/" + "a" * 32 + ".png",  # valid name, no such file
        "http://localhost/media/" + NAME,
        "/media/../" + NAME,
    ]
    expected = [True, False, False, False]
    assert [await MediaStore(tmp_path).knows_url(url) for url in urls] == expected


async def test_saved_names_are_known_without_the_disk(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    image = await store_image(store, encoded_image("WEBP"))
    # Stored files never go away, so the store trusts its memory; removing the file behind
    # its back shows the answer did not come from the disk.
    (tmp_path / image.filename).unlink()
    assert await store.knows_url(image.url)


async def test_the_memory_of_names_is_bounded(tmp_path: Path) -> None:
    store = MediaStore(tmp_path, cache_size=2)
    names = [f"{n:032x}.gif" for n in range(3)]
    for name in names:
        (tmp_path / name).write_bytes(b"x")
        assert await store.knows_url("/media/" + name)
        (tmp_path / name).unlink()
    assert [await store.knows_url("/media/" + name) for name in names] == [False, True, True]


def test_one_store_per_folder(tmp_path: Path) -> None:
    assert store_for(tmp_path) is store_for(tmp_path / "sub" / "..")
    assert store_for(tmp_path) is not store_for(tmp_path / "other")
