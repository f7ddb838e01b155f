//! token-verifier's integration tests in one binary (one link). `rotation` stays a binary of
//! its own: it installs the process-wide metrics recorder it reads.

mod common;

mod remote_jwks;
mod verify;
