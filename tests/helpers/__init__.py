"""Plain modules the tests share (the conftest files hold fixtures only).

- ``chat``: frame predicates and readers (``frames_until``, ``drain``, ``attached``,
  ``counts``). Sending and waiting for the answer is ``ChatClient.send_direct`` /
  ``send_group`` / ``receive_answer`` in hubbub/client.py.
- ``burst``: a burst of direct messages and what its sender saw (``Burst``).
- ``polling``: ``poll_until``, for states with no event to wait on.
- ``users``: fresh users (``register``, ``UserMaker``).
- ``views``: what a node shows: history, presence, supervision tree, metrics, its log.
- ``nodes``: a node in this process (``running_node``) or as a subprocess (``node_process``).
- ``cluster``: three node subprocesses on one PostgreSQL and Redis (``Cluster``).
- ``servers``: throwaway PostgreSQL and Redis servers.
- ``images``: real images made with Pillow.
"""
