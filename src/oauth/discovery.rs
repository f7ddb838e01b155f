//! The authorization-server metadata document (RFC 8414), built once at start.

use bytes::Bytes;
use serde_json::json;

use crate::keys::Alg;

pub fn document(issuer: &str) -> Bytes {
    let algs: Vec<&str> = Alg::ALL.iter().map(|a| a.as_str()).collect();
    let body = json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "token_endpoint": format!("{issuer}/oauth2/token"),
        "userinfo_endpoint": format!("{issuer}/oauth2/userinfo"),
        "grant_types_supported": ["refresh_token"],
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": ["none"],
        "subject_types_supported": ["public"],
        "access_token_signing_alg_values_supported": algs,
    });
    Bytes::from(body.to_string())
}
