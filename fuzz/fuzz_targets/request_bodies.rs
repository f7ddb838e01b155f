//! Any request body: the OAuth form parser, HTTP Basic credentials and the JSON body parser
//! answer with a value or a client error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::Deserialize;
use token_issuer::http::parse_json;
use token_issuer::oauth::{parse_basic_credentials, FormParams};

/// The shape of the login and register bodies.
#[derive(Deserialize)]
#[allow(dead_code)]
struct Credentials {
    email: String,
    password: String,
}

fuzz_target!(|data: &[u8]| {
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
});
