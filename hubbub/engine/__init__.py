"""The engine, in three layers, one folder each:

- ``runtime/``: the generic actor runtime (actors, OTP-style supervisors, the registry);
  it imports nothing else of hubbub.
- ``chat/``: the chat domain: what frames do, the user and group actors, the storage
  writer, and ``ports.py``, the narrow interfaces it needs from the outside.
- ``cluster/``: how nodes reach each other: the in-process and the Redis implementations
  of the chat ports.
"""
