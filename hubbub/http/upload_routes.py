"""Image uploads and the stored media (docs/contract.md: ``/upload/image``, ``/media/...``).

The upload body is parsed as it streams in, so the size limit holds without ever
buffering the body: ``await request.files`` would read all of it first.
"""

from __future__ import annotations

import logging

import trio
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from quart import Blueprint, request
from quart.wrappers import Response

from hubbub.http.boundary import streams_body
from hubbub.http.context import context
from hubbub.http.errors import ApiError
from hubbub.http.guards import caller
from hubbub.media import MediaStore, NotAnImage, TooLarge, Upload, format_of_name, store_for

log = logging.getLogger("hubbub.http")

uploads = Blueprint("uploads", __name__)

#: Room for the multipart framing (boundaries, part headers, small extra fields) on top
#: of the image itself; the request's body cap (boundary.py) allows the same.
MULTIPART_OVERHEAD = 64 * 1024
#: Longest wait for the next piece of an upload's body before giving up on it.
BODY_STALL_TIMEOUT = 30.0
#: Stored names are unique and their bytes never change.
CACHE_FOREVER = "public, max-age=31536000, immutable"
FIELD = b"file"


class FilePart:
    """Incremental ``multipart/form-data`` parsing that keeps the first field named
    ``file`` and drops every other part.

    ``feed`` each chunk of the body, then take the file's bytes out of ``pending``."""

    def __init__(self, boundary: bytes) -> None:
        #: File bytes parsed and not yet taken.
        self.pending = bytearray()
        #: The file field's headers were seen.
        self.found = False
        #: The closing boundary was seen: the body is complete.
        self.ended = False
        self._in_file = False
        self._headers: dict[bytes, bytes] = {}
        self._name = b""
        self._value = b""
        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._part_begin,
                "on_header_field": self._header_field,
                "on_header_value": self._header_value,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._part_data,
                "on_part_end": self._part_end,
                "on_end": self._end,
            },
        )

    def feed(self, chunk: bytes) -> None:
        """Parse ``chunk``. Raises ``FormParserError`` on a malformed body."""
        self._parser.write(chunk)

    def take(self) -> bytes:
        data = bytes(self.pending)
        self.pending.clear()
        return data

    def _part_begin(self) -> None:
        self._headers = {}

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._name += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._name.strip().lower()] = self._value.strip()
        self._name = self._value = b""

    def _headers_finished(self) -> None:
        kind, options = parse_options_header(self._headers.get(b"content-disposition"))
        if kind == b"form-data" and options.get(b"name") == FIELD and not self.found:
            self.found = self._in_file = True

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            self.pending += data[start:end]

    def _part_end(self) -> None:
        self._in_file = False

    def _end(self) -> None:
        self.ended = True


def _store() -> MediaStore:
    return store_for(context().settings.media_dir)


def _boundary(content_type: str) -> bytes:
    kind, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise ApiError(422, "send the image as multipart/form-data, in the field 'file'")
    return boundary


async def _receive(part: FilePart, upload: Upload, body_limit: int) -> None:
    """Stream the request body through ``part`` into ``upload`` until the body ends.

    Raises 413 as soon as more than ``body_limit`` bytes arrived (``upload.write`` raises
    ``TooLarge`` for the file alone), 422 if the body is malformed or incomplete, 408 if it
    stalls for ``BODY_STALL_TIMEOUT``."""
    received = 0
    chunks = aiter(request.body)
    while True:
        with trio.move_on_after(BODY_STALL_TIMEOUT) as waiting:
            chunk = await anext(chunks, None)
        if waiting.cancelled_caught:
            raise ApiError(408, "the upload stopped arriving; send it again")
        if chunk is None:
            break
        received += len(chunk)
        if received > body_limit:
            raise ApiError(413, f"the request body is larger than {body_limit} bytes")
        try:
            part.feed(chunk)
        except FormParserError as error:
            raise ApiError(422, f"the multipart body is malformed ({error})") from None
        if part.pending:
            await upload.write(part.take())
    if not part.ended:
        raise ApiError(422, "the multipart body ended before its closing boundary")
    if not part.found:
        raise ApiError(422, "the form has no field 'file'; send the image in it")


@uploads.post("/upload/image")
@streams_body
async def upload_image() -> dict:
    claims = caller()
    settings = context().settings
    limit = settings.max_upload_bytes
    body_limit = limit + MULTIPART_OVERHEAD
    if request.content_length is not None and request.content_length > body_limit:
        raise ApiError(413, f"the image is larger than the limit of {limit} bytes")
    part = FilePart(_boundary(request.headers.get("Content-Type", "")))
    try:
        async with _store().upload(limit, max_pixels=settings.max_image_pixels) as upload:
            await _receive(part, upload, body_limit)
            image = await upload.finish()
    except TooLarge as error:
        raise ApiError(413, str(error)) from None
    except NotAnImage as error:
        raise ApiError(415, str(error)) from None
    log.info(
        "image stored",
        extra={"fields": {"user_id": claims.user_id, "file": image.filename, "size": image.size}},
    )
    return {
        "filename": image.filename,
        "url": image.url,
        "width": image.width,
        "height": image.height,
        "content_type": image.format.content_type,
        "size": image.size,
    }


@uploads.get("/media/<filename>")
async def media(filename: str) -> Response:
    store = _store()
    fmt = format_of_name(filename)
    if fmt is None or not await store.exists(filename):
        raise ApiError(404, "no such media file")
    # The name is unique and the bytes never change, so the name is a strong validator.
    etag = filename.partition(".")[0]
    if request.if_none_match.contains_weak(etag):
        response = Response(b"", status=304)
    else:
        data = await store.read(filename)
        if data is None:
            raise ApiError(404, "no such media file")
        response = Response(data, mimetype=fmt.content_type)
    response.set_etag(etag)
    response.headers["Cache-Control"] = CACHE_FOREVER
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
