//! cargo fuzz target: see `targets::access_token`.
#![no_main]

#[path = "../targets.rs"]
#[allow(dead_code)] // each binary fuzzes one of the targets
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::access_token(data));
