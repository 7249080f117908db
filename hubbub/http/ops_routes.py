"""``/ops``: the operator page (static files from the package) and its data.

The page's HTML, script and style load without a credential (they hold no data); its
data, ``GET /ops/state``, needs the operator credential (``operator.require_operator``).
The files are read once, off the event loop, and kept: they are small and never change
while the node runs.
"""

from __future__ import annotations

from importlib import resources

import trio
from quart import Blueprint, Response

from hubbub.http.context import context
from hubbub.http.errors import ApiError
from hubbub.http.operator import require_operator
from hubbub.http.ops_state import gather_state

ops = Blueprint("ops", __name__)

#: The page's files, by the name they are served under, with their content type.
ASSETS = {
    "index.html": "text/html; charset=utf-8",
    "ops.js": "text/javascript; charset=utf-8",
    "ops.css": "text/css; charset=utf-8",
}
#: The page's files hold no secret, but a browser must not mix up two nodes' versions.
CACHE = "no-cache"
# Nothing but the page's own files: no inline script, no other origin.
SECURITY = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}

_cache: dict[str, bytes] = {}


def _read_asset(name: str) -> bytes:
    return resources.files("hubbub.web").joinpath("ops", name).read_bytes()


async def _asset(name: str) -> Response:
    content_type = ASSETS.get(name)
    if content_type is None:
        raise ApiError(404, "no such file")
    body = _cache.get(name)
    if body is None:
        body = _cache[name] = await trio.to_thread.run_sync(_read_asset, name)
    return Response(body, content_type=content_type, headers={"Cache-Control": CACHE, **SECURITY})


@ops.get("/ops")
async def page() -> Response:
    return await _asset("index.html")


@ops.get("/ops/assets/<name>")
async def asset(name: str) -> Response:
    return await _asset(name)


@ops.get("/ops/state")
async def state() -> tuple[dict, int, dict[str, str]]:
    await require_operator()
    ctx = context()
    if ctx.ops is None:
        raise ApiError(503, "the operator page's sources are not running on this server")
    return await gather_state(ctx), 200, {"Cache-Control": "no-store"}
