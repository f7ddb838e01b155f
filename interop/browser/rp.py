"""A tiny relying party, "Notes", for the browser test: a page with a "Log in" link that
sends the browser to token-issuer, and back. Authlib does all of OAuth and OpenID Connect:
PKCE (S256), state, nonce, the code exchange, ID-token validation against the issuer's JWKS
(signature, iss, aud, exp, nonce, at_hash), refresh, and RP-initiated logout.

Usage: python rp.py ISSUER CLIENT_ID PORT
"""

import html
import sys
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlparse

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session

# Authlib 1.x validates ID tokens (CodeIDToken) with authlib.jose, which it marks deprecated
# in favour of joserfc until 2.0; the validation is what this app wants from it.
warnings.filterwarnings("ignore", message="authlib.jose module is deprecated")
from authlib.jose import JsonWebKey, jwt  # noqa: E402
from authlib.oidc.core import CodeIDToken  # noqa: E402

issuer, client_id, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
base = f"http://127.0.0.1:{port}"
meta = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=10).json()
assert meta["issuer"] == issuer, meta
# One user at a time: the pending request and the tokens.
app = {"pending": None, "tokens": None, "claims": None, "userinfo": None, "refreshes": 0, "note": ""}


def oauth():
    return OAuth2Session(
        client_id,
        scope="openid email notes:read",
        redirect_uri=f"{base}/callback",
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
    )


def verify_id_token(id_token, nonce, access_token):
    jwks = JsonWebKey.import_key_set(requests.get(meta["jwks_uri"], timeout=10).json())
    claims = jwt.decode(
        id_token,
        jwks,
        claims_cls=CodeIDToken,
        claims_options={"iss": {"essential": True, "value": issuer}, "aud": {"essential": True, "value": client_id}},
        claims_params={"nonce": nonce, "client_id": client_id, "access_token": access_token},
    )
    claims.validate(leeway=5)
    return claims


class Notes(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def send(self, body, status=200):
        page = (
            '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Notes</title></head>'
            f"<body><h1>Notes</h1>{body}</body></html>"
        ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    def redirect(self, url):
        self.send_response(303)
        self.send_header("Location", url)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        url = urlparse(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        try:
            getattr(self, "page_" + (url.path.strip("/") or "home").replace("-", "_"))(query)
        except AttributeError:
            self.send("<p>no such page</p>", 404)
        except Exception as e:  # what failed, for the driver to report
            self.send(f'<p id="failure">{html.escape(type(e).__name__ + ": " + str(e))}</p>', 500)

    def page_home(self, _):
        if app["tokens"] is None:
            self.send(f'<p id="status">{html.escape(app["note"] or "Not logged in.")}</p><a id="login" href="/login">Log in</a>')
            return
        claims, info = app["claims"], app["userinfo"]
        self.send(
            f'<p id="user">Logged in as {html.escape(info["email"])}</p>'
            f'<p id="idtoken">ID token verified: sub={html.escape(claims["sub"])}, amr={",".join(claims["amr"])}</p>'
            f'<p id="refreshes">Refreshed {app["refreshes"]} times</p>'
            '<a id="refresh" href="/refresh">Refresh</a> <a id="logout" href="/logout">Log out</a>'
        )

    def page_login(self, _):
        verifier, nonce = generate_token(64), generate_token(24)
        uri, state = oauth().create_authorization_url(
            meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce
        )
        app["pending"] = {"verifier": verifier, "nonce": nonce, "state": state}
        self.redirect(uri)

    def page_callback(self, query):
        pending, app["pending"] = app["pending"], None
        if "error" in query:
            raise RuntimeError(f"authorization refused: {query['error']}")
        # RFC 9207: the answer names the issuer it came from (no mix-up).
        if query.get("iss") != issuer:
            raise RuntimeError(f"iss {query.get('iss')!r} is not {issuer}")
        token = oauth().fetch_token(
            meta["token_endpoint"],
            authorization_response=f"{base}{self.path}",
            code_verifier=pending["verifier"],
            state=pending["state"],
        )
        app["claims"] = verify_id_token(token["id_token"], pending["nonce"], token["access_token"])
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        app["userinfo"] = requests.get(meta["userinfo_endpoint"], headers=headers, timeout=10).json()
        if app["userinfo"]["sub"] != app["claims"]["sub"]:
            raise RuntimeError("userinfo names another user")
        app["tokens"] = token
        self.redirect("/")

    def page_refresh(self, _):
        old = app["tokens"]
        token = oauth().refresh_token(meta["token_endpoint"], refresh_token=old["refresh_token"])
        if token["refresh_token"] == old["refresh_token"]:
            raise RuntimeError("the refresh token did not rotate")
        app["tokens"] = {**token, "id_token": old["id_token"]}
        app["refreshes"] += 1
        self.redirect("/")

    def page_logout(self, _):
        state = generate_token(16)
        app["pending"] = {"state": state}
        params = {
            "id_token_hint": app["tokens"]["id_token"],
            "post_logout_redirect_uri": f"{base}/logged-out",
            "state": state,
        }
        self.redirect(f"{meta['end_session_endpoint']}?{urlencode(params)}")

    def page_logged_out(self, query):
        if query.get("state") != app["pending"]["state"]:
            raise RuntimeError("logout state mismatch")
        # The refresh token must be dead now.
        dead = requests.post(
            meta["token_endpoint"],
            data={"grant_type": "refresh_token", "client_id": client_id, "refresh_token": app["tokens"]["refresh_token"]},
            timeout=10,
        )
        app.update(tokens=None, claims=None, userinfo=None, pending=None)
        app["note"] = "Logged out." if dead.status_code == 400 else f"Logged out, but the refresh token still works ({dead.status_code})."
        self.redirect("/")


ThreadingHTTPServer(("127.0.0.1", port), Notes).serve_forever()
