"""Authlib (requests integration), unchanged, against token-issuer: client_credentials with
client_secret_basic and client_secret_post, introspection, revocation.
Usage: authlib_client.py ISSUER CLIENT_ID CLIENT_SECRET AUDIENCE SCOPE"""
import base64
import json
import os
import sys

# Plain HTTP on loopback: Authlib refuses it unless told.
os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"
import requests  # noqa: E402
from authlib.integrations.requests_client import OAuth2Session  # noqa: E402

issuer, client_id, secret, audience, scope = sys.argv[1:6]
meta = requests.get(f"{issuer}/.well-known/oauth-authorization-server", timeout=10).json()


def fail(message):
    sys.exit(f"authlib: {message}")


for method in ("client_secret_basic", "client_secret_post"):
    session = OAuth2Session(client_id, secret, scope=scope, token_endpoint_auth_method=method)
    token = session.fetch_token(meta["token_endpoint"], grant_type="client_credentials", resource=audience)
    if "refresh_token" in token or token["token_type"].lower() != "bearer":
        fail(f"{method}: unexpected token response {token}")
    payload = token["access_token"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    if claims["sub"] != client_id or claims["aud"] != audience or claims["scope"] != scope:
        fail(f"{method}: claims {claims}")

    live = session.introspect_token(meta["introspection_endpoint"], token=token["access_token"]).json()
    if live.get("active") is not True or live.get("client_id") != client_id:
        fail(f"{method}: introspection {live}")
    revoked = session.revoke_token(meta["revocation_endpoint"], token=token["access_token"])
    if revoked.status_code != 200:
        fail(f"{method}: revocation answered {revoked.status_code}")
    after = session.introspect_token(meta["introspection_endpoint"], token=token["access_token"]).json()
    if after != {"active": False}:
        fail(f"{method}: after revocation {after}")
    print(f"authlib {method}: token, introspection, revocation ok")
