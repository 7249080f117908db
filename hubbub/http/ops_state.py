"""What the operator page shows, gathered in one JSON document (``GET /ops/state``).

Counters are totals since the node started, with the node's ``uptime`` beside them: the
page derives rates from two successive polls, so the server keeps no windows of its own.
"""

from __future__ import annotations

import time
from typing import Any

import trio

from hubbub.http.context import HttpContext
from hubbub.metrics import SLOW_CONSUMER_REASONS, Metrics

#: Longest the node list may take to read from Redis before the page is answered without.
NODES_TIMEOUT = 1.0

#: The counters the page shows (and rates), by the key the page knows them as.
COUNTERS = {
    "frames_in": ("hubbub_ws_frames_in_total", {}),
    "frames_out": ("hubbub_ws_frames_out_total", {}),
    "connections_opened": ("hubbub_ws_connections_opened_total", {}),
    "direct_stored": ("hubbub_messages_stored_total", {"kind": "direct"}),
    "group_stored": ("hubbub_messages_stored_total", {"kind": "group"}),
    "bus_dropped": ("hubbub_bus_dropped_total", {}),
    "resyncs_reconnect": ("hubbub_bus_resyncs_total", {"cause": "reconnect"}),
    "resyncs_lost": ("hubbub_bus_resyncs_total", {"cause": "lost"}),
    "group_overflows": ("hubbub_group_mailbox_overflows_total", {}),
}

LATENCIES = {
    "commit": "hubbub_storage_commit_seconds",
    "delivery": "hubbub_delivery_seconds",
    "handshake": "hubbub_ws_handshake_seconds",
    "http": "hubbub_http_request_seconds",
    "batch_size": "hubbub_storage_commit_batch_size",
}


def counters(metrics: Metrics) -> dict[str, float]:
    """The page's counters, by its keys, plus the slow-consumer closes by reason."""
    found = {key: metrics.value(name, **labels) for key, (name, labels) in COUNTERS.items()}
    for reason in SLOW_CONSUMER_REASONS:
        found[f"slow_{reason}"] = metrics.value("hubbub_slow_consumers_closed_total", reason=reason)
    return found


async def gather_state(ctx: HttpContext) -> dict[str, Any]:
    """The operator page's document. Never raises for a dependency being down: its
    check says False (storage, Redis), or the node list is None."""
    checked = trio.current_time()
    checks = await ctx.readiness()
    check_ms = (trio.current_time() - checked) * 1000
    ops = ctx.ops
    nodes = None
    if ops is not None:
        with trio.move_on_after(NODES_TIMEOUT):
            nodes = await ops.live_nodes()
    metrics = ctx.metrics
    return {
        "node_id": ops.node_id if ops is not None else None,
        "time": time.time(),
        "uptime": trio.current_time() - ops.started if ops is not None else None,
        "ready": all(checks.values()),
        "checks": checks,
        "check_ms": round(check_ms, 2),
        "storage": {"backend": ctx.storage.backend, "ok": checks.get("storage")},
        "redis": {
            "configured": ctx.settings.redis_url is not None,
            "ok": checks.get("redis"),
        },
        "connections": ops.connections() if ops is not None else 0,
        "counters": counters(metrics),
        "latency": {
            key: metrics.quantiles(name, (0.5, 0.9, 0.99)) for key, name in LATENCIES.items()
        },
        "nodes": nodes,
        "tree": ctx.supervisor_snapshot(),
    }
