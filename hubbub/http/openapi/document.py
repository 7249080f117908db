"""The OpenAPI 3.1 document, assembled from one module per area of the HTTP surface.

To describe a new endpoint: add its path to the ``PATHS`` of its area's module (or a
new module, listed in ``AREAS``), with the helpers of ``_parts``. tests/test_openapi.py
fails, naming the operation, for any route of the app missing here and for any operation
here that no route serves.
"""

from __future__ import annotations

import functools
from types import ModuleType
from typing import Any

import orjson

from hubbub import __version__
from hubbub.http.openapi import (
    api,
    auth,
    groups,
    health,
    messages,
    meta,
    ops,
    schemas,
    stream,
    uploads,
    users,
    web,
)

#: Every area, in the order the document lists them.
AREAS: tuple[ModuleType, ...] = (
    auth,
    users,
    messages,
    groups,
    stream,
    uploads,
    web,
    api,
    health,
    ops,
    meta,
)

SECURITY_SCHEMES = {
    "accessToken": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "The access_token of POST /auth/login or /auth/refresh.",
    },
    "refreshToken": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "The refresh_token of POST /auth/login or /auth/refresh (spent once).",
    },
    "opsToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "The operator credential, HUBBUB_OPS_TOKEN (docs/operations.md).",
    },
    "apiKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "A server API key, of `hubbub api-key create` (docs/integrations.md).",
    },
}

DESCRIPTION = (
    'Every HTTP endpoint of a hubbub node. Error answers are JSON `{"detail"}` with a 4xx '
    "or 5xx status. The WebSocket protocol (`/ws/chat`) is described in docs/protocol.md; "
    "the input rules and limits in docs/http.md."
)


def build_document() -> dict[str, Any]:
    """The whole document. Raises ``ValueError`` if two areas describe the same path or
    name the same schema (one would silently replace the other)."""
    paths: dict[str, Any] = {}
    components: dict[str, Any] = dict(schemas.SCHEMAS)
    for area in AREAS:
        _merge(paths, area.PATHS, f"path in {area.__name__}")
        _merge(components, getattr(area, "SCHEMAS", {}), f"schema in {area.__name__}")
    return {
        "openapi": "3.1.0",
        "info": {"title": "hubbub", "version": __version__, "description": DESCRIPTION},
        "tags": [{"name": area.TAG} for area in AREAS],
        "paths": paths,
        "components": {"schemas": components, "securitySchemes": SECURITY_SCHEMES},
    }


@functools.cache
def document_bytes() -> bytes:
    """The document as JSON, built once per process (it never changes while it runs)."""
    return orjson.dumps(build_document())


def _merge(into: dict[str, Any], more: dict[str, Any], what: str) -> None:
    for key, value in more.items():
        if key in into:
            raise ValueError(f"duplicate {what}: {key}")
        into[key] = value
