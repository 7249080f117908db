"""Loading the product's keys (hubbub/auth/product_keys.py) and their settings: every
unusable key or combination stops start-up with one line saying what to fix."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, rsa
from cryptography.x509.oid import NameOID

from hubbub.auth.product_keys import (
    UnusableKey,
    key_from_pem,
    keys_from_jwks,
    load_product_verifier,
)
from hubbub.auth.product_tokens import ProductTokenVerifier
from hubbub.config import ConfigError, load_settings
from hubbub.node import open_node
from tests.helpers.product_tokens import (
    ALGORITHMS,
    AUDIENCE,
    ISSUER,
    claims,
    make_key,
    settings_for,
    write_jwks,
    write_pem,
)
from tests.test_cli import one_line, run_hubbub


def settings(tmp_path: Path, **values: str) -> Any:
    environ = {"HUBBUB_DATA_DIR": str(tmp_path / "data")}
    environ.update({f"HUBBUB_{name.upper()}": value for name, value in values.items()})
    return load_settings(environ=environ, prepare_data_dir=False)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_pem_public_key_gives_its_algorithm(algorithm: str) -> None:
    assert key_from_pem(make_key(algorithm).public_pem).algorithm == algorithm


def test_a_certificate_gives_its_public_key() -> None:
    key = make_key("ES256")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "product.example")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.private.public_key())
        .serial_number(1)
        .not_valid_before(datetime(2020, 1, 1))
        .not_valid_after(datetime(2040, 1, 1))
        .sign(key.private, hashes.SHA256())
    )
    loaded = key_from_pem(certificate.public_bytes(serialization.Encoding.PEM))
    assert loaded.algorithm == "ES256"


def _private_pem(private: Any) -> bytes:
    return private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _public_pem(private: Any) -> bytes:
    return private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (lambda: _private_pem(make_key("RS256").private), "private key"),
        (lambda: _public_pem(rsa.generate_private_key(65537, 1024)), "1024 bits is too short"),
        (lambda: _public_pem(ec.generate_private_key(ec.SECP384R1())), "secp384r1"),
        (lambda: b"-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n", "not a PEM"),
        (lambda: b"hello", "not a PEM public key"),
    ],
)
def test_unusable_pem_keys_are_refused(data: Any, message: str) -> None:
    with pytest.raises(UnusableKey, match=message):
        key_from_pem(data())


def _jwks(*keys: dict[str, Any]) -> str:
    return json.dumps({"keys": list(keys)})


def test_a_jwks_gives_each_signing_key_with_its_kid() -> None:
    one, two = make_key("RS256", kid="one"), make_key("ES256", kid="two")
    encryption = {**make_key("RS256", kid="enc").public_jwk(), "use": "enc"}
    keys = keys_from_jwks(_jwks(one.public_jwk(), two.public_jwk(), encryption))
    assert [(key.kid, key.algorithm) for key in keys] == [("one", "RS256"), ("two", "ES256")]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (lambda: "not json", "not JSON"),
        (lambda: "[]", "not a JWKS document"),
        (lambda: _jwks(), "not a JWKS document"),
        (lambda: _jwks({"kty": "oct", "kid": "s", "k": "c2VjcmV0"}), "private or symmetric"),
        (
            lambda: _jwks({**make_key("RS256", kid="p").public_jwk(), "d": "AQAB"}),
            "private or symmetric",
        ),
        (lambda: _jwks({**make_key("RS256").public_jwk(), "kid": None}), "has no kid"),
        (lambda: _jwks({**make_key("RS256", kid="a").public_jwk(), "alg": "HS256"}), "HS256"),
        (lambda: _jwks({**make_key("RS256", kid="a").public_jwk(), "alg": "PS256"}), "PS256"),
        (
            lambda: _jwks(
                make_key("RS256", kid="a").public_jwk(), make_key("ES256", kid="a").public_jwk()
            ),
            "used twice",
        ),
        (lambda: _jwks({"kty": "RSA", "kid": "x", "n": "AQAB"}), "cannot be read"),
        (lambda: _jwks({"kty": "XYZ", "kid": "x"}), "kty 'XYZ'"),
        (lambda: _jwks({**make_key("RS256", kid="e").public_jwk(), "use": "enc"}), "no signing"),
    ],
)
def test_unusable_jwks_documents_are_refused(document: Any, message: str) -> None:
    with pytest.raises(UnusableKey, match=message):
        keys_from_jwks(document())


def test_no_key_settings_mean_no_verifier(tmp_path: Path) -> None:
    assert load_product_verifier(settings(tmp_path)) is None


def test_a_pem_file_and_a_jwks_file_each_load(tmp_path: Path) -> None:
    key = make_key("EdDSA", kid="k")
    pem = load_product_verifier(settings(tmp_path, **settings_for(write_pem(tmp_path, key))))
    jwks_file = write_jwks(tmp_path, key)
    jwks = load_product_verifier(settings(tmp_path, **settings_for(jwks_file, jwks=True)))
    assert pem is not None and jwks is not None
    token = key.sign(claims("ext"))
    assert pem.verify(token).subject == jwks.verify(token).subject == "ext"
    assert (pem.issuer, pem.audience, pem.by_kid, jwks.by_kid) == (ISSUER, AUDIENCE, False, True)


def test_an_unreadable_key_file_is_a_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.pem"
    with pytest.raises(ConfigError, match=r"HUBBUB_JWT_PUBLIC_KEY_FILE=.*cannot read it"):
        load_product_verifier(settings(tmp_path, **settings_for(missing)))
    with pytest.raises(ConfigError, match=r"HUBBUB_JWKS_FILE=.*cannot read it"):
        load_product_verifier(settings(tmp_path, **settings_for(tmp_path, jwks=True)))


def test_an_unsupported_key_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "p384.pem"
    path.write_bytes(_public_pem(ec.generate_private_key(ec.SECP384R1())))
    with pytest.raises(ConfigError, match=r"HUBBUB_JWT_PUBLIC_KEY_FILE=.*secp384r1"):
        load_product_verifier(settings(tmp_path, **settings_for(path)))
    path.write_bytes(b"\xff\xfe not text")
    with pytest.raises(ConfigError, match=r"HUBBUB_JWKS_FILE=.*not UTF-8"):
        load_product_verifier(settings(tmp_path, **settings_for(path, jwks=True)))


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"jwt_public_key_file": "k.pem"}, "HUBBUB_JWT_ISSUER and HUBBUB_JWT_AUDIENCE are not"),
        ({"jwks_file": "k.json", "jwt_issuer": ISSUER}, "HUBBUB_JWT_AUDIENCE is not"),
        ({"jwt_public_key_file": "k.pem", "jwt_audience": AUDIENCE}, "HUBBUB_JWT_ISSUER is not"),
        (
            {"jwt_public_key_file": "k", "jwks_file": "j", "jwt_issuer": "i", "jwt_audience": "a"},
            "both set",
        ),
        ({"jwt_issuer": ISSUER, "jwt_audience": AUDIENCE}, "no key to check product tokens"),
    ],
)
def test_key_settings_must_go_together(
    tmp_path: Path, values: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        settings(tmp_path, **values)


async def test_a_node_with_an_unusable_key_does_not_start(tmp_path: Path) -> None:
    path = tmp_path / "short.pem"
    path.write_bytes(_public_pem(rsa.generate_private_key(65537, 1024)))
    environ = {
        "HUBBUB_DATA_DIR": str(tmp_path / "data"),
        "HUBBUB_PORT": "0",
        **{f"HUBBUB_{name.upper()}": value for name, value in settings_for(path).items()},
    }
    with pytest.raises(ConfigError, match="too short"):
        async with open_node(load_settings(environ=environ)):
            pytest.fail("the node started")


def test_hubbub_serve_with_a_missing_key_file_stops_with_one_line(tmp_path: Path) -> None:
    env = {
        "HUBBUB_DATA_DIR": str(tmp_path),
        "HUBBUB_PORT": "0",
        **{
            f"HUBBUB_{name.upper()}": value
            for name, value in settings_for(tmp_path / "missing.pem").items()
        },
    }
    result = run_hubbub("serve", env=env)
    assert result.returncode == 1
    line = one_line(result.stderr)
    assert "HUBBUB_JWT_PUBLIC_KEY_FILE" in line and "cannot read it" in line


def test_an_ed448_key_verifies_eddsa_too() -> None:
    private = ed448.Ed448PrivateKey.generate()
    loaded = key_from_pem(_public_pem(private))
    verifier = ProductTokenVerifier((loaded,), issuer=ISSUER, audience=AUDIENCE)
    token = jwt.encode(claims("ext-448"), private, algorithm="EdDSA")
    assert (loaded.algorithm, verifier.verify(token).subject) == ("EdDSA", "ext-448")
