"""Shared pieces of the load scripts (``bench.direct``, ``bench.group``, ``bench.idle``)
and of the ADR 0001 transport experiment (``bench/decisions/0001/``).

Lean on purpose, because the load generator shares two cores with the server it
measures: plain non-blocking sockets on one epoll loop, the ``websockets`` Sans-I/O
client protocol, orjson, and no per-frame validation beyond what a figure needs.

- ``wire``: WebSocket connections driven by one selector loop.
- ``ready``: open many authenticated chat connections and wait for each ``pong``.
- ``users``, ``groups``: create (or log back in) deterministic bench users and groups.
- ``load_loop``: the event loop of a load process (windows, rate, answers), with
  ``pairs`` (direct messages) and ``group_load`` (group fan-out) as its two uses.
- ``procstat``: server CPU and RSS from ``/proc``, the harness's own CPU, fd limits.
- ``workers``: split a load over processes that start together.
- ``cli``: the load scripts' shared options, run and figures.
- ``report``: percentiles and printing figures (text and JSON).
"""
