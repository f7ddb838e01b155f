//! Access tokens verified offline from the JWKS; refresh rotation, reuse and concurrency.

use crate::common;

use crate::common::{segment, start, start_with};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::{json, Value};

/// Verifies as a downstream service would: key by `kid` from the served JWKS, algorithm
/// pinned from the JWK (never from the token), `typ` checked.
async fn verify_offline(s: &common::TestServer, token: &str) -> Value {
    let jwks: JwkSet = serde_json::from_value(s.jwks().await).expect("JWKS parses as a JWK set");
    let header = jsonwebtoken::decode_header(token).expect("header");
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let jwk: &Jwk = jwks
        .find(header.kid.as_deref().expect("kid"))
        .expect("kid published");
    let alg = jwk.common.key_algorithm.expect("JWK carries alg");
    let alg: jsonwebtoken::Algorithm = alg.to_string().parse().expect("signing alg");
    let mut validation = Validation::new(alg);
    validation.set_issuer(&[&s.base]);
    validation.set_audience(&[&s.base]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub", "jti"]);
    let key = DecodingKey::from_jwk(jwk).expect("decoding key");
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .expect("verifies")
        .claims
}

#[tokio::test]
async fn rs256_access_tokens_verify_offline_with_the_served_jwks() {
    let s = start().await;
    let user = s.register("frank@example.com").await;
    let tokens = s.login("frank@example.com").await;
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 900);
    let access = tokens["access_token"].as_str().expect("access");
    let header = segment(access, 0);
    assert_eq!(header["alg"], "RS256");
    let claims = verify_offline(&s, access).await;
    assert_eq!(claims["sub"], user["id"]);
    assert_eq!(claims["iss"], s.base);
    assert_eq!(claims["client_id"], "first-party");
    assert_eq!(
        claims["exp"].as_i64().expect("exp") - claims["iat"].as_i64().expect("iat"),
        900
    );
    let text = claims.to_string();
    assert!(!text.contains("frank"), "no personal data in tokens: {text}");
    let jti = uuid::Uuid::parse_str(claims["jti"].as_str().expect("jti")).expect("uuid jti");
    assert_eq!(jti.get_version_num(), 4, "random jti");
    let kid = header["kid"].as_str().expect("kid");
    assert_eq!(
        kid,
        s.keyset()["keys"][0]["kid"],
        "kid is the stored key's thumbprint"
    );

    let second = s.login("frank@example.com").await;
    assert_ne!(
        segment(second["access_token"].as_str().expect("t"), 1)["jti"],
        claims["jti"]
    );
}

#[tokio::test]
async fn eddsa_access_tokens_verify_offline() {
    let s = start_with(&[("ISSUER_SIGNING_ALG", "EdDSA"), ("ISSUER_ACCESS_TOKEN_TTL", "5m")]).await;
    s.register("grace@example.com").await;
    let tokens = s.login("grace@example.com").await;
    let access = tokens["access_token"].as_str().expect("access");
    assert_eq!(segment(access, 0)["alg"], "EdDSA");
    assert_eq!(tokens["expires_in"], 300);
    verify_offline(&s, access).await;
    assert_eq!(s.jwks().await["keys"][0]["crv"], "Ed25519");
}

#[tokio::test]
async fn jwks_is_cacheable_and_revalidates_with_etag() {
    let s = start().await;
    let resp = s
        .client
        .get(s.url("/.well-known/jwks.json"))
        .send()
        .await
        .expect("jwks");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "public, max-age=300");
    let etag = resp.headers()["etag"].to_str().expect("etag").to_owned();
    let jwks: Value = resp.json().await.expect("json");
    for key in jwks["keys"].as_array().expect("keys") {
        assert_eq!(key["use"], "sig");
        assert_eq!(key["kty"], "RSA");
        for private in ["d", "p", "q", "dp", "dq", "qi"] {
            assert!(key.get(private).is_none());
        }
    }
    let again = s
        .client
        .get(s.url("/.well-known/jwks.json"))
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("jwks");
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()["etag"], etag.as_str());
    let other = s
        .client
        .get(s.url("/.well-known/jwks.json"))
        .header("if-none-match", "\"other\"")
        .send()
        .await
        .expect("jwks");
    assert_eq!(other.status(), 200);
}

#[tokio::test]
async fn discovery_is_served_at_both_well_known_paths() {
    let s = start().await;
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let doc: Value = s
            .client
            .get(s.url(path))
            .send()
            .await
            .expect("discovery")
            .json()
            .await
            .expect("json");
        assert_eq!(doc["issuer"], s.base, "issuer exactly as configured");
        assert_eq!(doc["jwks_uri"], format!("{}/.well-known/jwks.json", s.base));
        assert_eq!(doc["token_endpoint"], format!("{}/oauth2/token", s.base));
        assert!(doc["grant_types_supported"]
            .as_array()
            .expect("grants")
            .contains(&json!("refresh_token")));
        // Every advertised endpoint answers (not 404).
        let jwks = s
            .client
            .get(doc["jwks_uri"].as_str().expect("uri"))
            .send()
            .await
            .expect("get");
        assert_eq!(jwks.status(), 200);
    }
}

/// A GET of a published document is answered before routing (`wellknown::Published`); a
/// HEAD, and the metadata's first GET, which builds it, go through the router. Both ways must
/// answer alike, inside CORS.
#[tokio::test]
async fn published_documents_answer_alike_before_and_after_routing() {
    let origin = "https://app.example.com";
    let s = start_with(&[("ISSUER_CORS_ORIGINS", origin)]).await;
    let etag = s
        .client
        .get(s.url("/.well-known/jwks.json"))
        .send()
        .await
        .expect("jwks")
        .headers()["etag"]
        .clone();
    let answer = |method: reqwest::Method, path: &'static str, tag: Option<&reqwest::header::HeaderValue>| {
        let mut request = s.client.request(method, s.url(path)).header("origin", origin);
        if let Some(tag) = tag {
            request = request.header("if-none-match", tag);
        }
        async move {
            let resp = request.send().await.expect("answer");
            let mut headers: Vec<(String, String)> = resp
                .headers()
                .iter()
                .filter(|(name, _)| !["date", "x-request-id", "content-length"].contains(&name.as_str()))
                .map(|(name, value)| (name.to_string(), value.to_str().expect("text").to_owned()))
                .collect();
            headers.sort();
            (resp.status().as_u16(), headers, resp.bytes().await.expect("body"))
        }
    };
    for (path, tag, status) in [
        ("/.well-known/openid-configuration", None, 200),
        ("/.well-known/oauth-authorization-server", None, 200),
        ("/.well-known/jwks.json", None, 200),
        ("/.well-known/jwks.json", Some(&etag), 304),
    ] {
        let first = answer(reqwest::Method::GET, path, tag).await;
        let again = answer(reqwest::Method::GET, path, tag).await;
        let head = answer(reqwest::Method::HEAD, path, tag).await;
        assert_eq!(first.0, status, "{path}");
        assert_eq!(first, again, "{path}");
        assert_eq!((head.0, &head.1), (first.0, &first.1), "{path}: HEAD, routed");
        assert!(head.2.is_empty());
        assert!(
            first
                .1
                .contains(&("access-control-allow-origin".to_owned(), origin.to_owned())),
            "{path}"
        );
        assert!(
            first.1.iter().any(|(name, _)| name == "x-content-type-options"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_whole_family() {
    let s = start().await;
    let (_, first) = s.user_session("heidi@example.com").await;
    let rotated: Value = s
        .post_json("/api/v1/auth/refresh", json!({"refresh_token": first}))
        .await
        .json()
        .await
        .expect("json");
    let second = rotated["refresh_token"]
        .as_str()
        .expect("new refresh token")
        .to_owned();
    assert_ne!(second, first);
    verify_offline(&s, rotated["access_token"].as_str().expect("access")).await;

    // The same grant through the OAuth token endpoint (one code path).
    let resp = s
        .post_form(
            "/oauth2/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &second),
                ("client_id", "first-party"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let third: Value = resp.json().await.expect("json");
    let third = third["refresh_token"].as_str().expect("third").to_owned();

    // An old token comes back: refused, and the newest token of the family dies with it.
    let reuse = s
        .post_json("/api/v1/auth/refresh", json!({"refresh_token": first}))
        .await;
    assert_eq!(reuse.status(), 401);
    assert_eq!(
        reuse.json::<Value>().await.expect("json")["error"],
        "invalid_grant"
    );
    let newest = s
        .post_form(
            "/oauth2/token",
            &[("grant_type", "refresh_token"), ("refresh_token", &third)],
        )
        .await;
    assert_eq!(newest.status(), 400);
    assert_eq!(
        newest.json::<Value>().await.expect("json")["error"],
        "invalid_grant"
    );

    // Other sessions of the same user are untouched.
    let other = s.login("heidi@example.com").await;
    let ok = s
        .post_json(
            "/api/v1/auth/refresh",
            json!({"refresh_token": other["refresh_token"]}),
        )
        .await;
    assert_eq!(ok.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_eight_concurrent_refreshes_exactly_one_wins() {
    let s = start().await;
    let (_, refresh) = s.user_session("ivan@example.com").await;
    let url = s.url("/api/v1/auth/refresh");
    let statuses = race((0..8).map(|_| s.client.post(&url).json(&json!({"refresh_token": refresh})))).await;
    assert_eq!(statuses.iter().filter(|&&c| c == 200).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|&c| c == 200 || c == 401), "{statuses:?}");
}

#[tokio::test]
async fn logout_ends_one_session_and_logout_all_ends_every_session() {
    let s = start().await;
    let (access, one) = s.user_session("judy@example.com").await;
    let two = s.login("judy@example.com").await["refresh_token"]
        .as_str()
        .expect("rt")
        .to_owned();
    let (access_three, three) = s.session("judy@example.com").await;

    let resp = s
        .client
        .post(s.url("/api/v1/auth/logout"))
        .bearer_auth(&access)
        .json(&json!({"refresh_token": one}))
        .send()
        .await
        .expect("logout");
    assert_eq!(resp.status(), 204);
    assert_eq!(
        s.post_json("/api/v1/auth/refresh", json!({"refresh_token": one}))
            .await
            .status(),
        401
    );
    let rotated: Value = s
        .post_json("/api/v1/auth/refresh", json!({"refresh_token": two}))
        .await
        .json()
        .await
        .expect("json");
    let two = rotated["refresh_token"].as_str().expect("rt").to_owned();

    // Another user's bearer cannot end judy's session.
    let (mallory, _) = s.user_session("mallory@example.com").await;
    let resp = s
        .client
        .post(s.url("/api/v1/auth/logout"))
        .bearer_auth(&mallory)
        .json(&json!({"refresh_token": two}))
        .send()
        .await
        .expect("logout");
    assert_eq!(resp.status(), 204);
    let rotated: Value = s
        .post_json("/api/v1/auth/refresh", json!({"refresh_token": two}))
        .await
        .json()
        .await
        .expect("json");
    let two = rotated["refresh_token"].as_str().expect("still valid").to_owned();

    // Session one is over: its access token opens nothing any more.
    let resp = s
        .client
        .post(s.url("/api/v1/auth/logout-all"))
        .bearer_auth(&access)
        .send()
        .await
        .expect("logout-all");
    assert_eq!(resp.status(), 401);
    let resp = s
        .client
        .post(s.url("/api/v1/auth/logout-all"))
        .bearer_auth(&access_three)
        .send()
        .await
        .expect("logout-all");
    assert_eq!(resp.status(), 204);
    for token in [two, three] {
        assert_eq!(
            s.post_json("/api/v1/auth/refresh", json!({"refresh_token": token}))
                .await
                .status(),
            401
        );
    }
    let no_bearer = s
        .client
        .post(s.url("/api/v1/auth/logout-all"))
        .send()
        .await
        .expect("req");
    assert_eq!(no_bearer.status(), 401);
}

#[tokio::test]
async fn token_endpoint_speaks_rfc6749_errors() {
    let s = start().await;
    let (_, refresh) = s.user_session("kim@example.com").await;
    let form = "application/x-www-form-urlencoded";
    let grant = format!("grant_type=refresh_token&refresh_token={refresh}");
    // (case, content type, body, Basic secret of first-party, status, error)
    let cases = [
        (
            "JSON body",
            "application/json",
            json!({"grant_type": "refresh_token"}).to_string(),
            None,
            400,
            "invalid_request",
        ),
        (
            "repeated parameter",
            form,
            format!("{grant}&refresh_token={refresh}"),
            None,
            400,
            "invalid_request",
        ),
        (
            "no grant_type",
            form,
            format!("refresh_token={refresh}"),
            None,
            400,
            "invalid_request",
        ),
        (
            "no refresh_token",
            form,
            "grant_type=refresh_token".to_owned(),
            None,
            400,
            "invalid_request",
        ),
        (
            "password grant",
            form,
            "grant_type=password".to_owned(),
            None,
            400,
            "unsupported_grant_type",
        ),
        (
            "unknown token",
            form,
            "grant_type=refresh_token&refresh_token=bogus".to_owned(),
            None,
            400,
            "invalid_grant",
        ),
        (
            "scope",
            form,
            format!("{grant}&scope=admin"),
            None,
            400,
            "invalid_scope",
        ),
        (
            "unknown client",
            form,
            format!("{grant}&client_id=someone-else"),
            None,
            401,
            "invalid_client",
        ),
        (
            "a secret for the public client",
            form,
            grant.clone(),
            Some("guess"),
            401,
            "invalid_client",
        ),
        (
            "two client ids",
            form,
            format!("{grant}&client_id=x"),
            Some(""),
            400,
            "invalid_request",
        ),
    ];
    for (case, content_type, body, basic, status, code) in cases {
        let mut request = s
            .client
            .post(s.url("/oauth2/token"))
            .header("content-type", content_type)
            .body(body);
        if let Some(secret) = basic {
            request = request.basic_auth("first-party", Some(secret));
        }
        let resp = request.send().await.expect("request");
        assert_eq!(resp.status().as_u16(), status, "{case}");
        assert_eq!(resp.headers()["cache-control"], "no-store", "{case}");
        if status == 401 {
            let challenge = resp.headers()["www-authenticate"].to_str().expect("ascii");
            assert!(challenge.starts_with("Basic"), "{case}: {challenge}");
        }
        let body: Value = resp.json().await.expect("json");
        assert_eq!(body["error"], code, "{case}");
        assert!(body["error_description"].is_string(), "{case}");
    }
    // None of the failures above used up the token; the public client may also come as
    // `Basic base64("first-party:")`, as some client libraries send it.
    let ok = s
        .client
        .post(s.url("/oauth2/token"))
        .basic_auth("first-party", Some(""))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)])
        .send()
        .await
        .expect("req");
    assert_eq!(ok.status(), 200);
    let refresh = ok.json::<Value>().await.expect("json")["refresh_token"]
        .as_str()
        .expect("rt")
        .to_owned();
    let ok = s
        .post_form(
            "/oauth2/token",
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        )
        .await;
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn access_tokens_expire_after_their_lifetime() {
    let s = start().await;
    let (access, _) = s.user_session("lena@example.com").await;
    assert_eq!(s.get_bearer("/api/v1/users/me", &access).await.status(), 200);
    // The default lifetime, 15 minutes: still good just before, refused just after.
    s.advance(std::time::Duration::from_secs(15 * 60 - 1));
    assert_eq!(s.get_bearer("/api/v1/users/me", &access).await.status(), 200);
    s.advance(std::time::Duration::from_secs(2));
    let expired = s.get_bearer("/api/v1/users/me", &access).await;
    assert_eq!(expired.status(), 401);
    assert!(expired.headers()["www-authenticate"]
        .to_str()
        .expect("ascii")
        .contains("invalid_token"));
}

#[tokio::test]
async fn expired_refresh_tokens_are_refused() {
    let s = start().await;
    let (_, refresh) = s.user_session("mia@example.com").await;
    // Age every stored refresh token past its expiry instead of waiting 7 days.
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&s.database_url).await.expect("connect");
    sqlx::query("UPDATE refresh_tokens SET expires_at = expires_at - 700000")
        .execute(&pool)
        .await
        .expect("age");
    let resp = s
        .post_json("/api/v1/auth/refresh", json!({"refresh_token": refresh}))
        .await;
    assert_eq!(resp.status(), 401);
    assert_eq!(
        resp.json::<Value>().await.expect("json")["error"],
        "invalid_grant"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exactly_one_wins_across_two_instances_on_one_database() {
    let a = start().await;
    let b = common::start_on(a.dir.clone(), a.database_url.clone(), &[]).await;
    let (_, refresh) = a.user_session("olga@example.com").await;
    let form = [("grant_type", "refresh_token"), ("refresh_token", &refresh)];
    let statuses = race((0..8).map(|i| {
        let server = if i % 2 == 0 { &a } else { &b };
        server.client.post(server.url("/oauth2/token")).form(&form)
    }))
    .await;
    assert_eq!(statuses.iter().filter(|&&c| c == 200).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|&c| c == 200 || c == 400), "{statuses:?}");
}

/// Sends the requests together: each waits at a barrier until all are ready. Their statuses.
async fn race(requests: impl Iterator<Item = reqwest::RequestBuilder>) -> Vec<u16> {
    let requests: Vec<_> = requests.collect();
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(requests.len()));
    let tasks: Vec<_> = requests
        .into_iter()
        .map(|request| {
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                request.send().await.expect("request").status().as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.expect("task"));
    }
    statuses
}
