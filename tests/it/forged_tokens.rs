//! Hostile bearer tokens on a protected endpoint: every one is a 401, none a 500.

use crate::common;

use crate::common::{segment, start};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
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

/// A JWS with exactly this header and payload text, signed (or not) as given.
fn forge(header: &Value, payload: &str, key: Option<(&EncodingKey, Algorithm)>) -> String {
    let input = format!("{}.{}", b64(header), B64.encode(payload));
    let signature = match key {
        Some((key, alg)) => jsonwebtoken::crypto::sign(input.as_bytes(), key, alg).expect("sign"),
        None => String::new(),
    };
    format!("{input}.{signature}")
}

/// The attack suite of hostile tokens, each against every endpoint that takes a bearer token
/// and against introspection: always 401 (or `{"active": false}`), never anything else.
#[tokio::test]
async fn the_jwt_attack_suite_fails_everywhere() {
    use rsa::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _};
    let s = start().await;
    let (access, refresh) = s.user_session("mallory-target@example.com").await;
    let kid = segment(&access, 0)["kid"].as_str().expect("kid").to_owned();
    let claims = segment(&access, 1);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let keyset = s.keyset();
    let real = EncodingKey::from_rsa_pem(
        keyset["keys"][0]["private_key_pem"]
            .as_str()
            .expect("pem")
            .as_bytes(),
    )
    .expect("real key");
    let attacker_rsa = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).expect("attacker");
    let attacker = EncodingKey::from_rsa_pem(
        attacker_rsa
            .to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
            .expect("pem")
            .as_bytes(),
    )
    .expect("attacker key");
    let attacker_jwk = {
        use rsa::traits::PublicKeyParts as _;
        json!({"kty": "RSA", "n": B64.encode(attacker_rsa.n().to_bytes_be()), "e": "AQAB", "kid": "attacker"})
    };
    let jwk = s.jwks().await["keys"][0].clone();
    let public = {
        let n = rsa::BigUint::from_bytes_be(&B64.decode(jwk["n"].as_str().expect("n")).expect("b64"));
        let e = rsa::BigUint::from_bytes_be(&B64.decode(jwk["e"].as_str().expect("e")).expect("b64"));
        rsa::RsaPublicKey::new(n, e).expect("public")
    };
    let public_pem = public.to_public_key_pem(rsa::pkcs8::LineEnding::LF).expect("pem");
    let public_der = public.to_public_key_der().expect("der").into_vec();
    let header = |extra: Value| {
        let mut h = json!({"alg": "RS256", "typ": "at+jwt", "kid": kid});
        for (k, v) in extra.as_object().expect("object") {
            h[k] = v.clone();
        }
        h
    };
    let body = claims.to_string();
    let signed = |h: Value| forge(&h, &body, Some((&real, Algorithm::RS256)));
    let by_attacker = |h: Value| forge(&h, &body, Some((&attacker, Algorithm::RS256)));

    // The control: the same construction with nothing hostile is accepted.
    let control = signed(header(json!({})));
    assert_eq!(s.get_bearer("/api/v1/users/me", &control).await.status(), 200);

    let mut cases: Vec<(String, String)> = vec![
        (
            "alg none".into(),
            forge(&header(json!({"alg": "none"})), &body, None),
        ),
        (
            "alg NONE".into(),
            forge(&header(json!({"alg": "NONE"})), &body, None),
        ),
        ("alg rs256 (case)".into(), signed(header(json!({"alg": "rs256"})))),
        (
            "jku to an attacker JWKS".into(),
            by_attacker(header(
                json!({"jku": "https://evil.example/jwks.json", "kid": "attacker"}),
            )),
        ),
        (
            "x5u to an attacker certificate".into(),
            by_attacker(header(json!({"x5u": "https://evil.example/cert.pem"}))),
        ),
        (
            "embedded attacker jwk".into(),
            by_attacker(header(json!({"jwk": attacker_jwk}))),
        ),
        (
            "embedded x5c".into(),
            by_attacker(header(json!({"x5c": [B64.encode(b"not a certificate")]}))),
        ),
        (
            "kid path traversal".into(),
            signed(header(json!({"kid": "../../../../etc/passwd"}))),
        ),
        (
            "kid SQL".into(),
            signed(header(json!({"kid": "' OR '1'='1' --"}))),
        ),
        (
            "kid huge".into(),
            signed(header(json!({"kid": "k".repeat(6000)}))),
        ),
        (
            "crit unknown extension".into(),
            signed(header(json!({"crit": ["urn:evil"], "urn:evil": true}))),
        ),
        (
            "b64 false".into(),
            signed(header(json!({"b64": false, "crit": ["b64"]}))),
        ),
        ("typ JWT".into(), signed(header(json!({"typ": "JWT"})))),
        (
            "duplicate claims".into(),
            forge(
                &header(json!({})),
                &body.replacen('{', "{\"sub\":\"someone-else\",", 1),
                Some((&real, Algorithm::RS256)),
            ),
        ),
        ("refresh token as bearer".into(), refresh.clone()),
        (
            "truncated signature".into(),
            control[..control.len() - 12].to_owned(),
        ),
        (
            "no signature".into(),
            control[..=control.rfind('.').expect("dot")].to_owned(),
        ),
    ];
    for (name, secret) in [
        ("PEM", public_pem.as_bytes().to_vec()),
        ("DER", public_der.clone()),
        ("JWK", jwk.to_string().into_bytes()),
    ] {
        for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
            let h = header(json!({"alg": format!("{alg:?}")}));
            cases.push((
                format!("{alg:?} keyed with the public key ({name})"),
                forge(&h, &body, Some((&EncodingKey::from_secret(&secret), alg))),
            ));
        }
    }
    for (name, change) in [
        ("expired", json!({"exp": now - 1, "iat": now - 901})),
        ("not yet valid", json!({"nbf": now + 3600})),
        ("wrong iss", json!({"iss": "https://evil.example"})),
        ("wrong aud", json!({"aud": "https://evil.example"})),
        ("no sub", json!({"sub": null})),
    ] {
        let mut c = claims.clone();
        for (k, v) in change.as_object().expect("object") {
            if v.is_null() {
                c.as_object_mut().expect("object").remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        cases.push((
            name.into(),
            forge(
                &header(json!({})),
                &c.to_string(),
                Some((&real, Algorithm::RS256)),
            ),
        ));
    }
    // Bit flips in the middle of the signature, the payload and the header.
    for part in 0..3 {
        let mut pieces: Vec<Vec<u8>> = control.split('.').map(|p| B64.decode(p).expect("b64")).collect();
        let middle = pieces[part].len() / 2;
        pieces[part][middle] ^= 0x01;
        cases.push((
            format!("bit flipped in part {part}"),
            pieces.iter().map(|p| B64.encode(p)).collect::<Vec<_>>().join("."),
        ));
    }

    let rs = s
        .app
        .oauth
        .clients
        .create(token_issuer::oauth::clients::NewClient {
            id: "attack-suite-rs".into(),
            grants: vec!["client_credentials".into()],
            scopes: vec![],
            audiences: vec![],
            access_token_ttl: None,
            jwk: None,
            ..Default::default()
        })
        .await
        .expect("client")
        .1
        .expect("secret");
    for (name, token) in &cases {
        for (method, path) in [
            ("GET", "/api/v1/users/me"),
            ("DELETE", "/api/v1/users/me"),
            ("GET", "/oauth2/userinfo"),
            ("POST", "/oauth2/userinfo"),
            ("POST", "/api/v1/auth/logout"),
            ("POST", "/api/v1/auth/logout-all"),
        ] {
            let resp = s
                .client
                .request(method.parse().expect("method"), s.url(path))
                .bearer_auth(token)
                .json(&json!({"password": common::PASSWORD, "refresh_token": refresh}))
                .send()
                .await
                .expect("request");
            assert_eq!(resp.status(), 401, "{name} at {method} {path}");
        }
        let info: Value = s
            .client
            .post(s.url("/oauth2/introspect"))
            .basic_auth("attack-suite-rs", Some(rs.expose()))
            .form(&[("token", token.as_str())])
            .send()
            .await
            .expect("introspect")
            .json()
            .await
            .expect("json");
        // A refresh token is no bearer token, and a token for another audience is none for
        // these endpoints, but each is a live token of this issuer: introspection says so.
        let genuine = name.starts_with("refresh token") || name == "wrong aud";
        let expected = json!(genuine);
        assert_eq!(info["active"], expected, "{name} at introspection: {info}");
        if expected == json!(false) {
            assert_eq!(info, json!({"active": false}), "{name}: nothing else is said");
        }
    }
    // Nothing above logged the user out or deleted them.
    assert_eq!(s.get_bearer("/api/v1/users/me", &access).await.status(), 200);

    // A 1 MiB token: refused before any parsing, never a 5xx.
    let huge = format!("{}.{}.{}", "a".repeat(512 * 1024), "b".repeat(512 * 1024), "c");
    let status = s.get_bearer("/api/v1/users/me", &huge).await.status();
    assert!(status == 401 || status == 431, "1 MiB bearer: {status}");
    let status = s
        .client
        .post(s.url("/oauth2/introspect"))
        .basic_auth("attack-suite-rs", Some(rs.expose()))
        .form(&[("token", huge.as_str())])
        .send()
        .await
        .expect("introspect")
        .status();
    assert!(status.is_client_error(), "1 MiB introspection body: {status}");
}
