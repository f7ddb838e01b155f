//! Registered clients against the OAuth endpoints: the `oauth2` crate (oauth2-rs) as a real
//! client library, every RFC 6749 §5.2 error path, private_key_jwt (RFC 7523), introspection
//! (RFC 7662) and revocation (RFC 7009) — on SQLite, and on PostgreSQL when
//! TEST_DATABASE_URL is set.

use crate::common;

use std::time::Duration;

use crate::common::{segment, TestServer};
use oauth2::basic::BasicClient;
use oauth2::{
    AuthType, ClientId, ClientSecret, IntrospectionUrl, RefreshToken, RevocationUrl, Scope,
    StandardRevocableToken, TokenIntrospectionResponse as _, TokenResponse as _, TokenUrl,
};
use reqwest::Method;
use serde_json::{json, Value};
use token_issuer::oauth::clients::NewClient;

const API: &str = "https://api.example.com";
const OTHER_API: &str = "https://other.example.com";
/// Audiences need not be http(s): any absolute URI (RFC 8707, JWT StringOrURI).
const URN_API: &str = "urn:reports:api";

/// Registers a client directly (the CLI does the same); returns its secret, if it has one.
async fn register(
    server: &TestServer,
    id: &str,
    grants: &[&str],
    scopes: &str,
    jwk: Option<String>,
) -> Option<String> {
    server
        .register_client(NewClient {
            id: id.into(),
            grants: grants.iter().map(|g| g.to_string()).collect(),
            scopes: vec![scopes.into()],
            audiences: vec![API.into(), OTHER_API.into(), URN_API.into()],
            access_token_ttl: Some(Duration::from_secs(300)),
            jwk,
            ..Default::default()
        })
        .await
}

/// oauth2-rs refuses a revocation URL that is not https (RFC 7009 §2). TLS is not what these
/// tests are about, so the library is given https URLs and this transport carries its
/// requests, unchanged, as plain HTTP to the loopback server.
async fn loopback(request: oauth2::HttpRequest) -> Result<oauth2::HttpResponse, oauth2::reqwest::Error> {
    let client = oauth2::reqwest::Client::builder()
        .redirect(oauth2::reqwest::redirect::Policy::none())
        .build()?;
    let (parts, body) = request.into_parts();
    let url = parts.uri.to_string().replacen("https://", "http://", 1);
    let response = client
        .request(parts.method, url)
        .headers(parts.headers)
        .body(body)
        .send()
        .await?;
    let mut builder = oauth2::http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        builder = builder.header(name, value);
    }
    Ok(builder.body(response.bytes().await?.to_vec()).expect("response"))
}

/// The https form of a test server URL, for oauth2-rs (see [`loopback`]).
fn https(server: &TestServer, path: &str) -> String {
    server.url(path).replacen("http://", "https://", 1)
}

#[tokio::test]
async fn oauth2_rs_gets_introspects_and_revokes_tokens_with_both_secret_methods() {
    let server = common::start().await;
    let secret = register(&server, "billing", &["client_credentials"], "read write", None)
        .await
        .expect("secret");
    let http = |request| loopback(request);
    let client = |auth: AuthType| {
        BasicClient::new(ClientId::new("billing".into()))
            .set_client_secret(ClientSecret::new(secret.clone()))
            .set_auth_type(auth)
            .set_token_uri(TokenUrl::new(https(&server, "/oauth2/token")).expect("url"))
            .set_introspection_url(IntrospectionUrl::new(https(&server, "/oauth2/introspect")).expect("url"))
            .set_revocation_url(RevocationUrl::new(https(&server, "/oauth2/revoke")).expect("url"))
    };

    // client_secret_basic, default audience (the client's first), narrowed scope.
    let basic = client(AuthType::BasicAuth);
    let token = basic
        .exchange_client_credentials()
        .add_scope(Scope::new("read".into()))
        .request_async(&http)
        .await
        .expect("client_credentials with Basic");
    assert!(
        token.refresh_token().is_none(),
        "no refresh token for client_credentials"
    );
    assert_eq!(
        token.expires_in(),
        Some(Duration::from_secs(300)),
        "the client's own lifetime"
    );
    assert_eq!(token.scopes().map(|s| s.len()), Some(1));
    let claims = segment(token.access_token().secret(), 1);
    assert_eq!(claims["sub"], "billing");
    assert_eq!(claims["client_id"], "billing");
    assert_eq!(claims["aud"], API);
    assert_eq!(claims["scope"], "read");

    // client_secret_post, an RFC 8707 resource, every scope by default.
    let post = client(AuthType::RequestBody);
    let other = post
        .exchange_client_credentials()
        .add_extra_param("resource", OTHER_API)
        .request_async(&http)
        .await
        .expect("client_credentials with the secret in the body");
    let claims = segment(other.access_token().secret(), 1);
    assert_eq!(claims["aud"], OTHER_API);
    assert_eq!(claims["scope"], "read write");

    let info = basic
        .introspect(token.access_token())
        .request_async(&http)
        .await
        .expect("introspect");
    assert!(info.active());
    assert_eq!(info.client_id().map(|c| c.as_str()), Some("billing"));
    assert_eq!(info.sub(), Some("billing"));
    assert_eq!(info.iss(), Some(server.base.as_str()));
    assert_eq!(info.aud(), Some(&vec![API.to_owned()]));
    assert!(info.exp().is_some() && info.iat().is_some() && info.jti().is_some());

    post.revoke_token(StandardRevocableToken::AccessToken(token.access_token().clone()))
        .expect("revocation url")
        .request_async(&http)
        .await
        .expect("revoke");
    let info = basic
        .introspect(token.access_token())
        .request_async(&http)
        .await
        .expect("introspect");
    assert!(!info.active(), "revoked");
    let still = basic
        .introspect(other.access_token())
        .request_async(&http)
        .await
        .expect("introspect");
    assert!(still.active(), "only the revoked token is inactive");
}

#[tokio::test]
async fn oauth2_rs_refreshes_and_revokes_as_the_public_first_party_client() {
    let server = common::start().await;
    let (_, refresh) = server.user_session("pat@example.com").await;
    let http = |request| loopback(request);
    let public = BasicClient::new(ClientId::new("first-party".into()))
        .set_auth_type(AuthType::RequestBody)
        .set_token_uri(TokenUrl::new(https(&server, "/oauth2/token")).expect("url"))
        .set_revocation_url(RevocationUrl::new(https(&server, "/oauth2/revoke")).expect("url"));
    let refreshed = public
        .exchange_refresh_token(&RefreshToken::new(refresh.clone()))
        .request_async(&http)
        .await
        .expect("refresh");
    let next = refreshed.refresh_token().expect("rotated").clone();
    assert_ne!(next.secret(), &refresh);
    assert!(
        public
            .exchange_refresh_token(&RefreshToken::new(refresh))
            .request_async(&http)
            .await
            .is_err(),
        "a spent refresh token is refused"
    );

    // Reuse ended that session; a new one is revoked through oauth2-rs.
    let fresh = server.login("pat@example.com").await["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();
    public
        .revoke_token(StandardRevocableToken::RefreshToken(RefreshToken::new(
            fresh.clone(),
        )))
        .expect("revocation url")
        .request_async(&http)
        .await
        .expect("revoke");
    assert!(public
        .exchange_refresh_token(&RefreshToken::new(fresh))
        .request_async(&http)
        .await
        .is_err());
}

/// POSTs a form with optional Basic credentials; returns status and JSON body.
async fn form(
    server: &TestServer,
    path: &str,
    basic: Option<(&str, &str)>,
    params: &[(&str, &str)],
) -> (u16, Value) {
    let mut req = server.client.post(server.url(path)).form(params);
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_token_endpoint_answers_every_error_as_rfc_6749_says() {
    let server = common::start().await;
    let secret = register(&server, "svc", &["client_credentials"], "read", None)
        .await
        .expect("secret");
    let refresher = register(&server, "refresher", &["refresh_token"], "read", None)
        .await
        .expect("secret");
    let cc = [("grant_type", "client_credentials")];
    let ok = Some(("svc", secret.as_str()));

    // (Basic credentials, form, expected status, expected error)
    type Case<'a> = (Option<(&'a str, &'a str)>, Vec<(&'a str, &'a str)>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            ok,
            vec![("grant_type", "password")],
            400,
            "unsupported_grant_type",
        ),
        (ok, vec![], 400, "invalid_request"),
        (Some(("svc", "wrong")), cc.to_vec(), 401, "invalid_client"),
        (Some(("nobody", "x")), cc.to_vec(), 401, "invalid_client"),
        (
            None,
            vec![("grant_type", "client_credentials"), ("client_id", "svc")],
            401,
            "invalid_client",
        ),
        (
            Some(("refresher", refresher.as_str())),
            cc.to_vec(),
            400,
            "unauthorized_client",
        ),
        // No client authentication at all: nothing was identified (RFC 6749 §5.2).
        (None, cc.to_vec(), 401, "invalid_client"),
        // The public client, named: identified, but not allowed this grant.
        (
            None,
            vec![("grant_type", "client_credentials"), ("client_id", "first-party")],
            400,
            "unauthorized_client",
        ),
        (
            ok,
            vec![("grant_type", "client_credentials"), ("scope", "read admin")],
            400,
            "invalid_scope",
        ),
        (
            ok,
            vec![
                ("grant_type", "client_credentials"),
                ("resource", "https://evil.example.com"),
            ],
            400,
            "invalid_target",
        ),
        (
            ok,
            vec![("grant_type", "client_credentials"), ("resource", "not-a-uri")],
            400,
            "invalid_target",
        ),
        (
            ok,
            vec![
                ("grant_type", "client_credentials"),
                ("resource", "urn:other:api"),
            ],
            400,
            "invalid_target",
        ),
        (
            ok,
            vec![
                ("grant_type", "client_credentials"),
                ("resource", API),
                ("resource", OTHER_API),
            ],
            400,
            "invalid_target",
        ),
        (
            ok,
            vec![
                ("grant_type", "client_credentials"),
                ("grant_type", "client_credentials"),
            ],
            400,
            "invalid_request",
        ),
        (
            ok,
            vec![
                ("grant_type", "client_credentials"),
                ("client_secret", secret.as_str()),
                ("client_id", "svc"),
            ],
            400,
            "invalid_request",
        ),
    ];
    for (basic, params, status, error) in cases {
        let (got, body) = form(&server, "/oauth2/token", basic, &params).await;
        assert_eq!(
            (got, body["error"].as_str()),
            (status, Some(error)),
            "{params:?}: {body}"
        );
    }

    // A body over ISSUER_MAX_BODY_BYTES is 413 at every form endpoint, in RFC 6749's shape.
    let huge = "a".repeat(200_000);
    for path in ["/oauth2/token", "/oauth2/introspect", "/oauth2/revoke"] {
        let (status, body) = form(&server, path, ok, &[("token", huge.as_str())]).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (413, Some("invalid_request")),
            "{path}: {body}"
        );
        assert!(body["error_description"]
            .as_str()
            .expect("description")
            .contains("too large"));
    }

    // A registered URN audience is granted like an https one.
    let (status, body) = form(
        &server,
        "/oauth2/token",
        ok,
        &[("grant_type", "client_credentials"), ("resource", URN_API)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().expect("token");
    assert_eq!(segment(token, 1)["aud"], URN_API);

    // 401 carries the Basic challenge, also when no authentication was sent at all; the
    // wrong content type is an invalid request.
    for basic in [Some(("svc", "wrong")), None] {
        let mut req = server.client.post(server.url("/oauth2/token")).form(&cc);
        if let Some((id, secret)) = basic {
            req = req.basic_auth(id, Some(secret));
        }
        let resp = req.send().await.expect("request");
        assert_eq!(resp.status(), 401);
        assert_eq!(resp.headers()["www-authenticate"], "Basic realm=\"token-issuer\"");
    }
    let resp = server
        .client
        .post(server.url("/oauth2/token"))
        .basic_auth("svc", Some(&secret))
        .json(&json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 400);
    assert_eq!(
        resp.json::<Value>().await.expect("json")["error"],
        "invalid_request"
    );

    // A registered client cannot spend a first-party refresh token.
    let (_, refresh) = server.user_session("someone@example.com").await;
    let (status, body) = form(
        &server,
        "/oauth2/token",
        Some(("refresher", refresher.as_str())),
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    // Nor does its try spend the token or count as reuse: its own client still refreshes.
    let own = server
        .post_json("/api/v1/auth/refresh", json!({"refresh_token": refresh}))
        .await;
    assert_eq!(own.status(), 200);

    // The same request, well-formed, succeeds: the cases above failed for their one reason.
    let (status, body) = form(
        &server,
        "/oauth2/token",
        ok,
        &[("grant_type", "client_credentials"), ("resource", API)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
}

/// An Ed25519 key pair: the private PEM to sign assertions, the public JWK to register.
fn client_key_pair() -> (jsonwebtoken::EncodingKey, String) {
    use token_issuer::keys::{generate_record, Alg, KeyState, SigningKey};
    let record =
        generate_record(Alg::EdDsa, 0, KeyState::Active, time::OffsetDateTime::now_utc()).expect("key");
    let jwk = SigningKey::from_record(&record)
        .expect("parse")
        .public_jwk()
        .to_string();
    let encoding =
        jsonwebtoken::EncodingKey::from_ed_pem(record.private_key_pem.expose().as_bytes()).expect("pem");
    (encoding, jwk)
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn assertion(key: &jsonwebtoken::EncodingKey, claims: Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA),
        &claims,
        key,
    )
    .expect("sign")
}

#[tokio::test]
async fn private_key_jwt_accepts_one_valid_assertion_once() {
    let server = common::start().await;
    let (key, jwk) = client_key_pair();
    assert!(
        register(&server, "signer", &["client_credentials"], "read", Some(jwk))
            .await
            .is_none()
    );
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims = |aud: &str, exp: i64, jti: Option<&str>| {
        let mut c = json!({"iss": "signer", "sub": "signer", "aud": aud, "exp": exp, "iat": now});
        if let Some(jti) = jti {
            c["jti"] = json!(jti);
        }
        c
    };
    let token_url = server.url("/oauth2/token");
    // The assertion presented at `path`, with one other parameter.
    let present_at = |path: &'static str, param: (&'static str, &'static str), assertion: String| {
        let server = &server;
        async move {
            form(
                server,
                path,
                None,
                &[
                    param,
                    ("client_assertion_type", token_issuer::oauth::JWT_BEARER_ASSERTION),
                    ("client_assertion", &assertion),
                ],
            )
            .await
        }
    };
    let present = |assertion| present_at("/oauth2/token", ("grant_type", "client_credentials"), assertion);

    let valid = assertion(&key, claims(&token_url, now + 60, Some("a-1")));
    let (status, body) = present(valid.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        segment(body["access_token"].as_str().expect("token"), 1)["sub"],
        "signer"
    );
    let (status, body) = present(valid).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")));
    assert!(
        body["error_description"]
            .as_str()
            .expect("why")
            .contains("replayed"),
        "{body}"
    );
    // The issuer identifier is an accepted audience too.
    let (status, _) = present(assertion(&key, claims(&server.base, now + 60, Some("a-2")))).await;
    assert_eq!(status, 200);
    // So is the endpoint the assertion is presented at, but not another endpoint.
    let introspect = |assertion| present_at("/oauth2/introspect", ("token", "not-a-token"), assertion);
    let to_introspection = claims(&server.url("/oauth2/introspect"), now + 60, Some("a-3"));
    let (status, body) = introspect(assertion(&key, to_introspection)).await;
    assert_eq!((status, body["active"].as_bool()), (200, Some(false)), "{body}");
    let to_revocation = claims(&server.url("/oauth2/revoke"), now + 60, Some("a-4"));
    let (status, body) = introspect(assertion(&key, to_revocation)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client")),
        "{body}"
    );

    let (other_key, _) = client_key_pair();
    for (why, bad) in [
        (
            "wrong audience",
            assertion(
                &key,
                claims("https://elsewhere.example.com", now + 60, Some("b-1")),
            ),
        ),
        (
            "expired",
            assertion(&key, claims(&token_url, now - 120, Some("b-2"))),
        ),
        ("no jti", assertion(&key, claims(&token_url, now + 60, None))),
        (
            "lives too long",
            assertion(&key, claims(&token_url, now + 7200, Some("b-3"))),
        ),
        (
            "unregistered key",
            assertion(&other_key, claims(&token_url, now + 60, Some("b-4"))),
        ),
        ("not a JWT", "x.y.z".to_owned()),
    ] {
        let (status, body) = present(bad).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_client")),
            "{why}: {body}"
        );
    }
    // Algorithm confusion: none, HS256 keyed with the registered public key, another alg.
    let header_claims = claims(&token_url, now + 60, Some("d-1"));
    let unsigned = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT"}"#),
        b64(header_claims.to_string().as_bytes())
    );
    let public_jwk = server
        .app
        .oauth
        .clients
        .find("signer")
        .await
        .expect("find")
        .expect("client");
    let token_issuer::oauth::clients::Credential::Key(registered) = &public_jwk.credential else {
        panic!("a key client")
    };
    let x = match &registered.jwk.algorithm {
        jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(okp) => okp.x.clone(),
        _ => panic!("Ed25519"),
    };
    let hmac_with_public = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &header_claims,
        &jsonwebtoken::EncodingKey::from_secret(x.as_bytes()),
    )
    .expect("hs256");
    for (why, forged) in [
        ("alg none", unsigned),
        ("HS256 keyed with the public key", hmac_with_public),
    ] {
        let (status, body) = present(forged).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_client")),
            "{why}: {body}"
        );
        // alg none does not even parse as a JWT here; HS256 gets the generic refusal.
        if why.starts_with("HS256") {
            assert_eq!(body["error_description"], "client authentication failed");
        }
    }

    // Accepted until exp plus 30 s of leeway, and remembered that long: no replay after exp.
    let short = assertion(&key, claims(&token_url, now + 1, Some("e-1")));
    assert_eq!(present(short.clone()).await.0, 200);
    server.advance(Duration::from_secs(2));
    let (status, body) = present(short).await;
    assert_eq!(status, 401, "replayed after exp, within the leeway: {body}");
    assert!(
        body["error_description"]
            .as_str()
            .expect("why")
            .contains("replayed"),
        "{body}"
    );
    // Past exp and the leeway: expired, by the server's clock (not the client's).
    let late = assertion(&key, claims(&token_url, now + 3, Some("e-2")));
    server.advance(Duration::from_secs(32));
    let (status, body) = present(late).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error_description"], "client assertion has expired");

    let (status, body) = form(
        &server,
        "/oauth2/token",
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", "urn:example:unknown"),
            ("client_assertion", "x"),
        ],
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_request")));

    // It authenticates introspection the same way, addressed to that endpoint.
    let introspect_url = server.url("/oauth2/introspect");
    let (status, body) = form(
        &server,
        "/oauth2/introspect",
        None,
        &[
            ("token", "garbage"),
            ("client_assertion_type", token_issuer::oauth::JWT_BEARER_ASSERTION),
            (
                "client_assertion",
                &assertion(&key, claims(&introspect_url, now + 60, Some("c-1"))),
            ),
        ],
    )
    .await;
    assert_eq!((status, body), (200, json!({"active": false})));
}

#[tokio::test]
async fn introspection_reports_only_live_tokens_to_registered_clients() {
    let server = common::start().await;
    let rs = register(&server, "resource-server", &["client_credentials"], "read", None)
        .await
        .expect("secret");
    let auth = Some(("resource-server", rs.as_str()));
    let (access, refresh) = server.user_session("ivy@example.com").await;

    // Only registered clients may ask.
    let (status, body) = form(&server, "/oauth2/introspect", None, &[("token", &access)]).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")));
    let (status, _) = form(
        &server,
        "/oauth2/introspect",
        None,
        &[("token", &access), ("client_id", "first-party")],
    )
    .await;
    assert_eq!(status, 401);
    let (status, body) = form(&server, "/oauth2/introspect", auth, &[]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_request")));

    let (_, info) = form(&server, "/oauth2/introspect", auth, &[("token", &access)]).await;
    assert_eq!(info["active"], true);
    assert_eq!(info["client_id"], "first-party");
    assert_eq!(info["token_type"], "Bearer");
    let user_id = info["sub"].as_str().expect("sub").to_owned();
    let (_, info) = form(
        &server,
        "/oauth2/introspect",
        auth,
        &[("token", &refresh), ("token_type_hint", "refresh_token")],
    )
    .await;
    assert_eq!(info["active"], true);
    assert_eq!(info["token_type"], "refresh_token");
    assert_eq!(info["sub"], user_id.as_str());
    assert!(info["exp"].as_i64().expect("exp") > info["iat"].as_i64().expect("iat"));
    // A wrong hint only changes the order of the search.
    let (_, info) = form(
        &server,
        "/oauth2/introspect",
        auth,
        &[("token", &refresh), ("token_type_hint", "access_token")],
    )
    .await;
    assert_eq!(info["active"], true);

    // Spent, forged, garbage: inactive, and nothing else is said.
    let resp = server
        .post_form(
            "/oauth2/token",
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        )
        .await;
    assert_eq!(resp.status(), 200);
    // Flip a character in the middle of the signature: still base64url, no longer valid.
    let mut forged = access.clone().into_bytes();
    let middle = access.rfind('.').expect("signature") + 20;
    forged[middle] = if forged[middle] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).expect("ascii");
    for token in [refresh.as_str(), forged.as_str(), "garbage", ""] {
        let (status, info) = form(&server, "/oauth2/introspect", auth, &[("token", token)]).await;
        if token.is_empty() {
            assert_eq!(status, 400, "an empty token is a missing parameter");
        } else {
            assert_eq!(info, json!({"active": false}), "{token}");
        }
    }

    // A disabled user's tokens are inactive; a deleted client's too.
    let (access, refresh) = server.user_session("disabled@example.com").await;
    server
        .app
        .accounts
        .set_disabled("disabled@example.com", true)
        .await
        .expect("disable");
    for token in [&access, &refresh] {
        let (_, info) = form(&server, "/oauth2/introspect", auth, &[("token", token)]).await;
        assert_eq!(info, json!({"active": false}));
    }
    let svc = register(&server, "short-lived", &["client_credentials"], "read", None)
        .await
        .expect("secret");
    let (_, token) = form(
        &server,
        "/oauth2/token",
        Some(("short-lived", &svc)),
        &[("grant_type", "client_credentials")],
    )
    .await;
    let token = token["access_token"].as_str().expect("token").to_owned();
    let (_, info) = form(&server, "/oauth2/introspect", auth, &[("token", &token)]).await;
    assert_eq!(info["active"], true);
    // A service's token is not a user's: the issuer's user endpoints refuse it, and say why.
    for path in ["/api/v1/users/me", "/oauth2/userinfo"] {
        let refused = server.get_bearer(path, &token).await;
        assert_eq!(refused.status(), 401);
        let challenge = refused.headers()["www-authenticate"]
            .to_str()
            .expect("ascii")
            .to_owned();
        assert!(
            challenge.contains("service's token (client_credentials)"),
            "{challenge}"
        );
        let body: Value = refused.json().await.expect("json");
        assert_eq!(body["error"], "invalid_token");
        assert!(body["message"]
            .as_str()
            .expect("message")
            .contains("does not act for a user"));
    }
    server
        .app
        .oauth
        .clients
        .delete("short-lived")
        .await
        .expect("delete");
    let (_, info) = form(&server, "/oauth2/introspect", auth, &[("token", &token)]).await;
    assert_eq!(info, json!({"active": false}), "the client is gone");
    // Registered again under the same id, it is another client: old tokens stay dead.
    server.advance(Duration::from_secs(1));
    register(&server, "short-lived", &["client_credentials"], "read", None).await;
    let (_, info) = form(&server, "/oauth2/introspect", auth, &[("token", &token)]).await;
    assert_eq!(
        info,
        json!({"active": false}),
        "a namesake does not revive old tokens"
    );
}

#[tokio::test]
async fn revocation_ends_only_the_callers_own_tokens() {
    let server = common::start().await;
    let a = register(&server, "svc-a", &["client_credentials"], "read", None)
        .await
        .expect("secret");
    let b = register(&server, "svc-b", &["client_credentials"], "read", None)
        .await
        .expect("secret");
    let (auth_a, auth_b) = (Some(("svc-a", a.as_str())), Some(("svc-b", b.as_str())));
    let (_, token) = form(
        &server,
        "/oauth2/token",
        auth_a,
        &[("grant_type", "client_credentials")],
    )
    .await;
    let token = token["access_token"].as_str().expect("token").to_owned();

    let (status, body) = form(&server, "/oauth2/revoke", auth_b, &[("token", &token)]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unauthorized_client"))
    );
    let (_, info) = form(&server, "/oauth2/introspect", auth_b, &[("token", &token)]).await;
    assert_eq!(info["active"], true, "another client's attempt changed nothing");
    let (status, _) = form(&server, "/oauth2/revoke", auth_a, &[("token", &token)]).await;
    assert_eq!(status, 200);
    let (_, info) = form(&server, "/oauth2/introspect", auth_b, &[("token", &token)]).await;
    assert_eq!(info, json!({"active": false}));
    for unknown in ["garbage", "a.b.c"] {
        let (status, _) = form(&server, "/oauth2/revoke", auth_a, &[("token", unknown)]).await;
        assert_eq!(status, 200, "unknown tokens: 200, nothing to do");
    }
    let (status, body) = form(
        &server,
        "/oauth2/revoke",
        Some(("svc-a", "wrong")),
        &[("token", &token)],
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")));

    // The public client: client_id=first-party and no secret, or no identification at all.
    let (access, refresh) = server.user_session("rev@example.com").await;
    let (status, body) = form(&server, "/oauth2/revoke", auth_a, &[("token", &refresh)]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unauthorized_client"))
    );
    let (status, _) = form(
        &server,
        "/oauth2/revoke",
        None,
        &[("token", &access), ("client_id", "first-party")],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        server.get_bearer("/oauth2/userinfo", &access).await.status(),
        401,
        "the issuer's own endpoints honour a revoked access token"
    );
    let (status, _) = form(&server, "/oauth2/revoke", None, &[("token", &refresh)]).await;
    assert_eq!(status, 200);
    let resp = server
        .post_form(
            "/oauth2/token",
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        )
        .await;
    assert_eq!(resp.status(), 400, "the session ended");
}

#[tokio::test]
async fn discovery_lists_what_clients_can_use() {
    let server = common::start().await;
    register(
        &server,
        "reports",
        &["client_credentials"],
        "reports:read audit",
        None,
    )
    .await;
    let doc: Value = server
        .client
        .get(server.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .expect("discovery")
        .json()
        .await
        .expect("json");
    assert_eq!(doc["introspection_endpoint"], server.url("/oauth2/introspect"));
    assert_eq!(doc["revocation_endpoint"], server.url("/oauth2/revoke"));
    assert_eq!(
        doc["grant_types_supported"],
        json!(["authorization_code", "client_credentials", "refresh_token"])
    );
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        json!([
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
            "none"
        ])
    );
    assert_eq!(
        doc["introspection_endpoint_auth_methods_supported"],
        json!(["client_secret_basic", "client_secret_post", "private_key_jwt"])
    );
    // openid always: OpenID Connect Discovery asks for it.
    assert_eq!(
        doc["scopes_supported"],
        json!(["openid", "audit", "reports:read"])
    );
}

/// Whether every online check still honours `access`: introspection, userinfo and /users/me.
async fn online_checks(server: &TestServer, introspector: (&str, &str), access: &str) -> [bool; 3] {
    let (_, info) = form(
        server,
        "/oauth2/introspect",
        Some(introspector),
        &[("token", access)],
    )
    .await;
    let userinfo = server.get_bearer("/oauth2/userinfo", access).await.status();
    let me = server.get_bearer("/api/v1/users/me", access).await.status();
    for status in [userinfo, me] {
        assert!(status == 200 || status == 401, "{status}");
    }
    [info["active"] == true, userinfo == 200, me == 200]
}

#[tokio::test]
async fn ending_a_session_ends_its_access_tokens_for_every_online_check() {
    let server = common::start().await;
    let rs = register(&server, "resource-server", &["client_credentials"], "read", None)
        .await
        .expect("secret");
    let rs = ("resource-server", rs.as_str());
    let live = [true; 3];
    let dead = [false; 3];

    // Every user token names its session with an opaque, random sid; a refresh keeps it.
    let (access, refresh) = server.user_session("sid@example.com").await;
    let sid = segment(&access, 1)["sid"].as_str().expect("sid").to_owned();
    assert_eq!(sid.len(), 36, "a UUID v4: {sid}");
    let (other, _) = server.user_session("sid-other@example.com").await;
    assert_ne!(segment(&other, 1)["sid"].as_str(), Some(sid.as_str()));
    let refreshed: Value = server
        .post_json("/api/v1/auth/refresh", json!({"refresh_token": refresh}))
        .await
        .json()
        .await
        .expect("json");
    let refreshed_access = refreshed["access_token"].as_str().expect("access");
    assert_eq!(segment(refreshed_access, 1)["sid"].as_str(), Some(sid.as_str()));

    // logout ends one session, and only that one.
    let (a1, r1) = server.user_session("logout@example.com").await;
    let (a2, _) = server.session("logout@example.com").await;
    assert_eq!(online_checks(&server, rs, &a1).await, live);
    let body = json!({"refresh_token": r1});
    let resp = server
        .with_bearer(Method::POST, "/api/v1/auth/logout", &a2, Some(body))
        .await;
    assert_eq!(resp.status(), 204);
    assert_eq!(online_checks(&server, rs, &a1).await, dead, "logout");
    assert_eq!(online_checks(&server, rs, &a2).await, live, "the other session");

    // logout-all ends every session of the user, the caller's own too.
    let (a1, _) = server.user_session("all@example.com").await;
    let (a2, _) = server.session("all@example.com").await;
    let resp = server
        .with_bearer(Method::POST, "/api/v1/auth/logout-all", &a2, None)
        .await;
    assert_eq!(resp.status(), 204);
    for token in [&a1, &a2] {
        assert_eq!(online_checks(&server, rs, token).await, dead, "logout-all");
    }

    // Revoking the refresh token at /oauth2/revoke ends its session.
    let (a1, r1) = server.user_session("revoke@example.com").await;
    let resp = server.post_form("/oauth2/revoke", &[("token", &r1)]).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        online_checks(&server, rs, &a1).await,
        dead,
        "refresh token revoked"
    );

    // A reused refresh token ends the session: the thief's fresh access token dies too.
    let (a1, r1) = server.user_session("reuse@example.com").await;
    let first: Value = server
        .post_json("/api/v1/auth/refresh", json!({"refresh_token": r1}))
        .await
        .json()
        .await
        .expect("json");
    let a2 = first["access_token"].as_str().expect("access").to_owned();
    let reuse = server
        .post_json("/api/v1/auth/refresh", json!({"refresh_token": r1}))
        .await;
    assert_eq!(reuse.status(), 401);
    for token in [&a1, &a2] {
        assert_eq!(online_checks(&server, rs, token).await, dead, "refresh reuse");
    }

    // Disabling the user suspends their tokens (refresh tokens alike); enabling them again
    // lifts the suspension.
    let (a1, _) = server.user_session("disable@example.com").await;
    let accounts = &server.app.accounts;
    accounts
        .set_disabled("disable@example.com", true)
        .await
        .expect("disable");
    assert_eq!(online_checks(&server, rs, &a1).await, dead, "user disabled");
    accounts
        .set_disabled("disable@example.com", false)
        .await
        .expect("enable");
    assert_eq!(online_checks(&server, rs, &a1).await, live, "user enabled again");

    // Erasing the user ends every token of theirs.
    let (a1, _) = server.user_session("erase@example.com").await;
    let (a2, _) = server.session("erase@example.com").await;
    let body = json!({"password": common::PASSWORD});
    let resp = server
        .with_bearer(Method::DELETE, "/api/v1/users/me", &a2, Some(body))
        .await;
    assert_eq!(resp.status(), 204);
    for token in [&a1, &a2] {
        assert_eq!(online_checks(&server, rs, token).await, dead, "user erased");
    }

    // A service's own token belongs to no session.
    let (_, token) = form(
        &server,
        "/oauth2/token",
        Some(rs),
        &[("grant_type", "client_credentials")],
    )
    .await;
    let token = token["access_token"].as_str().expect("token");
    assert!(segment(token, 1).get("sid").is_none());
}

/// Waits for the instance's first reading of the change counters: its caches are in use.
async fn polled(server: &TestServer) {
    let changes = server.app.changes.clone();
    let read = common::eventually(Duration::from_secs(10), Duration::from_millis(20), || {
        let current = changes.current();
        async move { current.map(|_| ()) }
    })
    .await;
    assert!(read.is_some(), "the change counters were never read");
}

/// Each instance keeps the clients it has seen in memory; a change made at another instance
/// (or by the CLI) must still count everywhere within `STALE_AFTER`.
#[tokio::test]
async fn a_rotated_or_deleted_client_stops_working_at_every_instance() {
    use token_issuer::store::changes::STALE_AFTER;
    let a = common::start().await;
    let b = a.sibling(&[]).await;
    let old = register(&a, "cached", &["client_credentials"], "read", None)
        .await
        .expect("secret");
    let grant = [("grant_type", "client_credentials")];
    let status = |server: &TestServer, secret: String| {
        let server = server.base.clone();
        async move {
            let resp = reqwest::Client::new()
                .post(format!("{server}/oauth2/token"))
                .basic_auth("cached", Some(secret))
                .form(&grant)
                .send()
                .await
                .expect("request");
            resp.status().as_u16()
        }
    };
    assert_eq!(
        status(&b, old.clone()).await,
        200,
        "b now holds the client in memory"
    );

    let new = a
        .app
        .oauth
        .clients
        .rotate_secret("cached")
        .await
        .expect("rotate")
        .expose()
        .to_owned();
    assert_eq!(status(&a, old.clone()).await, 401, "at once where it was rotated");
    assert_eq!(status(&a, new.clone()).await, 200);
    // Whatever b last read of the change counters is now older than the bound: b asks the
    // database, or has read the new counters meanwhile. Either way the old secret is dead.
    a.advance(STALE_AFTER + Duration::from_millis(1));
    assert_eq!(status(&b, old.clone()).await, 401, "elsewhere within STALE_AFTER");
    assert_eq!(status(&b, new.clone()).await, 200);

    // Without moving the clock: b's poller reads the counters every second.
    assert_eq!(status(&b, new.clone()).await, 200);
    a.app.oauth.clients.delete("cached").await.expect("delete");
    assert_eq!(status(&a, new.clone()).await, 401, "at once where it was deleted");
    let refused = common::eventually(Duration::from_secs(10), Duration::from_millis(50), || {
        let attempt = status(&b, new.clone());
        async move { (attempt.await == 401).then_some(()) }
    })
    .await;
    assert!(refused.is_some(), "b never learnt that the client was deleted");
}

#[tokio::test]
async fn a_token_revoked_at_one_instance_is_inactive_at_every_instance() {
    use token_issuer::store::changes::STALE_AFTER;
    let a = common::start().await;
    // One issuer behind two instances: each verifies the other's tokens.
    let b = a.sibling(&[("ISSUER_URL", a.base.as_str())]).await;
    let secret = register(&a, "svc", &["client_credentials"], "read", None)
        .await
        .expect("secret");
    let auth = Some(("svc", secret.as_str()));
    let mut tokens = Vec::new();
    for _ in 0..2 {
        let (_, issued) = form(&a, "/oauth2/token", auth, &[("grant_type", "client_credentials")]).await;
        tokens.push(issued["access_token"].as_str().expect("token").to_owned());
    }
    polled(&a).await;
    polled(&b).await;
    for server in [&a, &b] {
        for token in &tokens {
            let (_, info) = form(server, "/oauth2/introspect", auth, &[("token", token)]).await;
            assert_eq!(info["active"], true, "the revoked list is now held in memory");
        }
    }
    let active = |server: &TestServer, token: String| {
        let (base, secret) = (server.base.clone(), secret.clone());
        async move {
            let resp = reqwest::Client::new()
                .post(format!("{base}/oauth2/introspect"))
                .basic_auth("svc", Some(secret))
                .form(&[("token", token)])
                .send()
                .await
                .expect("request");
            resp.json::<Value>().await.expect("json")["active"] == true
        }
    };

    let (status, _) = form(&a, "/oauth2/revoke", auth, &[("token", &tokens[0])]).await;
    assert_eq!(status, 200);
    assert!(
        !active(&a, tokens[0].clone()).await,
        "at once where it was revoked"
    );
    let inactive = common::eventually(Duration::from_secs(10), Duration::from_millis(50), || {
        let check = active(&b, tokens[0].clone());
        async move { (!check.await).then_some(()) }
    })
    .await;
    assert!(inactive.is_some(), "b never learnt of the revocation");
    assert!(active(&b, tokens[1].clone()).await, "the other token lives on");

    let (status, _) = form(&b, "/oauth2/revoke", auth, &[("token", &tokens[1])]).await;
    assert_eq!(status, 200);
    a.advance(STALE_AFTER + Duration::from_millis(1));
    assert!(
        !active(&a, tokens[1].clone()).await,
        "elsewhere within STALE_AFTER"
    );
}
