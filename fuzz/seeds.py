"""Writes the seed corpus: tokens signed with the fuzz test key (fuzz/keyset.json), keyset
documents and request bodies. Run: target/py-venv/bin/python fuzz/seeds.py"""
import base64, hashlib, json, os, time

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

here = os.path.dirname(os.path.abspath(__file__))
keyset = json.load(open(os.path.join(here, "keyset.json")))
key = keyset["keys"][0]
# The key is PKCS#8 v2 (with its public key), which `cryptography` does not read: take the
# 32-byte seed from its OCTET STRING (04 20 …) inside the privateKey field (04 22).
der = base64.b64decode("".join(l for l in key["private_key_pem"].splitlines() if "-----" not in l))
seed = der[der.index(b"\x04\x22\x04\x20") + 4:][:32]
private = Ed25519PrivateKey.from_private_bytes(seed)


def write(target, name, data):
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(here, "corpus", target, name), "wb") as f:
        f.write(data)


now = 1_800_000_000  # fixed, so the corpus does not change each run
claims = {"iss": "https://issuer.example", "sub": "6f1c9a52-8c41-4c1e-9a55-0d1f0b7f5a10",
          "aud": "https://api.example", "exp": now + 900, "iat": now, "jti": "a" * 36,
          "client_id": "first-party"}
headers = {"typ": "at+jwt", "kid": key["kid"]}
write("access_token", "valid", jwt.encode(claims, private, algorithm="EdDSA", headers=headers))
write("access_token", "scoped", jwt.encode({**claims, "scope": "read write"}, private, algorithm="EdDSA", headers=headers))
write("access_token", "no-typ", jwt.encode(claims, private, algorithm="EdDSA", headers={"kid": key["kid"]}))
write("access_token", "expired", jwt.encode({**claims, "exp": 1000, "iat": 900}, private, algorithm="EdDSA", headers=headers))
write("access_token", "wrong-aud", jwt.encode({**claims, "aud": ["x", "y"]}, private, algorithm="EdDSA", headers=headers))
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
write("access_token", "alg-none", b64(json.dumps({"alg": "none", "typ": "at+jwt"}).encode()) + "." + b64(json.dumps(claims).encode()) + ".")

write("keyset_document", "one-key", json.dumps(keyset))
write("keyset_document", "empty", '{"keys": []}')
retired = dict(key, state="retired", retired_at="2026-01-02T00:00:00Z")
write("keyset_document", "retired", json.dumps({"keys": [retired]}))

write("request_bodies", "refresh-form", "grant_type=refresh_token&refresh_token=abc&client_id=first-party")
write("request_bodies", "client-form", "grant_type=client_credentials&scope=read%20write&resource=https%3A%2F%2Fapi.example&resource=x")
write("request_bodies", "basic", "Basic " + base64.b64encode(b"svc:secret%3A").decode())
write("request_bodies", "login-json", json.dumps({"email": "a@example.com", "password": "violet tractor melts quietly"}))
write("request_bodies", "nested-json", '{"email": ["x"], "password": {"a": 1}}')
