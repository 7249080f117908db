"""HTTP request time by route, for ``hubbub_http_request_seconds``.

Labelled by the matched route's template (``/groups/<int:group_id>/messages``), never the
raw path, so the series stay few whatever ids clients send; a request no route matches is
``unmatched``. The status is its class (``2xx``, ``4xx``, ``5xx``): enough to alert on
errors by route without a series per status code.
"""

from __future__ import annotations

import trio
from quart import Response, g, request
from quart_trio import QuartTrio

from hubbub.metrics import Metrics

UNMATCHED = "unmatched"


def route_of_request() -> str:
    """The template of the route serving the current request, or ``unmatched``."""
    rule = request.url_rule
    return rule.rule if rule is not None else UNMATCHED


def install_request_metrics(app: QuartTrio, metrics: Metrics) -> None:
    """Time every request of ``app`` from before its first ``before_request`` hook to its
    response. Call before any other ``before_request`` is registered, so a request
    refused by one (413, 422) is timed too."""

    @app.before_request
    async def start_timer() -> None:
        g.hubbub_started = trio.current_time()

    @app.after_request
    async def observe(response: Response) -> Response:
        started = g.get("hubbub_started")
        if started is not None:
            metrics.http_request_seconds.labels(
                route_of_request(), request.method, f"{response.status_code // 100}xx"
            ).observe(trio.current_time() - started)
        return response
