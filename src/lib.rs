//! token-issuer: JWT access tokens signed with asymmetric keys, rotating refresh tokens and a
//! JWKS for offline verification. Data flows one way: `http` → `oauth`/`accounts` →
//! `tokens`/`keys`/`store`; nothing below `http` knows about axum.

pub mod accounts;
pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod http;
pub mod json;
pub mod keys;
pub mod metrics;
pub mod oauth;
pub mod ratelimit;
pub mod store;
pub mod sync;
#[cfg(feature = "test-support")]
pub mod testkit;
pub mod tokens;
pub mod uri;
pub mod values;
