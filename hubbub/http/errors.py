"""HTTP errors as docs/contract.md wants them: a status and ``{"detail": "..."}``."""

from __future__ import annotations

import logging

from quart import Quart, jsonify, request
from werkzeug.exceptions import HTTPException

from hubbub.storage.errors import InvalidData, StorageUnavailable

log = logging.getLogger("hubbub.http")


class ApiError(Exception):
    """Raise from a handler to answer ``status`` with ``detail``."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}


def install_error_handlers(app: Quart) -> None:
    """Every error answer is JSON with ``detail``; each is logged once."""

    @app.errorhandler(ApiError)
    async def api_error(error: ApiError):  # type: ignore[no-untyped-def]
        log.info(
            "request refused", extra={"fields": {"status": error.status, "detail": error.detail}}
        )
        return jsonify({"detail": error.detail}), error.status, error.headers

    @app.errorhandler(HTTPException)
    async def http_error(error: HTTPException):  # type: ignore[no-untyped-def]
        status = error.code or 500
        detail = error.description or error.name
        if status == 413:
            detail = f"the request body is larger than {request.max_content_length} bytes"
        log.info("request refused", extra={"fields": {"status": status, "detail": detail}})
        # The exception's own headers (a 405's Allow, which RFC 9110 requires), not its
        # Content-Type: the body is JSON.
        headers = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
        return jsonify({"detail": detail}), status, headers

    @app.errorhandler(Exception)
    async def unexpected(error: Exception):  # type: ignore[no-untyped-def]
        if isinstance(error, StorageUnavailable):
            log.warning("storage unavailable", extra={"fields": {"error": str(error)}})
            return jsonify({"detail": "storage unavailable, try again shortly"}), 503
        if isinstance(error, InvalidData):
            # The boundary should have refused it first; the storage layer's own check is
            # the backstop, and it is still the client's input, not a server fault.
            log.info("request refused", extra={"fields": {"status": 422, "detail": str(error)}})
            return jsonify({"detail": f"invalid input: {error}"}), 422
        log.exception("unhandled error in request")
        return jsonify({"detail": "internal server error"}), 500
