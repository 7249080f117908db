"""``/openapi.json``: this description itself (routes.py)."""

from __future__ import annotations

from hubbub.http.openapi._parts import PUBLIC, ok, operation

TAG = "meta"

PATHS = {
    "/openapi.json": {
        "get": operation(
            "openapi",
            "This OpenAPI 3.1 description of every HTTP endpoint",
            ok({"type": "object", "required": ["openapi", "paths"]}),
            tag=TAG,
            security=PUBLIC,
            dependent=False,
        )
    },
}
