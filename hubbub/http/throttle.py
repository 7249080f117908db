"""Failed-login throttling, per username and per client address, in this process.

Each key (a username, an address) counts its failed logins. Once a key has failed
``threshold`` times it is locked for ``base_lockout`` seconds; each further failure after a
lock-out ends locks it again for twice as long as the last, up to ``max_lockout``. An
attempt counts as a failure from the moment it starts until it succeeds, so a burst of
concurrent guesses is throttled like the same guesses one after another. While a
key is locked every login attempt with it is refused (429) without checking the password,
so a guess during a lock-out learns nothing. A key forgets its failures ``window`` seconds
after the last one; a successful login forgets the username's failures at once (not the
address's: one valid account must not reset a guesser's address).

Per node: counts live in this process only, so with N nodes behind a load balancer an
attacker gets up to N times the attempts, and a restart forgets them. The number of keys
remembered is bounded (least recently failed forgotten first).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable

import attrs

#: Username failures before the first lock-out.
USERNAME_THRESHOLD = 5
#: Address failures before the first lock-out: higher, since many users may share one
#: address (NAT, a proxy in front of the nodes).
ADDRESS_THRESHOLD = 20
BASE_LOCKOUT = 30.0
MAX_LOCKOUT = 15 * 60.0
WINDOW = 60 * 60.0
MAX_KEYS = 100_000


@attrs.define
class _Failures:
    count: int = 0
    last: float = 0.0
    locked_until: float = 0.0


@attrs.define
class LoginThrottle:
    """The throttle's state and rules; ``clock`` is monotonic seconds (injectable for tests)."""

    username_threshold: int = USERNAME_THRESHOLD
    address_threshold: int = ADDRESS_THRESHOLD
    base_lockout: float = BASE_LOCKOUT
    max_lockout: float = MAX_LOCKOUT
    window: float = WINDOW
    max_keys: int = MAX_KEYS
    clock: Callable[[], float] = time.monotonic
    _keys: OrderedDict[tuple[str, str], _Failures] = attrs.field(factory=OrderedDict, init=False)

    def attempt(self, username: str, address: str) -> int | None:
        """Start a login attempt. None if it may go ahead: it is counted as a failure of
        both keys now, until ``succeeded`` says otherwise (so that concurrent guesses are
        counted before any of them is checked). Otherwise the whole seconds until every
        key locked against it may try again; nothing is counted then."""
        now = self.clock()
        keys = self._both(username, address)
        current = [self._current(key, now) for key in keys]
        wait = max((f.locked_until - now for f in current if f is not None), default=0.0)
        if wait > 0:
            return max(1, math.ceil(wait))
        for key, failures in zip(keys, current, strict=True):
            failures = failures or _Failures()
            failures.count += 1
            failures.last = now
            self._lock_if_due(key, failures, now)
            self._keys[key] = failures
            self._keys.move_to_end(key)
        while len(self._keys) > self.max_keys:
            self._keys.popitem(last=False)
        return None

    def succeeded(self, username: str, address: str) -> None:
        """The attempt started with ``attempt`` succeeded: the username's failures are
        forgotten; the address's count drops by this attempt only."""
        self._keys.pop(_username_key(username), None)
        failures = self._keys.get(("addr", address))
        if failures is not None:
            failures.count -= 1
            if failures.count < self.address_threshold:
                failures.locked_until = 0.0

    def _lock_if_due(self, key: tuple[str, str], failures: _Failures, now: float) -> None:
        threshold = self.username_threshold if key[0] == "user" else self.address_threshold
        if failures.count >= threshold:
            lockout = self.base_lockout * 2 ** min(failures.count - threshold, 32)
            failures.locked_until = now + min(lockout, self.max_lockout)

    def _both(self, username: str, address: str) -> tuple[tuple[str, str], ...]:
        return (_username_key(username), ("addr", address))

    def _current(self, key: tuple[str, str], now: float) -> _Failures | None:
        failures = self._keys.get(key)
        if failures is not None and now - failures.last > self.window:
            del self._keys[key]
            return None
        return failures


def _username_key(username: str) -> tuple[str, str]:
    # Usernames are unique case-insensitively; a key per spelling would multiply the tries.
    # Past 64 characters no username exists, so longer guesses may share a key.
    return ("user", username.lower()[:64])
