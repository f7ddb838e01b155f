//! cargo fuzz target: see `targets::request_bodies`.
#![no_main]

#[path = "../targets.rs"]
#[allow(dead_code)] // each binary fuzzes one of the targets
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::request_bodies(data));
