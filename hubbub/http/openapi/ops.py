"""``/ops``: the operator page and its data (ops_routes.py)."""

from __future__ import annotations

from hubbub.http.openapi._parts import (
    API_KEY,
    OPS,
    PUBLIC,
    TEXT,
    errors,
    nullable,
    obj,
    ok,
    operation,
    ref,
)
from hubbub.http.ops_routes import ASSETS

TAG = "ops"

_NUMBER = {"type": "number"}

SCHEMAS = {
    "OpsState": obj(
        {
            "node_id": nullable(TEXT),
            "time": _NUMBER,
            "uptime": nullable(_NUMBER),
            "ready": {"type": "boolean"},
            "checks": {"type": "object", "additionalProperties": {"type": "boolean"}},
            "check_ms": _NUMBER,
            "storage": obj({"backend": TEXT, "ok": nullable({"type": "boolean"})}),
            "redis": obj({"configured": {"type": "boolean"}, "ok": nullable({"type": "boolean"})}),
            "connections": {"type": "integer", "minimum": 0},
            "counters": {"type": "object", "additionalProperties": _NUMBER},
            "latency": {"type": "object"},
            "nodes": nullable({"type": "array", "items": {"type": "object"}}),
            "tree": ref("SupervisionNode"),
        }
    ),
}


PATHS = {
    "/ops": {
        "get": operation(
            "ops_page",
            "The operator page (HTML; its data needs the operator credential)",
            {"200": {"description": "The page", "content": {"text/html": {"schema": TEXT}}}},
            tag=TAG,
            security=PUBLIC,
            dependent=False,
        )
    },
    "/ops/assets/{name}": {
        "get": operation(
            "ops_asset",
            "One of the operator page's files",
            {
                "200": {
                    "description": "The file",
                    "content": {
                        ASSETS[name].split(";")[0]: {"schema": TEXT}
                        for name in ASSETS
                        if name != "index.html"
                    },
                },
                **errors(404),
            },
            tag=TAG,
            security=PUBLIC,
            parameters=[
                {
                    "name": "name",
                    "in": "path",
                    "required": True,
                    "description": "The file's name (any other name is 404)",
                    "schema": {"type": "string"},
                }
            ],
            dependent=False,
        )
    },
    "/ops/state": {
        "get": operation(
            "ops_state",
            "What the operator page shows: readiness, counters, latencies, nodes, the tree",
            ok(ref("OpsState")),
            tag=TAG,
            security=[*OPS, *API_KEY],
            description="Needs Authorization: Bearer <HUBBUB_OPS_TOKEN> or a live server "
            "API key; 401 (with "
            "WWW-Authenticate) without it. Never fails for a dependency being down: its "
            "check says false.",
        )
    },
}
