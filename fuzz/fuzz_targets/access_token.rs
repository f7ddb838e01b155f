//! cargo fuzz target: see `targets::access_token`.
#![no_main]

#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::access_token(data));
