//! Signing and verification throughput on one core: the issuer's pre-parsed aws-lc-rs keys
//! against `jsonwebtoken::encode`, which re-parses its key on every call.
//!
//!     cargo bench --bench signing

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use jsonwebtoken::{EncodingKey, Header};
use time::OffsetDateTime;
use token_issuer::keys::{generate_record, Alg, JwsKind, KeySet, KeyState, KeysetDocument, SigningKey};
use token_issuer::tokens::{AccessGrant, AccessTokens};

/// Runs `f` for about two seconds and returns operations per second. Under `cargo test`
/// (no `--bench` argument) each operation runs once, as a smoke test.
fn rate(mut f: impl FnMut()) -> f64 {
    if !std::env::args().any(|a| a == "--bench") {
        f();
        return f64::NAN;
    }
    for _ in 0..50 {
        f();
    }
    let (start, mut n) = (Instant::now(), 0u64);
    while start.elapsed() < Duration::from_secs(2) {
        for _ in 0..20 {
            f();
        }
        n += 20;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn report(name: &str, ops: f64) {
    if ops.is_nan() {
        return println!("{name}: ok");
    }
    println!("{name:<55} {ops:>10.0} /s   {:>8.1} µs", 1e6 / ops);
}

fn main() {
    let now = OffsetDateTime::now_utc();
    let rsa = generate_record(Alg::Rs256, 2048, KeyState::Active, now).expect("rsa");
    let ed = generate_record(Alg::EdDsa, 2048, KeyState::Active, now).expect("ed25519");
    let claims = serde_json::json!({
        "iss": "https://auth.example.com", "sub": "6f1c9a52-8c41-4c1e-9a55-0d1f0b7f5a10",
        "aud": "https://api.example.com", "exp": 1_900_000_000, "iat": 1_899_999_100,
        "jti": "0b8f3a2e-5d7c-4f4e-8a1b-2c3d4e5f6a7b", "client_id": "first-party"
    });
    let payload = serde_json::to_vec(&claims).expect("json");

    let rsa_key = SigningKey::from_record(&rsa).expect("parse");
    report(
        "RS256 sign, pre-parsed aws-lc-rs key (token-issuer)",
        rate(|| {
            black_box(
                rsa_key
                    .sign_jws(JwsKind::AccessToken, black_box(&payload))
                    .expect("sign"),
            );
        }),
    );
    let encoding = EncodingKey::from_rsa_pem(rsa.private_key_pem.expose().as_bytes()).expect("pem");
    let mut header = Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(rsa.kid.clone());
    header.typ = Some("at+jwt".into());
    report(
        "RS256 sign, jsonwebtoken::encode",
        rate(|| {
            black_box(jsonwebtoken::encode(&header, black_box(&claims), &encoding).expect("sign"));
        }),
    );
    let ed_key = SigningKey::from_record(&ed).expect("parse");
    report(
        "EdDSA sign, pre-parsed aws-lc-rs key (token-issuer)",
        rate(|| {
            black_box(
                ed_key
                    .sign_jws(JwsKind::AccessToken, black_box(&payload))
                    .expect("sign"),
            );
        }),
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for (alg, record) in [(Alg::Rs256, &rsa), (Alg::EdDsa, &ed)] {
        let set = KeySet::from_document(&KeysetDocument {
            keys: vec![record.clone()],
        })
        .expect("keyset");
        let tokens = AccessTokens::new(
            "https://auth.example.com".into(),
            Duration::from_secs(900),
            alg,
            Arc::new(ArcSwap::from_pointee(set)),
            token_issuer::clock::Clock::system(),
        );
        let grant = AccessGrant {
            grant: "password",
            sub: "6f1c9a52-8c41-4c1e-9a55-0d1f0b7f5a10".into(),
            aud: "https://api.example.com".into(),
            client_id: "first-party".into(),
            scope: None,
            sid: Some("0b9e8f5c-3a51-4f3e-b1c7-2d4a6e8f9a10".into()),
            ttl: None,
        };
        let token = runtime
            .block_on(tokens.issue(grant.clone()))
            .expect("issue")
            .token;
        report(
            &format!("{alg} issue access token (claims + sign, async)"),
            rate(|| {
                black_box(runtime.block_on(tokens.issue(grant.clone())).expect("issue"));
            }),
        );
        report(
            &format!("{alg} verify access token"),
            rate(|| {
                black_box(
                    tokens
                        .verify(black_box(&token), Some("https://api.example.com"))
                        .expect("verify"),
                );
            }),
        );
    }
}
