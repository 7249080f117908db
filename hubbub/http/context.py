"""What the HTTP handlers may reach: the node's services, nothing else."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

import attrs
import trio
from quart import current_app

from hubbub.auth.product_users import ProductSignIn
from hubbub.auth.tokens import TokenIssuer
from hubbub.config import Settings
from hubbub.http.errors import ApiError
from hubbub.http.throttle import LoginThrottle
from hubbub.metrics import Metrics
from hubbub.storage import Storage


class Names(Protocol):
    async def name(self, user_id: int) -> str | None: ...

    async def names(self, user_ids: Iterable[int]) -> dict[int, str]: ...


class ChatQueries(Protocol):
    """What HTTP handlers ask of the node's chat domain (``engine.chat.Chat`` is one)."""

    @property
    def directory(self) -> Names: ...

    async def is_online(self, user_id: int) -> bool: ...

    async def presence_of(self, user_id: int, viewer: int | None = None) -> Any: ...

    async def online_users(self, viewer: int | None = None) -> list[int]: ...

    async def blocks_changed(self, blocker_id: int, blocked_id: int) -> None: ...

    async def membership_changed(self, group_id: int, joined: int | None = None) -> None: ...

    async def sync(self, user_id: int, since: str, limit: int) -> dict[str, Any]: ...

    async def conversations(self, user_id: int, before: str | None, limit: int) -> dict: ...

    # The server API (api_*_routes.py).

    async def send_as(self, user_id: int, username: str, frame: Any) -> Any: ...

    async def disconnect(self, user_id: int) -> None: ...


@attrs.define
class OpsSources:
    """What the operator page reads besides the tree and metrics (``/ops/state``)."""

    node_id: str
    #: Every live node's entry; None when the registry (Redis) does not answer.
    live_nodes: Callable[[], Awaitable[list[dict[str, Any]] | None]]
    #: Open WebSocket sessions on this node.
    connections: Callable[[], int]
    #: When the node started, on the trio clock (for the page's uptime and rates).
    started: float = attrs.Factory(trio.current_time)


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
    #: The node's chat domain; None in a bare app (tests of HTTP alone).
    chat: ChatQueries | None = None
    #: Failed-login counts of this node (per process, see throttle.py).
    login_throttle: LoginThrottle = attrs.Factory(LoginThrottle)
    #: The operator page's sources; None in a bare app (its /ops data answers 503).
    ops: OpsSources | None = None
    #: With HUBBUB_JWT_PUBLIC_KEY_FILE or HUBBUB_JWKS_FILE: the product's own tokens.
    product_sign_in: ProductSignIn | None = None


def context() -> HttpContext:
    """The context of the app serving the current request."""
    return current_app.extensions["hubbub"]


def chat() -> ChatQueries:
    """The node's chat domain. An app served without one (HTTP tests of their own) has
    no chat to ask: its chat routes answer 503."""
    found = context().chat
    if found is None:
        raise ApiError(503, "chat is not running on this server")
    return found
