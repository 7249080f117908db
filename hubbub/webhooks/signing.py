"""Signing a webhook body: ``X-Hubbub-Signature: sha256=<hex HMAC-SHA256 of the body>``."""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Hubbub-Signature"
EVENT_ID_HEADER = "X-Hubbub-Event-Id"


def signature(secret: str, body: bytes) -> str:
    """The header value for ``body``: ``sha256=`` and the lowercase hex HMAC-SHA256 of the
    exact bytes sent, keyed with ``secret`` (UTF-8)."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, body: bytes, header: str | None) -> bool:
    """Whether ``header`` is the signature of ``body`` under ``secret`` (constant time):
    what a receiver checks before it trusts the body."""
    return header is not None and hmac.compare_digest(signature(secret, body), header)
