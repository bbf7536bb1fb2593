#!/usr/bin/env python3
"""JWTs signed by an independent implementation (PyJWT on `cryptography`), for the `jwksUrl` tests.

Writes shared/src/incoming/auth/jwks_vectors.json: two key sets (before and after a key rotation)
holding RSA, EC P-256 and Ed25519 signing keys plus an encryption-only key, and tokens signed
with them: accepted ones for RS256, ES256 and EdDSA, and expired, wrong-audience, algorithm-
confusion and encryption-key variants. PyJWT verifies each good token against its own JWK here.
The Rust tests (`jwks_tests.rs`) serve the sets from a local HTTP server, so `make test` needs
no Python.

The RSA keys are the throwaway pairs of tests/fixtures/jwt/; the EC and Ed25519 keys are made
anew on each run (the tokens are signed with them in the same run).

Regenerate (any venv with PyJWT and cryptography): pip install pyjwt cryptography &&
python3 scripts/jwks-vectors.py
"""

import hashlib
import hmac
import json
import pathlib
import base64

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "shared/src/incoming/auth/jwks_vectors.json"
FIXTURES = ROOT / "tests/fixtures/jwt"

IAT = 1_767_225_600  # 2026-01-01T00:00:00Z
EXP = 4_102_444_800  # 2100-01-01T00:00:00Z (the tests lift maxLifetimeSecs)
CLAIMS = {"sub": "crm", "aud": "extension", "iss": "https://idp.example.com", "iat": IAT, "exp": EXP}


def load(name):
    return serialization.load_pem_private_key((FIXTURES / name).read_bytes(), password=None)


rsa1 = load("rs256-private.pem")
rsa2 = load("other-private.pem")
ec1 = ec.generate_private_key(ec.SECP256R1())
ed1 = ed25519.Ed25519PrivateKey.generate()


def jwk(key, kid, alg=None, use="sig", algo=None):
    d = json.loads(algo.to_jwk(key.public_key()))
    d["kid"] = kid
    if use:
        d["use"] = use
    if alg:
        d["alg"] = alg
    return d


RS = jwt.algorithms.RSAAlgorithm
EC = jwt.algorithms.ECAlgorithm
OKP = jwt.algorithms.OKPAlgorithm
keys = [
    jwk(rsa1, "rsa-1", "RS256", algo=RS),
    jwk(ec1, "ec-1", "ES256", algo=EC),
    # Without `alg` or `use` (both optional in RFC 7517).
    jwk(ed1, "ed-1", use=None, algo=OKP),
    # An encryption key: never used to verify.
    jwk(rsa2, "enc-1", "RS256", use="enc", algo=RS),
]
initial = {"keys": keys}
rotated = {"keys": keys + [jwk(rsa2, "rsa-2", "RS256", algo=RS)]}


def sign(key, alg, kid, **over):
    return jwt.encode({**CLAIMS, **over}, key, algorithm=alg, headers={"kid": kid})


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def hs256_with(secret, kid):
    """HS256 over the public key's bytes: the classic algorithm-confusion forgery."""
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    payload = b64(json.dumps(CLAIMS).encode())
    mac = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(mac)}"


rsa1_pem = rsa1.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
)
tokens = {
    "rs256": sign(rsa1, "RS256", "rsa-1"),
    "es256": sign(ec1, "ES256", "ec-1"),
    "eddsa": sign(ed1, "EdDSA", "ed-1"),
    "rs256_rotated": sign(rsa2, "RS256", "rsa-2"),
    "es256_expired": sign(ec1, "ES256", "ec-1", exp=IAT + 3600),
    "es256_wrong_audience": sign(ec1, "ES256", "ec-1", aud="another-api"),
    "rs256_naming_the_ec_key": sign(rsa1, "RS256", "ec-1"),
    "hs256_with_the_public_pem": hs256_with(rsa1_pem, "rsa-1"),
    "hs256_with_the_jwk": hs256_with(json.dumps(keys[0]).encode(), "rsa-1"),
    "rs256_with_the_encryption_key": sign(rsa2, "RS256", "enc-1"),
}

# PyJWT accepts its own good tokens with the published keys.
for name, kid in [("rs256", "rsa-1"), ("es256", "ec-1"), ("eddsa", "ed-1"), ("rs256_rotated", "rsa-2")]:
    k = next(k for k in rotated["keys"] if k["kid"] == kid)
    pk = jwt.PyJWK(k, algorithm={"RSA": "RS256", "EC": "ES256", "OKP": "EdDSA"}[k["kty"]])
    jwt.decode(tokens[name], pk, algorithms=[pk.algorithm_name], audience="extension")

OUT.write_text(
    json.dumps(
        {
            "generator": f"PyJWT {jwt.__version__}",
            "jwks": initial,
            "jwks_rotated": rotated,
            "tokens": tokens,
        },
        indent=2,
    )
    + "\n"
)
print(f"wrote {OUT}")
