//! Any string presented as a bearer access token: verification answers, never panics.
//! The key is a fixed test key (fuzz/keyset.json) so the seed corpus holds validly signed
//! tokens and the fuzzer reaches the claim checks behind the signature.
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use libfuzzer_sys::fuzz_target;
use token_issuer::keys::{Alg, KeySet, KeysetDocument};
use token_issuer::tokens::AccessTokens;

fn tokens() -> &'static AccessTokens {
    static TOKENS: OnceLock<AccessTokens> = OnceLock::new();
    TOKENS.get_or_init(|| {
        let doc = KeysetDocument::from_json(include_bytes!("../keyset.json")).expect("fuzz keyset");
        let set = KeySet::from_document(&doc).expect("servable");
        AccessTokens::new(
            "https://issuer.example".into(),
            Duration::from_secs(900),
            Alg::EdDsa,
            Arc::new(ArcSwap::from_pointee(set)),
        )
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(token) = std::str::from_utf8(data) {
        let _ = tokens().verify(token, None);
        let _ = tokens().verify(token, Some("https://api.example"));
    }
});
