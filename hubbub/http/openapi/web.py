"""The web chat's files: ``/`` and ``/web/{name}`` (web_routes.py)."""

from __future__ import annotations

from hubbub.http.openapi._parts import PUBLIC, TEXT, errors, operation
from hubbub.http.web_routes import CONTENT_TYPES

TAG = "web"

_IF_NONE_MATCH = {
    "name": "If-None-Match",
    "in": "header",
    "required": False,
    "description": "The ETag of the client's copy: 304 if it is current",
    "schema": TEXT,
}


def _file(description: str, types: list[str]) -> dict:
    return {
        "200": {
            "description": description,
            "headers": {"ETag": {"schema": TEXT}, "Cache-Control": {"schema": TEXT}},
            "content": {kind.split(";")[0]: {"schema": TEXT} for kind in types},
        },
        **errors(304),
    }


PATHS = {
    "/": {
        "get": operation(
            "web_chat",
            "The web chat's page (it signs in and talks to this server's API)",
            _file("The page", [CONTENT_TYPES[".html"]]),
            tag=TAG,
            security=PUBLIC,
            parameters=[_IF_NONE_MATCH],
            dependent=False,
        )
    },
    "/web/{name}": {
        "get": operation(
            "web_file",
            "One of the web chat's files (scripts, styles, images, manifest)",
            {
                **_file("The file", list(dict.fromkeys(CONTENT_TYPES.values()))),
                **errors(404),
            },
            tag=TAG,
            security=PUBLIC,
            parameters=[
                {
                    "name": "name",
                    "in": "path",
                    "required": True,
                    "description": "The file's name (any name the chat does not ship is 404)",
                    "schema": TEXT,
                },
                _IF_NONE_MATCH,
            ],
            dependent=False,
        )
    },
}
