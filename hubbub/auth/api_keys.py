"""Server API keys: what a key looks like and how it is kept. Pure functions, no I/O.

A key is ``hbk_`` and 43 URL-safe characters (32 random bytes). The prefix makes a leaked
key easy to recognise (secret scanners, logs) and lets the API refuse a user's access
token, or anything else that is no key, without asking the database. Storage keeps only
the SHA-256 hex of the whole key: 256 random bits need no slow hash, and a hash costs
nothing per request.
"""

from __future__ import annotations

import hashlib
import re
import secrets

PREFIX = "hbk_"
_KEY = re.compile(rf"{PREFIX}[A-Za-z0-9_-]{{43}}")
#: What a key's name may be: what an operator can type and read back in a list.
NAME = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def new_key() -> str:
    """A fresh random key (shown once; only its hash is kept)."""
    return PREFIX + secrets.token_urlsafe(32)


def key_hash(key: str) -> str:
    """The SHA-256 hex digest storage keeps of ``key``."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def looks_like_key(token: str) -> bool:
    """Whether ``token`` has the shape of a key (a JWT, say, has not)."""
    return _KEY.fullmatch(token) is not None


def valid_name(name: str) -> bool:
    """1-64 characters of letters, digits, ``_ . : -``."""
    return NAME.fullmatch(name) is not None
