"""What the HTTP handlers may reach: the node's services, nothing else."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import attrs
from quart import current_app

from hubbub.auth.tokens import TokenIssuer
from hubbub.config import Settings
from hubbub.http.throttle import LoginThrottle
from hubbub.metrics import Metrics
from hubbub.storage import Storage


@attrs.define
class HttpContext:
    settings: Settings
    storage: Storage
    tokens: TokenIssuer
    metrics: Metrics
    #: The live supervision tree, as ``/health/supervisor`` serves it.
    supervisor_snapshot: Callable[[], dict[str, Any]]
    #: Each dependency's readiness: ``{"storage": True, "redis": False}``.
    readiness: Callable[[], Awaitable[dict[str, bool]]]
    #: Node-side chat services (presence, ...), set by the node; None in a bare app.
    chat: Any = None
    #: Failed-login counts of this node (per process, see throttle.py).
    login_throttle: LoginThrottle = attrs.Factory(LoginThrottle)


def context() -> HttpContext:
    """The context of the app serving the current request."""
    return current_app.extensions["hubbub"]
