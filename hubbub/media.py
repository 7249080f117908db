"""The media store: uploaded images on disk under unguessable, immutable names.

An upload is written to a temporary file in the media folder, checked, and renamed into
place as ``<uuid4 hex>.<ext>``. A stored file never changes afterwards, which is what lets
``GET /media/...`` be cached forever and lets ``is_known_url`` cache its answers.

Every disk access runs in a worker thread; the pure helpers (``detect_format``,
``format_of_name``, ``name_of_url``) do no I/O.
"""

from __future__ import annotations

import os
import re
import tempfile
import uuid
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
#: Decoding is refused above this many pixels: a small compressed file can decode to
#: gigabytes (a "decompression bomb"). 50 megapixels covers any camera photo.
MAX_PIXELS = 50_000_000
#: Names ``is_known_url`` remembers; past this the least recently asked is forgotten.
KNOWN_NAMES_CACHE = 10_000

_NAME = re.compile(r"[0-9a-f]{32}\.(png|jpg|gif|webp)")
_TEMP_PREFIX = ".upload-"


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

    def __init__(self, store: MediaStore, path: Path, file: BinaryIO, limit: int) -> None:
        self._store = store
        self._path = path
        self._file = file
        self._limit = limit
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
        """Check that the whole file decodes as the format its first bytes claim, and move
        it into place under a new unique name. Raises ``NotAnImage`` or ``TooLarge``."""
        fmt = self._format()
        await trio.to_thread.run_sync(_seal, self._file)
        width, height = await trio.to_thread.run_sync(_decoded_size, self._path, fmt)
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
    disk work in worker threads; only ``is_known_url`` may stat on the caller's thread."""

    def __init__(self, directory: Path, *, cache_size: int = KNOWN_NAMES_CACHE) -> None:
        self.directory = directory
        self._known: OrderedDict[str, None] = OrderedDict()
        self._cache_size = cache_size

    @asynccontextmanager
    async def upload(self, limit: int) -> AsyncIterator[Upload]:
        """A new ``Upload`` of at most ``limit`` bytes. Unless ``finish`` succeeded, its
        temporary file is gone when the block exits, however it exits."""
        path, file = await trio.to_thread.run_sync(_create_temp, self.directory)
        upload = Upload(self, path, file, limit)
        try:
            yield upload
        finally:
            await upload._discard()

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

    def is_known_url(self, url: str) -> bool:
        """True if ``url`` is ``/media/<name>`` (see ``name_of_url``) of a stored image.

        Answers from memory when it can (names saved or seen by this process); otherwise
        stats the file on the calling thread. From async code prefer ``knows_url``."""
        name = name_of_url(url)
        if name is None:
            return False
        if self._cached(name):
            return True
        return self._note(name, self._stat(name))

    async def knows_url(self, url: str) -> bool:
        """Same answer as ``is_known_url``, but a cache miss stats in a worker thread."""
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


def _decoded_size(path: Path, fmt: ImageFormat) -> tuple[int, int]:
    """Width and height of the image at ``path`` after decoding all of it as ``fmt``."""
    try:
        with Image.open(path, formats=[fmt.pillow_name]) as image:
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise TooLarge(
                    f"the image is {width}x{height} pixels; at most {MAX_PIXELS} are accepted"
                )
            image.verify()
        # verify() leaves the image unusable and does not decode pixels; load() does.
        with Image.open(path, formats=[fmt.pillow_name]) as image:
            image.load()
            return image.size
    except MediaRejected:
        raise
    except Exception as error:  # Pillow signals bad data with many exception types.
        raise NotAnImage(
            f"the file starts like a {fmt.pillow_name} image but does not decode ({error})"
        ) from None


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
