"""The chat domain: what a session's frames do and who receives what.

It never imports the transport (``ws/``, ``http/``) nor the Redis implementations
(``engine/cluster/``): it talks to them through ``ports.py``.
"""
