"""``GET /openapi.json``: the description of document.py."""

from __future__ import annotations

from quart import Blueprint, Response

from hubbub.http.openapi.document import document_bytes

openapi = Blueprint("openapi", __name__)


@openapi.get("/openapi.json")
async def description() -> Response:
    # Built from data in memory (no file I/O): cheap enough for the event loop, and once.
    return Response(document_bytes(), content_type="application/json")
