"""Shared pieces of the load scripts (``bench.direct``, ``bench.idle``).

Lean on purpose, because the load generator shares two cores with the server it
measures: plain non-blocking sockets on one epoll loop, the ``websockets`` Sans-I/O
client protocol, orjson, and no per-frame validation beyond what a figure needs.

- ``wire``: WebSocket connections driven by one selector loop.
- ``ready``: open many authenticated chat connections and wait for each ``pong``.
- ``users``: create (or log back in) deterministic bench users.
- ``procstat``: server CPU and RSS from ``/proc``, the harness's own CPU, fd limits.
- ``workers``: split a load over processes that start together.
- ``report``: percentiles and printing figures (text and JSON).
"""
