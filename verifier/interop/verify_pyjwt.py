"""Verifies a token-issuer access token offline with PyJWT's PyJWKClient, as a Python service would.

    python verify_pyjwt.py ISSUER AUDIENCE TOKEN
"""
import json
import sys
import urllib.request

import jwt

issuer, audience, token = sys.argv[1:4]
with urllib.request.urlopen(f"{issuer}/.well-known/openid-configuration") as resp:
    jwks_uri = json.load(resp)["jwks_uri"]
header = jwt.get_unverified_header(token)
if header.get("typ") != "at+jwt":
    sys.exit(f"pyjwt: typ is {header.get('typ')!r}, not at+jwt")
signing_key = jwt.PyJWKClient(jwks_uri).get_signing_key_from_jwt(token)
# The algorithm comes from the published key, never from the token header.
claims = jwt.decode(
    token,
    signing_key.key,
    algorithms=[signing_key.algorithm_name],
    audience=audience,
    issuer=issuer,
    options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"]},
)
print(f"pyjwt: valid {signing_key.algorithm_name} token of {claims['sub']}")
