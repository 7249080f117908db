"""``/ws/chat``: the handshake, authentication, then a Session for the connection."""

from __future__ import annotations

import logging
import time

import attrs
import trio

from hubbub.auth.product_users import OWN_REFUSAL, ProductSignIn
from hubbub.auth.tokens import Claims, InvalidToken, TokenIssuer
from hubbub.config import Settings
from hubbub.metrics import Metrics
from hubbub.storage import Storage, StorageError
from hubbub.ws.connection import WebSocketConnection
from hubbub.ws.flusher import SocketFlusher
from hubbub.ws.handshake import find_credentials
from hubbub.ws.keepalive import Keepalive
from hubbub.ws.session import (
    CLOSE_INTERNAL,
    CLOSE_POLICY,
    CLOSE_SERVICE_RESTART,
    FrameHandler,
    Session,
)
from hubbub.ws.upgrade import upgrade

log = logging.getLogger("hubbub.ws")

MAX_FRAME_BYTES = 64 * 1024
HANDSHAKE_TIMEOUT = 10.0
TOO_MANY_CONNECTIONS = "too many connections"


@attrs.frozen
class _Authenticated:
    user_id: int
    username: str
    #: The access token's ``exp``, on the trio clock the Keepalive sweeps by.
    expires_at: float


@attrs.define(kw_only=True, eq=False)
class ChatEndpoint:
    """Accepts WebSocket connections for the chat protocol."""

    settings: Settings
    tokens: TokenIssuer
    storage: Storage
    metrics: Metrics
    handler: FrameHandler
    keepalive: Keepalive
    #: Writes the sessions' frames (run by the node beside the keepalive).
    flusher: SocketFlusher
    #: With HUBBUB_JWT_PUBLIC_KEY_FILE or HUBBUB_JWKS_FILE: the product's own tokens.
    product_sign_in: ProductSignIn | None = None
    #: Every open session, for a node that drains.
    sessions: set[Session] = attrs.field(factory=set, init=False)
    #: Set by a node that drains: a connection that completes its handshake now is
    #: closed at once with 1012 (service restart), to reconnect elsewhere.
    draining: bool = attrs.field(default=False, init=False)
    _none_left: trio.Event = attrs.field(factory=trio.Event, init=False)
    #: Live sessions per user on this node (users with none are left out), for
    #: ``max_connections_per_user``.
    _live: dict[int, int] = attrs.field(factory=dict, init=False)

    async def serve(self, stream: trio.SocketStream, already_read: bytes) -> None:
        """Serve one connection to its end. Never raises (but for cancellation).

        A user already holding ``max_connections_per_user`` sessions on this node has the
        new connection accepted, then closed with 1008 ``too many connections``; the
        sessions already open are left alone."""
        started = trio.current_time()
        accepted = await self._handshake(stream, already_read)
        del already_read  # not kept for the session's life
        if accepted is None:
            with trio.CancelScope(shield=True):
                await stream.aclose()
            return
        connection, token, since = accepted
        user = await self._authenticate(token)
        del accepted, token  # not kept for the session's life (~0.4 KiB with the tuple)
        if isinstance(user, str):
            self.metrics.errors.labels("unauthenticated").inc()
            log.info("connection refused", extra={"fields": {"reason": user}})
            code = CLOSE_INTERNAL if user == "storage unavailable" else CLOSE_POLICY
            await connection.close(code, user)
            return
        if self.draining:
            await connection.close(CLOSE_SERVICE_RESTART, "service restart")
            return
        # No await between the count and its increment: two connections racing for the
        # last slot cannot both take it.
        live = self._live.get(user.user_id, 0)
        if live >= self.settings.max_connections_per_user:
            self.metrics.errors.labels(TOO_MANY_CONNECTIONS).inc()
            log.info(
                "connection refused",
                extra={"fields": {"user_id": user.user_id, "reason": TOO_MANY_CONNECTIONS}},
            )
            await connection.close(CLOSE_POLICY, TOO_MANY_CONNECTIONS)
            return
        self._live[user.user_id] = live + 1
        self.metrics.ws_handshake_seconds.observe(trio.current_time() - started)
        session = Session(
            connection,
            user.user_id,
            user.username,
            token_expires_at=user.expires_at,
            settings=self.settings,
            metrics=self.metrics,
            handler=self.handler,
            flusher=self.flusher,
            since=since,
        )
        self.keepalive.watch(session)
        self.sessions.add(session)
        try:
            await session.run()
        finally:
            self.sessions.discard(session)
            self.keepalive.forget(session)
            self._release(user.user_id)
            if not self.sessions:
                self._none_left.set()

    async def wait_all_closed(self) -> None:
        """Return once no session is open."""
        while self.sessions:
            self._none_left = trio.Event()
            await self._none_left.wait()

    def _release(self, user_id: int) -> None:
        remaining = self._live[user_id] - 1
        if remaining:
            self._live[user_id] = remaining
        else:
            # Not kept at zero: the dict holds only users connected now.
            del self._live[user_id]

    async def _handshake(
        self, stream: trio.SocketStream, already_read: bytes
    ) -> tuple[WebSocketConnection, str | None, str | None] | None:
        """Accept the upgrade; the connection and the offered token, or None if the
        handshake failed. Its own function so the request and its headers are freed
        before the long life of the session."""
        accepted = await upgrade(stream, already_read, HANDSHAKE_TIMEOUT)
        if accepted is None:
            return None
        request = accepted.request
        credentials = find_credentials(
            request.path,
            request.headers.get("Authorization"),
            [
                value.strip()
                for header in request.headers.get_all("Sec-WebSocket-Protocol")
                for value in header.split(",")
                if value.strip()
            ],
        )
        # Messages over 64 KiB close the connection with 1009.
        connection = WebSocketConnection(stream, accepted.after, MAX_FRAME_BYTES)
        return connection, credentials.token, credentials.since

    async def _authenticate(self, token: str | None) -> _Authenticated | str:
        """Who the token is for, and until when; or the reason the connection is refused."""
        if token is None:
            return "missing token"
        try:
            claims = await self._claims(token)
            user = await self.storage.user_by_id(claims.user_id)
        except InvalidToken as refusal:
            return str(refusal)
        except StorageError:
            return "storage unavailable"
        if user is None:
            return "unknown user"
        # ``exp`` is wall-clock time; the sweep runs on the trio clock, which does not jump
        # with the wall clock. Converted once, here.
        expires_at = trio.current_time() + (claims.expires_at - time.time())
        return _Authenticated(user.id, user.username, expires_at)

    async def _claims(self, token: str) -> Claims:
        """hubbub's own access token's claims, else (if configured) the product token's,
        its user provisioned if new. Raises ``InvalidToken`` (the close reason) or
        ``StorageError``."""
        try:
            return self.tokens.verify(token, "access")
        except InvalidToken:
            if self.product_sign_in is None:
                raise InvalidToken(OWN_REFUSAL) from None
        return await self.product_sign_in.authenticate(token)
