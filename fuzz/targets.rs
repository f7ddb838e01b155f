//! The fuzz targets' bodies, shared by the `cargo fuzz` binaries (`fuzz_targets/`) and by the
//! ordinary test suite, which replays the committed corpus through them on every run
//! (`tests/it/fuzz_corpus.rs`). Each takes any bytes and must answer without a panic.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use serde::Deserialize;
use token_issuer::http::parse_json;
use token_issuer::keys::{Alg, KeySet, KeysetDocument};
use token_issuer::oauth::{parse_basic_credentials, FormParams};
use token_issuer::tokens::AccessTokens;

/// Any string presented as a bearer access token: verification answers, never panics. The
/// key is a fixed test key (`keyset.json`) so the corpus holds validly signed tokens and the
/// fuzzer reaches the claim checks behind the signature.
pub fn access_token(data: &[u8]) {
    fn tokens() -> &'static AccessTokens {
        static TOKENS: OnceLock<AccessTokens> = OnceLock::new();
        TOKENS.get_or_init(|| {
            let doc = KeysetDocument::from_json(include_bytes!("keyset.json")).expect("fuzz keyset");
            let set = KeySet::from_document(&doc).expect("servable");
            AccessTokens::new(
                "https://issuer.example".into(),
                Duration::from_secs(900),
                Alg::EdDsa,
                Arc::new(ArcSwap::from_pointee(set)),
                token_issuer::clock::Clock::system(),
            )
        })
    }
    if let Ok(token) = std::str::from_utf8(data) {
        let _ = tokens().verify(token, None);
        let _ = tokens().verify(token, Some("https://api.example"));
    }
}

/// Any bytes as a keyset document (file or secret): parsed or refused with an error that
/// quotes no value, and a parsed one is accepted or refused as a serving keyset.
pub fn keyset_document(data: &[u8]) {
    match KeysetDocument::from_json(data) {
        Ok(doc) => {
            let _ = KeySet::from_document(&doc);
        }
        Err(e) => {
            // Errors name places, never contents: no PEM may leak into a log line.
            assert!(!e.to_string().contains("PRIVATE KEY"));
        }
    }
}

/// The shape of the login and register bodies.
#[derive(Deserialize)]
#[allow(dead_code)]
struct Credentials {
    email: String,
    password: String,
}

/// Any request body: the OAuth form parser, HTTP Basic credentials and the JSON body parser
/// answer with a value or a client error.
pub fn request_bodies(data: &[u8]) {
    if let Ok(params) = FormParams::parse(data) {
        for name in [
            "grant_type",
            "client_id",
            "client_secret",
            "refresh_token",
            "scope",
            "resource",
        ] {
            let _ = params.get(name);
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_basic_credentials(text);
    }
    let _ = parse_json::<Credentials>(data);
    let _ = parse_json::<serde_json::Value>(data);
}
