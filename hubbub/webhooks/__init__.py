"""Webhooks: events POSTed to the product's backend (docs/integrations.md).

- ``storage/outbox_writes.py``: the outbox rows, written by the changes they report;
- ``sender.py``: the supervised child that sends them, one node at a time;
- ``payload.py``: an event's body; ``signing.py``: its signature; ``backoff.py``: retries.
"""

from hubbub.webhooks.sender import WebhookConfig, WebhookSender
from hubbub.webhooks.signing import EVENT_ID_HEADER, SIGNATURE_HEADER, signature, verify

__all__ = [
    "EVENT_ID_HEADER",
    "SIGNATURE_HEADER",
    "WebhookConfig",
    "WebhookSender",
    "signature",
    "verify",
]
