"""Prometheus metrics, one registry per node so several nodes can share a process in tests."""

from __future__ import annotations

import functools

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]


class Metrics:
    """The counters and gauges a node exports at ``/metrics``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        counter = functools.partial(Counter, registry=self.registry)
        self.connections = Gauge(
            "hubbub_ws_connections", "Open WebSocket connections", registry=self.registry
        )
        self.connections_total = counter(
            "hubbub_ws_connections_opened", "WebSocket connections opened"
        )
        self.frames_in = counter("hubbub_ws_frames_in", "Frames received from clients")
        self.frames_out = counter("hubbub_ws_frames_out", "Frames sent to clients")
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
        self.messages_stored = counter(
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
            "Connections closed because they could not keep up",
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

    def render(self) -> bytes:
        return generate_latest(self.registry)
