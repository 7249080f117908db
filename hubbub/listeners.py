"""Listening sockets several processes share with ``SO_REUSEPORT`` (``--workers``).

With ``SO_REUSEPORT`` set before ``bind`` on every socket, Linux lets several processes
of one user listen on the same address and port, and spreads incoming connections over
the listening sockets by a hash of the connection's addresses and ports: each worker
has its own accept queue, and no worker hands connections to another.
"""

from __future__ import annotations

import socket

import trio

BACKLOG = 1024


def _configure(sock: socket.socket | trio.socket.SocketType, family: int) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    if family == socket.AF_INET6:
        # As trio.open_tcp_listeners does: "::" serves IPv6 only, 0.0.0.0 gets its own.
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)


async def open_shared_listeners(
    host: str, port: int, backlog: int = BACKLOG
) -> list[trio.SocketListener]:
    """Listen on every address of ``host`` at ``port`` with ``SO_REUSEPORT``, as
    ``trio.open_tcp_listeners`` would without it. Raises OSError (port taken by a socket
    without the option, bad address) before anything is returned."""
    infos = await trio.socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )
    listeners: list[trio.SocketListener] = []
    try:
        for family, kind, proto, _name, address in infos:
            sock = trio.socket.socket(family, kind, proto)
            try:
                _configure(sock, family)
                await sock.bind(address)
                sock.listen(backlog)
            except BaseException:
                sock.close()
                raise
            listeners.append(trio.SocketListener(sock))
    except BaseException:
        for listener in listeners:
            listener.socket.close()
        raise
    return listeners


def reserve_port(host: str) -> socket.socket:
    """A socket bound (not listening) with ``SO_REUSEPORT`` to a free port of ``host``:
    workers told ``--port 0`` share this port, and it stays reserved while the socket is
    open. A bound socket that never listens is given no connections."""
    family, kind, proto, _name, address = socket.getaddrinfo(
        host, 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        _configure(sock, family)
        sock.bind(address)
    except BaseException:
        sock.close()
        raise
    return sock
