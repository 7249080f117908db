"""The product's public keys, from a PEM file or a JWKS document, as a verifier.

Loaded once at start-up (``load_product_verifier``); every problem is a ``ConfigError``
saying what to fix, so a node never starts with keys it cannot use. The parsing
functions are pure (bytes or text in, keys out) for tests; only the loader reads files.

The algorithm of each key follows from its type, never from a token or a document:
RSA of 2048 bits or more verifies RS256, EC on P-256 verifies ES256, Ed25519 and Ed448
verify EdDSA. Anything else (a symmetric key, a private key, another curve, a short RSA
key) is refused at start-up.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from hubbub.auth.product_tokens import ProductTokenVerifier, VerificationKey
from hubbub.config import ConfigError, Settings

RSA_MIN_BITS = 2048
SUPPORTED = "RSA of 2048 bits or more (RS256), EC P-256 (ES256), Ed25519 or Ed448 (EdDSA)"
#: JWK members that only a private or symmetric key has.
_SECRET_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "k")
_FROM_JWK = {
    "RSA": jwt.algorithms.RSAAlgorithm.from_jwk,
    "EC": jwt.algorithms.ECAlgorithm.from_jwk,
    "OKP": jwt.algorithms.OKPAlgorithm.from_jwk,
}


class UnusableKey(ValueError):
    """A key hubbub cannot verify product tokens with; the message says why."""


def algorithm_for(key: Any) -> str:
    """The one JWS algorithm ``key`` (a ``cryptography`` public key) verifies."""
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < RSA_MIN_BITS:
            raise UnusableKey(f"an RSA key of {key.key_size} bits is too short: use {SUPPORTED}")
        return "RS256"
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise UnusableKey(
                f"an EC key on curve {key.curve.name} is not supported: use {SUPPORTED}"
            )
        return "ES256"
    if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return "EdDSA"
    raise UnusableKey(f"a {type(key).__name__} is not supported: use {SUPPORTED}")


def key_from_pem(data: bytes) -> VerificationKey:
    """The public key of a PEM ``PUBLIC KEY`` (or ``CERTIFICATE``) block."""
    if b"PRIVATE KEY" in data:
        raise UnusableKey(
            "it holds a private key: give hubbub only the public half "
            "(openssl pkey -in private.pem -pubout -out public.pem)"
        )
    key: Any
    try:
        if b"-----BEGIN CERTIFICATE-----" in data:
            key = x509.load_pem_x509_certificate(data).public_key()
        else:
            key = serialization.load_pem_public_key(data)
    except ValueError:
        raise UnusableKey("it is not a PEM public key (-----BEGIN PUBLIC KEY-----)") from None
    return VerificationKey(algorithm_for(key), key)


def keys_from_jwks(text: str) -> tuple[VerificationKey, ...]:
    """The signing keys of a JWKS document (``{"keys": [...]}``), each with its ``kid``.

    Keys with ``"use"`` other than ``"sig"`` are left out (they are not for signatures).
    Every other key must have a unique, non-empty ``kid``, be public, be of a supported
    type, and, if it names an ``alg``, name the one its type verifies."""
    try:
        document = json.loads(text)
    except ValueError as error:
        raise UnusableKey(f"it is not JSON ({error})") from None
    jwks = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(jwks, list) or not jwks:
        raise UnusableKey('it is not a JWKS document: {"keys": [...]} with at least one key')
    keys: dict[str, VerificationKey] = {}
    for position, jwk in enumerate(jwks):
        if not isinstance(jwk, dict):
            raise UnusableKey(f"key {position} is not a JSON object")
        if jwk.get("use", "sig") != "sig":
            continue
        key = _key_from_jwk(jwk, position)
        if key.kid in keys:
            raise UnusableKey(f"kid {key.kid!r} is used twice")
        keys[str(key.kid)] = key
    if not keys:
        raise UnusableKey('it has no signing key (every key has a "use" other than "sig")')
    return tuple(keys.values())


def _key_from_jwk(jwk: dict[str, Any], position: int) -> VerificationKey:
    kid = jwk.get("kid")
    if not isinstance(kid, str) or not kid:
        raise UnusableKey(f"key {position} has no kid: tokens pick their key by kid")
    about = f"key {kid!r}"
    if any(member in jwk for member in _SECRET_MEMBERS):
        raise UnusableKey(
            f"{about} is a private or symmetric key: publish only public keys ({SUPPORTED})"
        )
    from_jwk = _FROM_JWK.get(jwk.get("kty"))  # type: ignore[arg-type]
    if from_jwk is None:
        raise UnusableKey(f"{about} has kty {jwk.get('kty')!r}: use {SUPPORTED}")
    try:
        key = from_jwk(jwk)
    except (jwt.PyJWTError, ValueError, TypeError, KeyError) as error:
        raise UnusableKey(f"{about} cannot be read ({error})") from None
    try:
        algorithm = algorithm_for(key)
    except UnusableKey as error:
        raise UnusableKey(f"{about}: {error}") from None
    named = jwk.get("alg")
    if named is not None and named != algorithm:
        raise UnusableKey(f"{about} names alg {named!r}, but its type verifies {algorithm}")
    return VerificationKey(algorithm, key, kid)


def load_product_verifier(settings: Settings) -> ProductTokenVerifier | None:
    """The verifier of the configured product keys, or None if none are configured.

    Reads ``HUBBUB_JWT_PUBLIC_KEY_FILE`` or ``HUBBUB_JWKS_FILE`` (blocking: call it off
    the event loop). Raises ``ConfigError`` for a file that cannot be read or a key that
    cannot be used. ``load_settings`` already made sure issuer and audience are set."""
    if settings.jwt_public_key_file is not None:
        variable, path = "HUBBUB_JWT_PUBLIC_KEY_FILE", settings.jwt_public_key_file
    elif settings.jwks_file is not None:
        variable, path = "HUBBUB_JWKS_FILE", settings.jwks_file
    else:
        return None
    assert settings.jwt_issuer is not None and settings.jwt_audience is not None
    data = _read(variable, path)
    keys: tuple[VerificationKey, ...]
    try:
        if settings.jwks_file is not None:
            keys = keys_from_jwks(data.decode("utf-8"))
        else:
            keys = (key_from_pem(data),)
    except UnicodeDecodeError:
        raise ConfigError(f"{variable}={str(path)!r}: it is not UTF-8 text") from None
    except UnusableKey as error:
        raise ConfigError(f"{variable}={str(path)!r}: {error}") from None
    return ProductTokenVerifier(
        keys,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        by_kid=settings.jwks_file is not None,
    )


def _read(variable: str, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise ConfigError(
            f"{variable}={str(path)!r}: cannot read it ({error.strerror or error})"
        ) from None
