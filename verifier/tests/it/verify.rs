//! Validation rules, hostile tokens, a real token-issuer, and the axum integration.

use crate::common::*;
use axum::routing::get;
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{json, Value};
use token_issuer::keys::Alg;
use token_verifier::axum::{require_bearer, Authenticated};
use token_verifier::{Claims, Verifier, VerifyError};

fn with(changes: Value) -> Value {
    let mut c = claims();
    for (k, v) in changes.as_object().expect("object") {
        if v.is_null() {
            c.as_object_mut().expect("object").remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

fn b64(v: &Value) -> String {
    B64.encode(v.to_string())
}

#[tokio::test]
async fn every_forged_or_invalid_token_is_refused() {
    let rsa = new_key(Alg::Rs256);
    let ed = new_key(Alg::EdDsa);
    let server = jwks_server(vec![rsa.clone(), ed.clone()], 300).await;
    let v = verifier(&server, options()).await;
    let now = now();
    let good = sign(&rsa, &claims());
    v.verify::<Value>(&good)
        .await
        .expect("control: a good token verifies");
    v.verify::<Value>(&sign(&ed, &claims()))
        .await
        .expect("control: EdDSA too");

    let jwk = &serde_json::from_str::<Value>(
        &reqwest::get(&server.url)
            .await
            .expect("jwks")
            .text()
            .await
            .expect("body"),
    )
    .expect("json")["keys"][0];
    let public_der = B64.decode(jwk["n"].as_str().expect("n")).expect("n");
    let payload = b64(&claims());
    let hs = |secret: &[u8]| {
        let mut h = Header::new(jsonwebtoken::Algorithm::HS256);
        h.kid = Some(rsa.kid.clone());
        h.typ = Some("at+jwt".into());
        jsonwebtoken::encode(&h, &claims(), &EncodingKey::from_secret(secret)).expect("hs256")
    };
    let swap_kid = {
        // An EdDSA signature presented under the RSA key's kid.
        let t = sign(&ed, &claims());
        let (_, rest) = t.split_once('.').expect("jws");
        format!(
            "{}.{rest}",
            b64(&json!({"alg": "EdDSA", "typ": "at+jwt", "kid": rsa.kid}))
        )
    };
    let attacker = new_key(Alg::EdDsa);
    let cases: Vec<(&str, String)> = vec![
        (
            "alg none",
            format!(
                "{}.{payload}.",
                b64(&json!({"alg": "none", "typ": "at+jwt", "kid": rsa.kid}))
            ),
        ),
        ("HS256 keyed with the public modulus", hs(&public_der)),
        ("HS256 keyed with the JWK text", hs(jwk.to_string().as_bytes())),
        ("alg swapped to the other key's", swap_kid),
        ("attacker key under a known kid", {
            let t = token_issuer::keys::SigningKey::from_record(&attacker)
                .expect("key")
                .sign_jws(
                    token_issuer::keys::JwsKind::AccessToken,
                    claims().to_string().as_bytes(),
                )
                .expect("sign");
            let (_, rest) = t.split_once('.').expect("jws");
            format!(
                "{}.{rest}",
                b64(&json!({"alg": "EdDSA", "typ": "at+jwt", "kid": ed.kid}))
            )
        }),
        (
            "expired",
            sign(&rsa, &with(json!({"exp": now - 120, "iat": now - 900}))),
        ),
        ("not yet valid", sign(&rsa, &with(json!({"nbf": now + 600})))),
        (
            "issued in the future",
            sign(&rsa, &with(json!({"iat": now + 600, "exp": now + 900}))),
        ),
        (
            "wrong issuer",
            sign(&rsa, &with(json!({"iss": "https://evil.test"}))),
        ),
        (
            "wrong audience",
            sign(&rsa, &with(json!({"aud": "https://other.test"}))),
        ),
        ("no sub", sign(&rsa, &with(json!({"sub": null})))),
        ("no exp", sign(&rsa, &with(json!({"exp": null})))),
        ("no jti (RFC 9068)", sign(&rsa, &with(json!({"jti": null})))),
        (
            "no client_id (RFC 9068)",
            sign(&rsa, &with(json!({"client_id": null}))),
        ),
        ("unknown kid", {
            let (_, rest) = good.split_once('.').expect("jws");
            format!(
                "{}.{rest}",
                b64(&json!({"alg": "RS256", "typ": "at+jwt", "kid": "nope"}))
            )
        }),
        ("typ JWT", {
            let (_, rest) = good.split_once('.').expect("jws");
            format!(
                "{}.{rest}",
                b64(&json!({"alg": "RS256", "typ": "JWT", "kid": rsa.kid}))
            )
        }),
        ("crit header", {
            let (_, rest) = good.split_once('.').expect("jws");
            format!(
                "{}.{rest}",
                b64(&json!({"alg": "RS256", "typ": "at+jwt", "kid": rsa.kid, "crit": ["exp"]}))
            )
        }),
        ("bit-flipped signature", {
            let mut t = good.clone().into_bytes();
            let last = t.len() - 5;
            t[last] = if t[last] == b'A' { b'B' } else { b'A' };
            String::from_utf8(t).expect("utf8")
        }),
        ("truncated", good[..good.len() - 20].to_owned()),
        (
            "huge",
            format!("{}.{}.x", b64(&json!({"alg": "RS256"})), "A".repeat(40_000)),
        ),
        ("garbage", "garbage".to_owned()),
    ];

    for (name, token) in cases {
        let result = v.verify::<Value>(&token).await;
        assert!(result.is_err(), "{name} was accepted");
    }
    // And the reasons are specific enough to log.
    let expired = v
        .verify::<Value>(&sign(&rsa, &with(json!({"exp": now - 120}))))
        .await;
    assert!(matches!(expired, Err(VerifyError::Expired)));
    let aud = v
        .verify::<Value>(&sign(&rsa, &with(json!({"aud": ["x", AUDIENCE]}))))
        .await;
    assert!(aud.is_ok(), "aud lists may contain ours");
    let skew = v
        .verify::<Value>(&sign(&rsa, &with(json!({"exp": now - 30}))))
        .await;
    assert!(skew.is_ok(), "within the 60 s default leeway");
}

#[tokio::test]
async fn custom_claims_are_typed() {
    #[derive(serde::Deserialize)]
    struct Tenant {
        tenant: String,
    }
    let key = new_key(Alg::EdDsa);
    let server = jwks_server(vec![key.clone()], 300).await;
    let v = verifier(&server, options()).await;
    let claims: Claims<Tenant> = v
        .verify(&sign(&key, &with(json!({"tenant": "acme"}))))
        .await
        .expect("valid");
    assert_eq!(claims.custom.tenant, "acme");
    assert!(claims.has_scope("read"));
}

#[tokio::test]
async fn verifies_tokens_of_a_real_token_issuer_found_by_discovery() {
    // Audiences need not be URLs: any absolute URI.
    let server = token_issuer::testkit::start_with(&[("ISSUER_AUDIENCE", "urn:vera:api")]).await;
    let base = server.base.clone();
    server.register("vera@example.com").await;
    let tokens = server.login("vera@example.com").await;

    let v = Verifier::builder(&base)
        .audience("urn:vera:api")
        .build()
        .await
        .expect("discovery");
    let access = tokens["access_token"].as_str().expect("token");
    let claims: Claims = v.verify(access).await.expect("valid");
    assert_eq!(claims.client_id, "first-party");
    assert!(claims.aud.contains("urn:vera:api"));
    assert!(claims.sid.is_some(), "a user's token names its session");
    let other_audience = Verifier::builder(&base)
        .audience(&base)
        .build()
        .await
        .expect("discovery");
    assert!(
        other_audience.verify::<Value>(access).await.is_err(),
        "the token is for urn:vera:api only"
    );
    let refresh = tokens["refresh_token"].as_str().expect("refresh");
    assert!(
        v.verify::<Value>(refresh).await.is_err(),
        "a refresh token is not an access token"
    );

    let wrong_issuer = Verifier::builder(format!("{base}/other"))
        .audience("urn:vera:api")
        .build()
        .await;
    assert!(wrong_issuer.is_err(), "discovery must name the issuer exactly");
}

#[tokio::test]
async fn axum_layer_and_extractor_answer_with_rfc6750_challenges() {
    let key = new_key(Alg::EdDsa);
    let server = jwks_server(vec![key.clone()], 300).await;
    let v = verifier(&server, options()).await;
    async fn hello(auth: Authenticated) -> Result<String, token_verifier::axum::AuthError> {
        auth.require_scope("read")?;
        Ok(format!("hello {}", auth.0.sub))
    }
    async fn admin(auth: Authenticated) -> Result<String, token_verifier::axum::AuthError> {
        auth.require_scope("admin")?;
        Ok("admin".into())
    }
    let app = Router::new()
        .route("/hello", get(hello))
        .route("/admin", get(admin))
        .layer(axum::middleware::from_fn_with_state(v.clone(), require_bearer))
        .with_state(v);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    let http = reqwest::Client::new();
    let get = |path: &str, token: Option<String>| {
        let mut r = http.get(format!("{base}{path}"));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send()
    };
    let good = sign(&key, &claims());
    let ok = get("/hello", Some(good.clone())).await.expect("req");
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.expect("text"), "hello user-1");

    let none = get("/hello", None).await.expect("req");
    assert_eq!(none.status(), 401);
    assert_eq!(none.headers()["www-authenticate"], "Bearer");
    let bad = get("/hello", Some("nonsense".into())).await.expect("req");
    assert_eq!(bad.status(), 401);
    assert_eq!(
        bad.headers()["www-authenticate"],
        "Bearer error=\"invalid_token\""
    );
    let body = bad.text().await.expect("text");
    assert!(body.is_empty(), "no reason leaks to the caller: {body}");
    let forbidden = get("/admin", Some(good)).await.expect("req");
    assert_eq!(forbidden.status(), 403);
    assert!(forbidden.headers()["www-authenticate"]
        .to_str()
        .expect("ascii")
        .contains("insufficient_scope"));
}

#[tokio::test]
async fn no_keys_at_all_is_a_503_not_a_401() {
    let key = new_key(Alg::EdDsa);
    let server = jwks_server(vec![key.clone()], 300).await;
    server.set_mode(Mode::Down);
    let v = verifier(&server, options()).await;
    assert!(v.prefetch().await.is_err(), "prefetch reports the outage");
    let app = Router::new()
        .route("/hello", get(|| async { "hello" }))
        .layer(axum::middleware::from_fn_with_state(v.clone(), require_bearer))
        .with_state(v);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hello", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    let resp = reqwest::Client::new()
        .get(url)
        .bearer_auth(sign(&key, &claims()))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 503, "the token may be fine; the keys are missing");
}
