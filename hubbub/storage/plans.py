"""v2 of the storage, written once for both backends: rich messages, the stream and the
conversation list, as ``sql.Plan``s (generators of statements) that each backend runs in
one transaction (``SqlStorage._plan``). Each part in its own module:

- ``stream_events.py``: appending events, positions in commit order, and the lock order
  every writer keeps;
- ``message_changes.py``: edit, delete, react, read and delivery, each with its event and
  the counters it keeps;
- ``stream_reads.py``: reading the stream and the conversation list, and sweeping;
- ``webhook_outbox.py``: the webhook outbox (its rows are written by the changes they
  report, ``outbox_writes.py``).
"""

from __future__ import annotations

from hubbub.storage.message_changes import MessageChanges
from hubbub.storage.stream_reads import StreamReads
from hubbub.storage.webhook_outbox import WebhookOutbox


class StreamStorage(MessageChanges, StreamReads, WebhookOutbox):
    """The v2 methods of ``Storage`` (and the v1 ones that share their writes) and the
    webhook outbox (``Webhooks``), on ``SqlStorage``'s plans: what a backend adds to them
    is ``SqlStorage``'s abstract methods and the rest of ``Storage``."""
