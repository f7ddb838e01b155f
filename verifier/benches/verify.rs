//! Verification on the cache-hit path against bare `jsonwebtoken::decode` with the same key
//! and rules: what the cache, `typ`/`kid`/`alg` checks and async cost per token.
//!
//!     cargo bench -p token-verifier

use std::hint::black_box;
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Router;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::{json, Value};
use time::OffsetDateTime;
use token_issuer::keys::{generate_record, Alg, KeySet, KeyState, KeysetDocument, SigningKey};
use token_verifier::{Claims, Verifier};

const ISSUER: &str = "https://issuer.test";
const AUDIENCE: &str = "https://api.test";

/// Operations per second over about three seconds; one run when not under `cargo bench`.
fn rate(mut f: impl FnMut()) -> f64 {
    if !std::env::args().any(|a| a == "--bench") {
        f();
        return f64::NAN;
    }
    let (start, mut n) = (Instant::now(), 0u64);
    while start.elapsed() < Duration::from_secs(3) {
        for _ in 0..50 {
            f();
        }
        n += 50;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for alg in [Alg::Rs256, Alg::EdDsa] {
        let record = generate_record(alg, 2048, KeyState::Active, OffsetDateTime::now_utc()).expect("key");
        let set = KeySet::from_document(&KeysetDocument {
            keys: vec![record.clone()],
        })
        .expect("keyset");
        let body = set.jwks().body.clone();
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let claims = json!({"iss": ISSUER, "sub": "user-1", "aud": AUDIENCE, "iat": now, "exp": now + 3600,
                            "jti": "j", "client_id": "c"});
        let token = SigningKey::from_record(&record)
            .expect("key")
            .sign_jws(
                token_issuer::keys::JwsKind::AccessToken,
                claims.to_string().as_bytes(),
            )
            .expect("sign");

        let verifier = runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let url = format!("http://{}/jwks", listener.local_addr().expect("addr"));
            let app = Router::new().route("/jwks", get(move || async move { body.clone() }));
            tokio::spawn(async move { axum::serve(listener, app).await });
            let v = Verifier::builder(ISSUER)
                .audience(AUDIENCE)
                .jwks_url(url)
                .build()
                .await
                .expect("verifier");
            v.verify::<Value>(&token).await.expect("warm the cache");
            v
        });
        let verified = rate(|| {
            let claims: Claims = runtime
                .block_on(verifier.verify(black_box(&token)))
                .expect("valid");
            black_box(claims);
        });

        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(
            serde_json::from_slice::<Value>(&set.jwks().body).expect("json")["keys"][0].clone(),
        )
        .expect("jwk");
        let key = DecodingKey::from_jwk(&jwk).expect("key");
        let mut validation = Validation::new(alg.as_str().parse().expect("a JOSE algorithm"));
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        let bare = rate(|| {
            let data = jsonwebtoken::decode::<Claims>(black_box(&token), &key, &validation).expect("valid");
            black_box(data);
        });
        if verified.is_nan() {
            println!("{alg} verify: ok");
        } else {
            println!(
                "{alg}: token-verifier {verified:>8.0}/s   bare jsonwebtoken {bare:>8.0}/s   overhead {:+.1} %",
                (bare / verified - 1.0) * 100.0
            );
        }
    }
}
