//! Hostile bearer tokens on a protected endpoint: every one is a 401, none a 500.

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use common::{segment, start};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

fn b64(v: &Value) -> String {
    B64.encode(v.to_string())
}

fn sign(alg: Algorithm, kid: Option<&str>, typ: &str, claims: &Value, key: &EncodingKey) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    header.typ = Some(typ.to_owned());
    jsonwebtoken::encode(&header, claims, key).expect("encode")
}

#[tokio::test]
async fn forged_and_invalid_tokens_are_refused() {
    let s = start().await;
    let (access, refresh) = s.user_session("oscar@example.com").await;
    let good_claims = segment(&access, 1);
    let kid = segment(&access, 0)["kid"].as_str().expect("kid").to_owned();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();

    let keyset = s.keyset();
    let real_pem = keyset["keys"][0]["private_key_pem"].as_str().expect("pem");
    let real_key = EncodingKey::from_rsa_pem(real_pem.as_bytes()).expect("real key");
    let attacker_pem = {
        use rsa::pkcs8::EncodePrivateKey as _;
        let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).expect("attacker key");
        key.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
            .expect("pem")
            .to_string()
    };
    let attacker_key = EncodingKey::from_rsa_pem(attacker_pem.as_bytes()).expect("attacker key");
    let jwk = &s.jwks().await["keys"][0];
    let public_pem = {
        use rsa::pkcs8::EncodePublicKey as _;
        let n = rsa::BigUint::from_bytes_be(&B64.decode(jwk["n"].as_str().expect("n")).expect("b64"));
        let e = rsa::BigUint::from_bytes_be(&B64.decode(jwk["e"].as_str().expect("e")).expect("b64"));
        rsa::RsaPublicKey::new(n, e)
            .expect("public")
            .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
            .expect("pem")
    };
    let with = |changes: Value| {
        let mut claims = good_claims.clone();
        for (k, v) in changes.as_object().expect("object") {
            claims[k] = v.clone();
        }
        claims
    };

    // Sanity: a token we sign with the real key and unchanged claims is accepted, so each
    // refusal below is caused by the one thing that case changes.
    let control = sign(Algorithm::RS256, Some(&kid), "at+jwt", &good_claims, &real_key);
    assert_eq!(s.get_bearer("/api/v1/users/me", &control).await.status(), 200);

    let payload = b64(&good_claims);
    let cases: Vec<(&str, String)> = vec![
        (
            "alg none",
            format!(
                "{}.{payload}.",
                b64(&json!({"alg": "none", "typ": "at+jwt", "kid": kid}))
            ),
        ),
        (
            "alg None",
            format!(
                "{}.{payload}.",
                b64(&json!({"alg": "None", "typ": "at+jwt", "kid": kid}))
            ),
        ),
        (
            "HS256 keyed with the public key",
            sign(
                Algorithm::HS256,
                Some(&kid),
                "at+jwt",
                &good_claims,
                &EncodingKey::from_secret(public_pem.as_bytes()),
            ),
        ),
        (
            "unknown kid",
            sign(
                Algorithm::RS256,
                Some("no-such-kid"),
                "at+jwt",
                &good_claims,
                &real_key,
            ),
        ),
        (
            "no kid",
            sign(Algorithm::RS256, None, "at+jwt", &good_claims, &real_key),
        ),
        (
            "known kid, attacker's key",
            sign(
                Algorithm::RS256,
                Some(&kid),
                "at+jwt",
                &good_claims,
                &attacker_key,
            ),
        ),
        (
            "expired",
            sign(
                Algorithm::RS256,
                Some(&kid),
                "at+jwt",
                &with(json!({"exp": now - 10, "iat": now - 910})),
                &real_key,
            ),
        ),
        (
            "wrong aud",
            sign(
                Algorithm::RS256,
                Some(&kid),
                "at+jwt",
                &with(json!({"aud": "https://other.example"})),
                &real_key,
            ),
        ),
        (
            "wrong iss",
            sign(
                Algorithm::RS256,
                Some(&kid),
                "at+jwt",
                &with(json!({"iss": "https://evil.example"})),
                &real_key,
            ),
        ),
        (
            "issued in the future",
            sign(
                Algorithm::RS256,
                Some(&kid),
                "at+jwt",
                &with(json!({"iat": now + 3600, "exp": now + 4000})),
                &real_key,
            ),
        ),
        (
            "typ JWT",
            sign(Algorithm::RS256, Some(&kid), "JWT", &good_claims, &real_key),
        ),
        ("refresh token as bearer", refresh.clone()),
        ("truncated signature", access[..access.len() - 10].to_owned()),
        ("garbage", "not.a.jwt".to_owned()),
        ("huge", "a".repeat(20_000)),
    ];
    for (name, token) in cases {
        let resp = s.get_bearer("/api/v1/users/me", &token).await;
        assert_eq!(resp.status(), 401, "{name}");
        let challenge = resp.headers()["www-authenticate"]
            .to_str()
            .expect("ascii")
            .to_owned();
        assert!(
            challenge.starts_with("Bearer ") && challenge.contains("error=\"invalid_token\""),
            "{name}: {challenge}"
        );
        let body: Value = resp.json().await.expect("json");
        assert_eq!(body["error"], "invalid_token", "{name}");
    }

    let none = s.client.get(s.url("/api/v1/users/me")).send().await.expect("req");
    assert_eq!(none.status(), 401);
    let challenge = none.headers()["www-authenticate"].to_str().expect("ascii");
    assert!(
        challenge.starts_with("Bearer") && !challenge.contains("error="),
        "{challenge}"
    );
    let basic = s
        .client
        .get(s.url("/api/v1/users/me"))
        .basic_auth("a", Some("b"))
        .send()
        .await
        .expect("req");
    assert_eq!(basic.status(), 401);
    let challenge = basic.headers()["www-authenticate"].to_str().expect("ascii");
    assert!(
        challenge.starts_with("Bearer") && !challenge.contains("error="),
        "no bearer token was sent: {challenge}"
    );
}
