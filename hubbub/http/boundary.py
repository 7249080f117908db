"""The app-wide half of the input rules in validation.py: what holds for every route
before its handler runs, whether or not the handler reads its input.

- Path ids: ``<int:...>`` means ``validation.IdConverter`` in every route.
- Body size: each request's body is capped where Quart buffers it, at ``BODY_LIMIT``, or,
  for a view marked ``streams_body`` (uploads), at the app's ``STREAM_BODY_LIMIT``. A
  declared ``Content-Length`` over the cap is 413 before the handler runs; a longer
  chunked body is 413 as soon as the handler reads past the cap, and is never buffered
  past it either way.
- Query arguments: none contains NUL (422).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from quart import request
from quart_trio import QuartTrio
from quart_trio.wrappers.request import TrioRequest
from werkzeug.exceptions import HTTPException

from hubbub.http.errors import ApiError
from hubbub.http.validation import BODY_LIMIT, IdConverter, refuse_nul

#: App config key: the body cap of the views marked ``streams_body``.
STREAM_BODY_LIMIT = "HUBBUB_STREAM_BODY_LIMIT"

View = TypeVar("View", bound=Callable[..., Any])


def streams_body(view: View) -> View:
    """Mark a view that reads its body as a stream and enforces its own limit, so that its
    requests are capped at ``STREAM_BODY_LIMIT`` rather than ``BODY_LIMIT``."""
    view.streams_body = True  # type: ignore[attr-defined]
    return view


def install_boundary(app: QuartTrio, *, stream_body_limit: int) -> None:
    """Apply the module's rules to ``app``. Call before registering any route."""
    app.url_map.converters["int"] = IdConverter
    app.config[STREAM_BODY_LIMIT] = stream_body_limit
    # What Quart's form parser allows; the request class below caps the body itself.
    app.config["MAX_CONTENT_LENGTH"] = BODY_LIMIT
    app.request_class = _capped_request_class(app)

    @app.before_request
    async def check_request() -> None:
        if not getattr(request, "streams_body", False):
            length = request.content_length
            if length is not None and length > BODY_LIMIT:
                raise ApiError(413, f"the request body is larger than {BODY_LIMIT} bytes")
        for name, value in request.args.items(multi=True):
            refuse_nul((name, value), "query arguments")


def _streams(app: QuartTrio, method: str, path: str) -> bool:
    try:
        endpoint, _args = app.url_map.bind("localhost").match(path, method)
    except HTTPException:  # no such route (404, 405, redirect): the default cap
        return False
    return bool(getattr(app.view_functions.get(endpoint), "streams_body", False))


def _capped_request_class(app: QuartTrio) -> type[TrioRequest]:
    class CappedRequest(TrioRequest):
        """A request whose body is capped according to the view it is for."""

        def __init__(self, method: str, scheme: str, path: str, *args: Any, **kwargs: Any):
            self.streams_body = _streams(app, method, path)
            limit = app.config[STREAM_BODY_LIMIT] if self.streams_body else BODY_LIMIT
            kwargs["max_content_length"] = limit
            super().__init__(method, scheme, path, *args, **kwargs)
            self.max_content_length = limit

    return CappedRequest
