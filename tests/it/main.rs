//! Every integration test of token-issuer, in one binary: one link instead of one per area
//! (each links aws-sdk, sqlx, redis and axum). Add a module here, not a file in `tests/`.
//! Each test starts its own issuer (`common::start`) on a fresh database.

mod common;

mod accounts;
mod audit;
mod authorization_code;
mod authorization_security;
mod cli;
mod forged_tokens;
mod fuzz_corpus;
mod housekeeping;
mod http_hygiene;
mod keys;
mod login_throttle;
mod migrations;
mod oauth_clients;
mod openapi;
mod rate_limits;
mod resource_bounds;
mod serve;
mod tls;
mod tokens;
