"""Prometheus metrics, one registry per node so several nodes can share a process in tests.

docs/operations.md lists every series with its meaning and the alerts worth setting. The
hot paths observe at most once per frame or per batch (never per group member): the
project is benchmarked on server CPU per message. Those observed once per frame or per
message are ``metrics_hot``'s, which take no lock.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from hubbub.metrics_hot import HotMetrics

__all__ = ["CONTENT_TYPE_LATEST", "SLOW_CONSUMER_REASONS", "Metrics"]

#: Seconds, for waits that are usually a few milliseconds and alarming past a second.
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
#: Writes per commit: the storage writer takes at most 512 at a time.
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)

#: Why a connection was closed as a slow consumer (``hubbub_slow_consumers_closed``):
#: its outbound queue filled; it did not read what was queued within the ping timeout;
#: one socket write stayed stuck past the ping timeout (the keepalive's sweep).
SLOW_CONSUMER_REASONS = ("queue_full", "not_reading", "write_stuck")


class Metrics:
    """The counters and gauges a node exports at ``/metrics``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        hot = HotMetrics(self.registry)
        counter = functools.partial(Counter, registry=self.registry)
        self.connections = Gauge(
            "hubbub_ws_connections", "Open WebSocket connections", registry=self.registry
        )
        self.stream_position = Gauge(
            "hubbub_stream_position",
            "The stream position this node has dispatched up to (its lag: the storage head"
            " minus this)",
            registry=self.registry,
        )
        self.connections_total = counter(
            "hubbub_ws_connections_opened", "WebSocket connections opened"
        )
        self.frames_in = hot.counter("hubbub_ws_frames_in", "Frames received from clients")
        self.frames_out = hot.counter("hubbub_ws_frames_out", "Frames sent to clients")
        self.errors = counter(
            "hubbub_errors",
            "Refused frames and requests, by reason",
            ["reason"],
        )
        self.restarts = counter(
            "hubbub_actor_restarts",
            "Supervised children restarted, by supervisor",
            ["supervisor"],
        )
        self.messages_stored = hot.counter(
            "hubbub_messages_stored",
            "Messages committed to storage",
            ["kind"],
        )
        self.group_overflows = counter(
            "hubbub_group_mailbox_overflows",
            "Group events that found their GroupActor's mailbox full (members resync)",
        )
        self.slow_consumers = counter(
            "hubbub_slow_consumers_closed",
            "Connections closed (1013) because they could not keep up, by reason",
            ["reason"],
        )
        for reason in SLOW_CONSUMER_REASONS:
            self.slow_consumers.labels(reason)
        histogram = functools.partial(Histogram, registry=self.registry)
        self.commit_seconds = histogram(
            "hubbub_storage_commit_seconds",
            "Time to commit one storage-writer batch (all its writes, one transaction)",
            buckets=LATENCY_BUCKETS,
        )
        self.commit_batch_size = histogram(
            "hubbub_storage_commit_batch_size",
            "Writes in one storage-writer batch",
            buckets=BATCH_BUCKETS,
        )
        delivery = hot.histogram(
            "hubbub_delivery_seconds",
            "From a message send admitted by the node to its frames queued on this node's "
            "recipient connections (the stream tail's dispatch), by kind",
            ["kind"],
            buckets=LATENCY_BUCKETS,
        )
        # Bound once: the hot path observes without a label lookup.
        self.delivery = {kind: delivery.labels(kind) for kind in ("direct", "group")}
        self.ws_handshake_seconds = histogram(
            "hubbub_ws_handshake_seconds",
            "From a WebSocket connection handed to the endpoint to its session starting "
            "(upgrade and authentication)",
            buckets=LATENCY_BUCKETS,
        )
        self.http_request_seconds = histogram(
            "hubbub_http_request_seconds",
            "HTTP request time, by route template, method and status class",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
        )
        # With Redis only: events the other nodes missed live (they are in storage), and
        # the resyncs that fetch what was missed from there.
        self.bus_dropped = counter(
            "hubbub_bus_dropped",
            "Bus events that did not reach Redis (publish failed, timed out, or outbox full)",
        )
        self.bus_resyncs = counter(
            "hubbub_bus_resyncs",
            "Resyncs of local users and groups from storage, by cause "
            "(reconnect: this node's pub/sub connection came back; "
            "lost: another node announced events it could not publish)",
            ["cause"],
        )
        for cause in ("reconnect", "lost"):
            self.bus_resyncs.labels(cause)  # exported at 0 before the first one

        # Webhooks (with HUBBUB_WEBHOOK_URL): the outbox depth is the whole cluster's, as
        # last counted by this node; attempts and failures are this node's sends.
        self.webhook_outbox_depth = Gauge(
            "hubbub_webhook_outbox_depth",
            "Webhook events waiting to be delivered (the outbox's pending rows)",
            registry=self.registry,
        )
        self.webhook_attempts = counter(
            "hubbub_webhook_attempts",
            "Webhook POSTs made by this node, by outcome (delivered: a 2xx; rejected: "
            "another status; timeout; error: no answer, such as a refused connection)",
            ["outcome"],
        )
        for outcome in ("delivered", "rejected", "timeout", "error"):
            self.webhook_attempts.labels(outcome)
        self.webhook_failures = counter(
            "hubbub_webhook_failures", "Webhook POSTs that failed (to be retried, or given up)"
        )
        self.webhook_given_up = counter(
            "hubbub_webhook_given_up",
            "Webhook events given up after the retry horizon (HUBBUB_WEBHOOK_RETRY_HORIZON)",
        )

    def value(self, name: str, **labels: str) -> float:
        """One sample's current value (0 if it has none yet), as ``/metrics`` shows it."""
        found = self.registry.get_sample_value(name, labels)
        return 0.0 if found is None else found

    def quantiles(self, name: str, qs: Sequence[float]) -> dict[str, float | None] | None:
        """Estimates of the ``qs`` quantiles of histogram ``name`` since the node started,
        over all its labels (as ``histogram_quantile`` would, by linear interpolation in
        the bucket), with ``count``; None if there is no such histogram. A quantile in the
        ``+Inf`` bucket is the largest finite bound. With ``mean`` (None before any
        observation)."""
        buckets: dict[float, float] = {}
        total_sum = 0.0
        found = False
        for family in self.registry.collect():
            if family.name != name or family.type != "histogram":
                continue
            found = True
            for sample in family.samples:
                if sample.name == f"{name}_bucket":
                    bound = float(sample.labels["le"])
                    buckets[bound] = buckets.get(bound, 0.0) + sample.value
                elif sample.name == f"{name}_sum":
                    total_sum += sample.value
        if not found:
            return None
        bounds = sorted(buckets)
        total = buckets.get(math.inf, 0.0)
        out: dict[str, float | None] = {
            "count": total,
            "mean": total_sum / total if total else None,
        }
        for q in qs:
            out[f"p{round(q * 100)}"] = _quantile(q, bounds, buckets, total)
        return out

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _quantile(
    q: float, bounds: Sequence[float], cumulative: dict[float, float], total: float
) -> float | None:
    if total == 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = cumulative[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower
            if count == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return lower
