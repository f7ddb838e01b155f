//! Any bytes as a keyset document (file or secret): parsed or refused with an error that
//! quotes no value, and a parsed one is accepted or refused as a serving keyset — no panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use token_issuer::keys::{KeySet, KeysetDocument};

fuzz_target!(|data: &[u8]| {
    match KeysetDocument::from_json(data) {
        Ok(doc) => {
            let _ = KeySet::from_document(&doc);
        }
        Err(e) => {
            // Errors name places, never contents: no PEM may leak into a log line.
            assert!(!e.to_string().contains("PRIVATE KEY"));
        }
    }
});
