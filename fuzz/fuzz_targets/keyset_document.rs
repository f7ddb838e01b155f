//! cargo fuzz target: see `targets::keyset_document`.
#![no_main]

#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::keyset_document(data));
