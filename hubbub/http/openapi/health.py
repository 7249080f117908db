"""Liveness, readiness, the supervision tree and metrics (health_routes.py)."""

from __future__ import annotations

from hubbub.http.openapi._parts import (
    PUBLIC,
    TEXT,
    json_content,
    nullable,
    obj,
    ok,
    operation,
    ref,
)

TAG = "health"

_CHECKS = {"type": "object", "additionalProperties": {"type": "boolean"}}
_READINESS = obj(
    {"status": {"type": "string", "enum": ["ready", "unavailable"]}, "checks": _CHECKS},
    # Which node answered (behind a balancer, or among the workers of one port).
    {"node": nullable(TEXT)},
)

SCHEMAS = {
    "SupervisionNode": obj(
        {
            "name": TEXT,
            "state": TEXT,
            "restarts": {"type": "integer", "minimum": 0},
            "mailbox_depth": {"type": "integer", "minimum": 0},
            "children": {"type": "array", "items": ref("SupervisionNode")},
        }
    ),
}

PATHS = {
    "/health/live": {
        "get": operation(
            "live",
            "200 while the process runs",
            ok(obj({"status": {"type": "string", "const": "ok"}})),
            tag=TAG,
            security=PUBLIC,
            dependent=False,
        )
    },
    "/health/ready": {
        "get": operation(
            "ready",
            "Whether storage and (if configured) Redis are reachable",
            {
                **ok(_READINESS, "Every dependency answers"),
                "503": {
                    "description": "A dependency does not answer, or the node is draining",
                    "content": json_content(_READINESS),
                },
            },
            tag=TAG,
            security=PUBLIC,
            dependent=False,
        )
    },
    "/health/supervisor": {
        "get": operation(
            "supervisor",
            "The live supervision tree",
            ok(ref("SupervisionNode")),
            tag=TAG,
            security=PUBLIC,
            dependent=False,
        )
    },
    "/metrics": {
        "get": operation(
            "metrics",
            "Prometheus metrics, in the text exposition format",
            {
                "200": {
                    "description": "The node's metrics",
                    "content": {"text/plain": {"schema": TEXT}},
                }
            },
            tag=TAG,
            security=PUBLIC,
            dependent=False,
        )
    },
}
