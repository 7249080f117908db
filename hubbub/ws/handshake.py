"""Where a WebSocket client put its token: pure functions over the upgrade request."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import parse_qs, urlsplit

import attrs
from websockets.server import ServerProtocol
from websockets.typing import Subprotocol

from hubbub.auth.tokens import bearer_token

CHAT_PATH = "/ws/chat"


@attrs.frozen
class Credentials:
    """The token a client offered, and the subprotocol to echo (the seed's way)."""

    token: str | None
    subprotocol: str | None
    #: ``?since=``: where the client resumes its stream (None: a v1 connection).
    since: str | None = None


def is_chat_upgrade(method: str, target: str) -> bool:
    """True for a request line that asks for the chat endpoint."""
    return method == "GET" and urlsplit(target).path.rstrip("/") == CHAT_PATH


def find_credentials(
    target: str, authorization: str | None, subprotocols: Sequence[str]
) -> Credentials:
    """Query ``?token=`` first, then ``Authorization: Bearer``, then the first
    ``Sec-WebSocket-Protocol`` value. The offered subprotocol is echoed whichever was
    used, because browsers fail a handshake whose offered protocol is not answered."""
    echo = subprotocols[0] if subprotocols else None
    query = parse_qs(urlsplit(target).query)
    offered = query.get("token")
    token: str | None = offered[0] if offered else None
    if not token:
        token = bearer_token(authorization)
    if not token:
        token = echo
    resume = query.get("since")
    return Credentials(token or None, echo, resume[0] if resume else None)


def echo_first_offered(
    protocol: ServerProtocol, offered: Sequence[Subprotocol]
) -> Subprotocol | None:
    """``ServerProtocol(select_subprotocol=...)``: accept the first subprotocol offered,
    whatever it is, as ``find_credentials`` reports it (the seed's clients offer their
    token there and browsers fail a handshake whose offer goes unanswered)."""
    return offered[0] if offered else None
