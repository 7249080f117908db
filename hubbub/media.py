"""The media store: uploaded images on disk under unguessable, immutable names.

An upload is written to a temporary file in the media folder, checked, and renamed into
place as ``<uuid4 hex>.<ext>``. A stored file never changes afterwards, which is what lets
``GET /media/...`` be cached forever and lets ``knows_url`` cache its answers.

Checking never decodes the whole bitmap: a small file can decode to hundreds of megabytes
(a "decompression bomb"; Pillow needs up to 8 bytes per pixel, a WebP twice over). First
the header is parsed and its width x height held to a pixel budget, before any pixel data
is read. Then, at most ``CHECK_CONCURRENCY`` at a time, the file's body is checked in a way
whose memory does not grow with its pixel count:

- PNG: ``verify()`` reads every chunk to ``IEND`` and checks its CRC (no inflating).
- WebP: opening it already had libwebp's demuxer validate every chunk of the container.
- JPEG: the entropy-coded data must reach an end-of-image marker (a truncated file does
  not); decoding it, even at 1/8 scale, costs up to 8 bytes per pixel for a progressive one.
- GIF: the first frame is decoded: one byte per pixel, so at most the pixel budget.

Every disk access runs in a worker thread; the pure helpers (``detect_format``,
``format_of_name``, ``name_of_url``) do no I/O.
"""

from __future__ import annotations

import mmap
import os
import re
import tempfile
import uuid
import warnings
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import BinaryIO

import attrs
import trio
from PIL import Image

#: Enough leading bytes to tell every accepted format apart.
MAGIC_BYTES = 12
#: Images of more pixels are refused (``HUBBUB_MAX_IMAGE_PIXELS``): 25 megapixels holds a
#: 6000x4000 camera photo and refuses a 7000x7000 bomb. Recipients decode what we serve.
DEFAULT_MAX_PIXELS = 25_000_000
#: Image checks running at once, per store: each reads a whole file (up to the upload
#: limit) and a GIF's first frame may take a byte per pixel.
CHECK_CONCURRENCY = 2
#: Names ``knows_url`` remembers; past this the least recently asked is forgotten.
KNOWN_NAMES_CACHE = 10_000

_NAME = re.compile(r"[0-9a-f]{32}\.(png|jpg|gif|webp)")
_TEMP_PREFIX = ".upload-"
_JPEG_END = b"\xff\xd9"

# Pillow warns past its own budget (89 megapixels); ours is lower and refuses those first.
warnings.simplefilter("ignore", Image.DecompressionBombWarning)


@attrs.frozen
class ImageFormat:
    """One accepted image format: its file extension, media type and Pillow's name for it."""

    ext: str
    content_type: str
    pillow_name: str


PNG = ImageFormat("png", "image/png", "PNG")
JPEG = ImageFormat("jpg", "image/jpeg", "JPEG")
GIF = ImageFormat("gif", "image/gif", "GIF")
WEBP = ImageFormat("webp", "image/webp", "WEBP")
FORMATS: tuple[ImageFormat, ...] = (PNG, JPEG, GIF, WEBP)
_BY_EXT = {fmt.ext: fmt for fmt in FORMATS}


class MediaRejected(Exception):
    """An upload the store refuses; the message says why, for the uploader."""


class TooLarge(MediaRejected):
    """More bytes (or pixels) than the store accepts."""


class NotAnImage(MediaRejected):
    """Not a PNG, JPEG, GIF or WebP file that decodes."""


def detect_format(head: bytes) -> ImageFormat | None:
    """The format whose signature ``head`` (a file's first bytes) starts with, or None.

    Needs ``MAGIC_BYTES`` bytes to recognise WebP; fewer never match it."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith((b"GIF87a", b"GIF89a")):
        return GIF
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    return None


def format_of_name(name: str) -> ImageFormat | None:
    """The format of a stored file's name, or None unless the name is exactly one the store
    gives out (``<32 lowercase hex>.<png|jpg|gif|webp>``). Anything else (paths, ``..``,
    backslashes, upper case) is None, so a valid name is always a plain file in the folder."""
    match = _NAME.fullmatch(name)
    return _BY_EXT[match.group(1)] if match else None


def name_of_url(url: str) -> str | None:
    """The stored-file name in an image URL, or None if the URL is not a media URL.

    Only the relative form ``/media/<name>`` that the upload answered is accepted. Absolute
    URLs are refused on purpose: this node cannot tell which hosts are "itself" (proxies,
    several nodes), and accepting any host would let a sender point every recipient at a
    third-party server that merely mimics the path (a tracking pixel)."""
    prefix = "/media/"
    if not url.startswith(prefix):
        return None
    name = url[len(prefix) :]
    return name if format_of_name(name) else None


@attrs.frozen
class StoredImage:
    """An image saved in the store."""

    filename: str
    format: ImageFormat
    width: int
    height: int
    size: int

    @property
    def url(self) -> str:
        return f"/media/{self.filename}"


class Upload:
    """One incoming image, written to a temporary file as it arrives.

    Get one from ``MediaStore.upload``; call ``write`` per chunk, then ``finish``."""

    def __init__(
        self, store: MediaStore, path: Path, file: BinaryIO, limit: int, max_pixels: int
    ) -> None:
        self._store = store
        self._path = path
        self._file = file
        self._limit = limit
        self._max_pixels = max_pixels
        self._head = b""
        self.size = 0
        self._finished = False

    async def write(self, data: bytes) -> None:
        """Append ``data``. Raises ``TooLarge`` as soon as the total passes the limit and
        ``NotAnImage`` as soon as the first bytes match no accepted format."""
        self.size += len(data)
        if self.size > self._limit:
            raise TooLarge(f"the image is larger than the limit of {self._limit} bytes")
        if len(self._head) < MAGIC_BYTES:
            self._head += data[: MAGIC_BYTES - len(self._head)]
            if len(self._head) >= MAGIC_BYTES:
                self._format()
        await trio.to_thread.run_sync(self._file.write, data)

    def _format(self) -> ImageFormat:
        fmt = detect_format(self._head)
        if fmt is None:
            raise NotAnImage("the file is not a PNG, JPEG, GIF or WebP image")
        return fmt

    async def finish(self) -> StoredImage:
        """Check the file as the module docstring says, as the format its first bytes
        claim, and move it into place under a new unique name. Raises ``TooLarge`` (over
        the pixel budget) or ``NotAnImage``."""
        fmt = self._format()
        await trio.to_thread.run_sync(_seal, self._file)
        width, height = await self._store.check(self._path, fmt, self._max_pixels)
        filename = f"{uuid.uuid4().hex}.{fmt.ext}"
        await trio.to_thread.run_sync(os.replace, self._path, self._store.directory / filename)
        self._finished = True
        self._store.remember(filename)
        return StoredImage(filename, fmt, width, height, self.size)

    async def _discard(self) -> None:
        # Shielded: a cancelled request (client gone) must still not leave its temp file.
        if self._finished:
            return
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(_remove, self._file, self._path)


class MediaStore:
    """Stored images in one folder. Use it from one Trio thread: the async methods do their
    disk work in worker threads."""

    def __init__(
        self,
        directory: Path,
        *,
        cache_size: int = KNOWN_NAMES_CACHE,
        check_concurrency: int = CHECK_CONCURRENCY,
    ) -> None:
        self.directory = directory
        self._known: OrderedDict[str, None] = OrderedDict()
        self._cache_size = cache_size
        self._checks = trio.CapacityLimiter(check_concurrency)
        #: Image checks running now, and the most that ever ran at once.
        self.checks_running = 0
        self.checks_peak = 0

    @asynccontextmanager
    async def upload(
        self, limit: int, *, max_pixels: int = DEFAULT_MAX_PIXELS
    ) -> AsyncIterator[Upload]:
        """A new ``Upload`` of at most ``limit`` bytes and ``max_pixels`` pixels. Unless
        ``finish`` succeeded, its temporary file is gone when the block exits, however it
        exits."""
        path, file = await trio.to_thread.run_sync(_create_temp, self.directory)
        upload = Upload(self, path, file, limit, max_pixels)
        try:
            yield upload
        finally:
            await upload._discard()

    async def check(self, path: Path, fmt: ImageFormat, max_pixels: int) -> tuple[int, int]:
        """Width and height of the image at ``path`` once checked (see the module
        docstring); never more than ``check_concurrency`` checks run at once."""
        async with self._checks:
            self.checks_running += 1
            self.checks_peak = max(self.checks_peak, self.checks_running)
            try:
                return await trio.to_thread.run_sync(_checked_size, path, fmt, max_pixels)
            finally:
                self.checks_running -= 1

    async def read(self, filename: str) -> bytes | None:
        """The bytes of a stored image; None unless ``filename`` is a valid stored name
        (see ``format_of_name``) of a file that exists."""
        if format_of_name(filename) is None:
            return None
        try:
            data = await trio.to_thread.run_sync((self.directory / filename).read_bytes)
        except (FileNotFoundError, IsADirectoryError):
            return None
        self.remember(filename)
        return data

    async def knows_url(self, url: str) -> bool:
        """True if ``url`` is ``/media/<name>`` (see ``name_of_url``) of a stored image.
        Answers from memory when it can (names saved or seen by this process); a cache
        miss stats in a worker thread."""
        name = name_of_url(url)
        return name is not None and await self.exists(name)

    async def exists(self, filename: str) -> bool:
        """True if ``filename`` is a valid stored name (see ``format_of_name``) of a file
        that exists; a cache miss stats in a worker thread."""
        if format_of_name(filename) is None:
            return False
        if self._cached(filename):
            return True
        return self._note(filename, await trio.to_thread.run_sync(self._stat, filename))

    def remember(self, name: str) -> None:
        """Note that ``name`` is stored. Stored files never go away, so this never expires;
        only the bound on the cache's size forgets names."""
        self._known[name] = None
        self._known.move_to_end(name)
        while len(self._known) > self._cache_size:
            self._known.popitem(last=False)

    def _cached(self, name: str) -> bool:
        if name in self._known:
            self._known.move_to_end(name)
            return True
        return False

    def _stat(self, name: str) -> bool:
        # May run in a worker thread, so it must not touch the cache: ``_note`` does.
        return (self.directory / name).is_file()

    def _note(self, name: str, exists: bool) -> bool:
        if exists:
            self.remember(name)
        return exists


_stores: dict[Path, MediaStore] = {}


def store_for(directory: Path) -> MediaStore:
    """The process's one ``MediaStore`` for ``directory``, so that every caller shares its
    memory of known names."""
    key = Path(os.path.abspath(directory))
    store = _stores.get(key)
    if store is None:
        store = _stores[key] = MediaStore(key)
    return store


# Worker-thread functions: blocking disk and decoding work, never run on the event loop.


def _create_temp(directory: Path) -> tuple[Path, BinaryIO]:
    directory.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=directory, prefix=_TEMP_PREFIX, suffix=".part")
    return Path(name), os.fdopen(fd, "wb")


def _checked_size(path: Path, fmt: ImageFormat, max_pixels: int) -> tuple[int, int]:
    """Width and height of the image at ``path``, checked as ``fmt`` within ``max_pixels``.

    The failures say nothing of the file's path or of Pillow's internals: they are shown to
    the uploader."""
    try:
        with Image.open(path, formats=[fmt.pillow_name]) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise TooLarge(
                    f"the image is {width}x{height} pixels; at most {max_pixels} are accepted"
                )
            if fmt is JPEG:
                _check_jpeg_end(path, image.tile[0][2])
            elif fmt is GIF:
                image.load()
            else:
                image.verify()
            return width, height
    except MediaRejected:
        raise
    except Image.DecompressionBombError:
        raise TooLarge(f"the image has more than {max_pixels} pixels") from None
    except Exception:  # Pillow signals bad data with many exception types.
        raise NotAnImage(
            f"the file starts like a {fmt.pillow_name} image but does not decode as one"
        ) from None


def _check_jpeg_end(path: Path, scan_start: int) -> None:
    # Entropy-coded data escapes every 0xFF it holds, so the first FF D9 after the scan
    # starts is the end-of-image marker: a file cut short has none.
    with open(path, "rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
        if data.find(_JPEG_END, scan_start) == -1:
            raise NotAnImage("the file starts like a JPEG image but does not decode as one")


def _seal(file: BinaryIO) -> None:
    """Close ``file`` with its bytes on disk, so the rename that publishes it is durable."""
    with file:
        file.flush()
        # mkstemp makes it 0600; a static file server in front of us may need to read it.
        os.fchmod(file.fileno(), 0o644)
        os.fsync(file.fileno())


def _remove(file: BinaryIO, path: Path) -> None:
    file.close()
    path.unlink(missing_ok=True)
