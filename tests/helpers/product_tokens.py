"""The embedding product's side of its own tokens, for tests: key pairs made here, PEM and
JWKS files hubbub reads, and tokens signed as the product signs them (or as an attacker
would, for the refusals)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from pathlib import Path
from typing import Any

import attrs
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

ISSUER = "https://product.example"
AUDIENCE = "hubbub"
ALGORITHMS = ("RS256", "ES256", "EdDSA")


@attrs.frozen
class ProductKey:
    """A key pair of the product and the algorithm it signs with."""

    algorithm: str
    private: Any
    kid: str | None = None

    @property
    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def public_jwk(self) -> dict[str, Any]:
        """The public key as a JWK, with its ``kid`` and ``use: sig``."""
        algorithm = jwt.get_algorithm_by_name(self.algorithm)
        jwk = json.loads(algorithm.to_jwk(self.private.public_key()))
        return {**jwk, "kid": self.kid, "use": "sig"}

    def sign(self, claims: dict[str, Any], **header: Any) -> str:
        if self.kid is not None:
            header.setdefault("kid", self.kid)
        return jwt.encode(claims, self.private, algorithm=self.algorithm, headers=header or None)


def make_key(algorithm: str, kid: str | None = None) -> ProductKey:
    """A fresh key pair for ``algorithm`` (RS256, ES256 or EdDSA)."""
    if algorithm == "RS256":
        private: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    elif algorithm == "ES256":
        private = ec.generate_private_key(ec.SECP256R1())
    elif algorithm == "EdDSA":
        private = ed25519.Ed25519PrivateKey.generate()
    else:
        raise ValueError(algorithm)
    return ProductKey(algorithm, private, kid)


def claims(sub: str | None = None, *, ttl: float = 300, **extra: Any) -> dict[str, Any]:
    """Valid claims for ``sub`` (a new one if None), expiring ``ttl`` seconds from now;
    ``extra`` adds or (with None) removes claims."""
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": sub or f"product-user-{uuid.uuid4().hex[:12]}",
        "iat": now,
        "exp": int(now + ttl),
    }
    base.update(extra)
    return {name: value for name, value in base.items() if value is not None}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(payload: dict[str, Any]) -> str:
    """An ``alg: none`` token: no signature at all."""
    header = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{b64(json.dumps(payload).encode())}."


def hs256_with(secret: bytes, payload: dict[str, Any], **header: Any) -> str:
    """An HS256 token whose HMAC key is ``secret``: with the product's public key PEM as
    the secret, the classic RS/HS confusion attack (PyJWT itself refuses to sign it)."""
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT", **header}).encode())
    body = b64(json.dumps(payload).encode())
    signature = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(signature)}"


def write_pem(directory: Path, key: ProductKey) -> Path:
    path = directory / f"product-{key.algorithm}.pem"
    path.write_bytes(key.public_pem)
    return path


def write_jwks(directory: Path, *keys: ProductKey) -> Path:
    path = directory / "product-jwks.json"
    path.write_text(json.dumps({"keys": [key.public_jwk() for key in keys]}))
    return path


def settings_for(key_file: Path, *, jwks: bool = False) -> dict[str, str]:
    """``running_node`` overrides that make a node accept the product's tokens."""
    return {
        "jwks_file" if jwks else "jwt_public_key_file": str(key_file),
        "jwt_issuer": ISSUER,
        "jwt_audience": AUDIENCE,
    }
