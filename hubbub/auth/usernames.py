"""What a username may be, and usernames made from what a product's token says: pure.

One rule for every way a user comes to be: sign-up checks a chosen name against
``USERNAME`` (``http/validation.check_username``); a user provisioned from a product's
token gets a name derived here, which always satisfies it.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import unicodedata
from collections.abc import Iterator

USERNAME = re.compile(r"[A-Za-z0-9_.-]{1,32}")
USERNAME_MAX = 32

_OUTSIDE = re.compile(r"[^A-Za-z0-9_.-]+")
_RUNS = re.compile(r"_{2,}")
#: Random suffixes tried once the derived names are all taken, before giving up.
RANDOM_ATTEMPTS = 5


def username_from(text: str) -> str | None:
    """``text`` made into a valid username, or None if nothing of it is left.

    Accents are dropped (``Zoë`` gives ``Zoe``), every other run of characters a username
    cannot hold becomes one ``_`` (``Ada Lovelace`` gives ``Ada_Lovelace``), leading and
    trailing ``_``, ``.`` and ``-`` go, and the result is cut to 32 characters."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    name = _RUNS.sub("_", _OUTSIDE.sub("_", ascii_text)).strip("_.-")
    name = name[:USERNAME_MAX].rstrip("_.-")
    return name or None


def _with_suffix(base: str, suffix: str) -> str:
    return f"{base[: USERNAME_MAX - len(suffix) - 1]}-{suffix}"


def username_candidates(hint: str | None, subject: str) -> Iterator[str]:
    """Usernames to try, in order, for the product's user ``subject`` whose token offered
    the name ``hint`` (``preferred_username`` or ``name``; None without one).

    First the hint made valid, else the subject made valid, else ``user-<hash>``; then that
    name with a suffix derived from the subject (the same on every node, so two nodes
    provisioning one user at once try the same names), then with random suffixes. Every
    candidate satisfies ``USERNAME``; the iterator ends after ``RANDOM_ATTEMPTS`` random
    ones."""
    digest = hashlib.sha256(subject.encode("utf-8", "surrogatepass")).hexdigest()
    base = (hint and username_from(hint)) or username_from(subject) or f"user-{digest[:10]}"
    yield base
    yield _with_suffix(base, digest[:6])
    for _ in range(RANDOM_ATTEMPTS):
        yield _with_suffix(base, secrets.token_hex(4))
