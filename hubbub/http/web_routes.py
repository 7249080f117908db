"""The web chat: the files of ``hubbub/web/static`` at ``/`` and ``/web/<name>``.

Only the files the package ships are served: their names are read once from the package
and a request names one of them or gets 404, so no path a client sends ever reaches the
file system (no traversal). Responses revalidate (``no-cache`` with a strong ETag): the
names are not fingerprinted, so a browser must never run yesterday's app.js against
today's index.html.
"""

from __future__ import annotations

import hashlib
import re
from importlib import resources
from importlib.resources.abc import Traversable

import attrs
import trio
from quart import Blueprint, request
from quart.wrappers import Response

from hubbub.http.errors import ApiError

web = Blueprint("web", __name__)

PACKAGE = "hubbub.web"
INDEX = "index.html"
CACHE_CONTROL = "no-cache"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".webmanifest": "application/manifest+json",
}
#: A Host header this safe may be named in the CSP; anything else falls back to 'self'.
_SAFE_HOST = re.compile(r"[A-Za-z0-9.\-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")


@attrs.frozen
class Asset:
    body: bytes
    content_type: str
    etag: str


def load_assets(root: Traversable) -> dict[str, Asset]:
    """Every file directly in ``root`` whose suffix has a known content type, by name."""
    assets = {}
    for entry in root.iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        if not entry.is_file() or suffix not in CONTENT_TYPES:
            continue
        body = entry.read_bytes()
        etag = hashlib.sha256(body).hexdigest()[:32]
        assets[entry.name] = Asset(body, CONTENT_TYPES[suffix], etag)
    return assets


def content_security_policy(host: str | None) -> str:
    """The page may load only its own scripts, styles and images (plus ``blob:`` and
    ``data:`` images: previews of an upload before it is sent), and talk only to its own
    origin, over HTTP and WebSocket. ``host`` is the request's Host header."""
    connect = "'self'"
    if host and _SAFE_HOST.fullmatch(host):
        # CSP3 lets 'self' cover ws(s) to the same host; older engines need it spelled out.
        connect += f" ws://{host} wss://{host}"
    return "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' blob: data:",
            f"connect-src {connect}",
            "manifest-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        )
    )


class _Assets:
    """The package's files, read once (in a worker thread: file I/O stays off the loop)."""

    def __init__(self) -> None:
        self._loaded: dict[str, Asset] | None = None

    async def get(self, name: str) -> Asset | None:
        if self._loaded is None:
            root = resources.files(PACKAGE) / "static"
            self._loaded = await trio.to_thread.run_sync(load_assets, root)
        return self._loaded.get(name)


_assets = _Assets()


async def _serve(name: str) -> Response:
    asset = await _assets.get(name)
    if asset is None:
        raise ApiError(404, "no such file")
    if request.if_none_match.contains(asset.etag):
        response = Response(b"", status=304)
    else:
        response = Response(asset.body, content_type=asset.content_type)
    response.set_etag(asset.etag)
    response.headers["Cache-Control"] = CACHE_CONTROL
    response.headers["Content-Security-Policy"] = content_security_policy(request.host)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@web.get("/")
async def index() -> Response:
    return await _serve(INDEX)


@web.get("/web/<name>")
async def web_file(name: str) -> Response:
    return await _serve(name)
