"""Liveness, readiness, the supervision tree and Prometheus metrics."""

from __future__ import annotations

from quart import Blueprint, Response

from hubbub.http.context import context
from hubbub.metrics import CONTENT_TYPE_LATEST

health = Blueprint("health", __name__)


@health.get("/health/live")
async def live() -> dict:
    return {"status": "ok"}


@health.get("/health/ready")
async def ready() -> tuple[dict, int]:
    ctx = context()
    checks = await ctx.readiness()
    status = 200 if all(checks.values()) else 503
    answer = {"status": "ready" if status == 200 else "unavailable", "checks": checks}
    if ctx.ops is not None:
        # Which node answered: behind a balancer, or among the workers of one port.
        answer["node"] = ctx.ops.node_id
    return answer, status


@health.get("/health/supervisor")
async def supervisor() -> dict:
    return context().supervisor_snapshot()


@health.get("/metrics")
async def metrics() -> Response:
    return Response(context().metrics.render(), content_type=CONTENT_TYPE_LATEST)
