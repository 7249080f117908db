"""A product token, verified, as a hubbub user: found by ``external_id`` or provisioned.

The HTTP and WebSocket edges try hubbub's own access token first; only a token that is
not one comes here (``ProductSignIn.authenticate``). Its ``sub`` is the user's
``external_id``; the first token of a user creates it (``Storage.provision_user``), with
a username from ``preferred_username`` or ``name``, else from ``sub``, made unique if taken
(``usernames.username_candidates``).

The signature check runs on the event loop, as the check of hubbub's own tokens does: it
costs a small multiple of it (on the shared 2-core test machine under load, with PyJWT's
parsing: hubbub's HS256 ~90 us, RS256 ~250 us, ES256 ~300 us, EdDSA ~400 us; the bare
RSA verify ~50 us), too little to be worth a thread hop. Only finding or provisioning the
user awaits storage, and a known user is remembered.
"""

from __future__ import annotations

import logging
from collections import OrderedDict

import attrs
import jwt

from hubbub.auth.product_tokens import ProductClaims, ProductTokenVerifier, RefusedToken
from hubbub.auth.tokens import ALGORITHM, Claims, InvalidToken
from hubbub.auth.usernames import username_candidates
from hubbub.storage import Conflict, Storage, User

log = logging.getLogger("hubbub.auth")

#: The refusal of a token that is no valid token of hubbub's own, nor a product token.
OWN_REFUSAL = "invalid or expired token"
#: How many external ids a node remembers the user of (most recently used kept).
CACHE_SIZE = 100_000


class NoFreeUsername(InvalidToken):
    """Every username tried for a new user was taken (practically never: the last tries
    are random). An ``InvalidToken``: the token cannot sign anyone in, and the edges
    refuse it as they refuse any other (401, 1008), saying why."""


@attrs.define(eq=False)
class ProductSignIn:
    """Turns a product token into the claims of hubbub's own access token.

    A user row never changes its ``external_id`` nor its username, so the mapping is
    remembered per process (``CACHE_SIZE`` entries, least recently used dropped): a known
    user costs a signature check and no database call."""

    verifier: ProductTokenVerifier
    storage: Storage
    _known: OrderedDict[str, tuple[int, str]] = attrs.field(factory=OrderedDict, init=False)

    def verify(self, token: str) -> ProductClaims:
        """``verifier.verify``, a refusal raised as ``InvalidToken`` whose message is what
        the edges answer: ``invalid product token: <reason>``. A token of hubbub's own
        algorithm is no product token (HS* never is one): hubbub's own refusal stands."""
        if _algorithm(token) == ALGORITHM:
            raise InvalidToken(OWN_REFUSAL)
        try:
            return self.verifier.verify(token)
        except RefusedToken as refusal:
            raise InvalidToken(f"invalid product token: {refusal.reason}") from None

    async def authenticate(self, token: str) -> Claims:
        """Claims as an access token of the user the product token is for, provisioning
        that user if the product has not been seen to sign for them before.

        Raises ``InvalidToken`` (its message: the refusal to answer, a few words, short
        enough for a close reason) for a refused token, ``StorageError`` if storage fails
        (nothing half-provisioned is left: one insert creates a user)."""
        product = self.verify(token)
        user_id, username = await self.user_for(product)
        return Claims(
            user_id=user_id,
            username=username,
            type="access",
            # The verifier accepts the token until ``exp`` plus its leeway: a connection
            # opened with it lasts as long, not closed at once as expired.
            expires_at=product.expires_at + self.verifier.leeway,
            jti=product.token_id or "",
            family=None,
        )

    async def user_for(self, product: ProductClaims) -> tuple[int, str]:
        """The id and username of the user whose ``external_id`` is ``product.subject``."""
        known = self._known.get(product.subject)
        if known is not None:
            self._known.move_to_end(product.subject)
            return known
        user = await self.storage.user_by_external_id(product.subject)
        if user is None:
            user = await self._provision(product)
        self._remember(product.subject, (user.id, user.username))
        return user.id, user.username

    async def _provision(self, product: ProductClaims) -> User:
        for username in username_candidates(product.name_hint, product.subject):
            try:
                user, created = await self.storage.provision_user(
                    username=username, external_id=product.subject
                )
            except Conflict as conflict:
                if conflict.field == "username":
                    continue  # someone else's name: the next candidate
                raise
            if created:
                log.info(
                    "user provisioned from a product token",
                    extra={"fields": {"user_id": user.id, "username": user.username}},
                )
            return user
        raise NoFreeUsername("no free username for this user")

    def _remember(self, subject: str, user: tuple[int, str]) -> None:
        self._known[subject] = user
        if len(self._known) > CACHE_SIZE:
            self._known.popitem(last=False)


def _algorithm(token: str) -> object:
    try:
        return jwt.get_unverified_header(token).get("alg")
    except jwt.PyJWTError:
        return None
