//! The authorization-server metadata document (RFC 8414): everything but the scopes is fixed
//! at start; `scopes_supported` (the union of the registered clients' scopes) is refreshed at
//! most once a minute, so the endpoint stays cheap and never fails for want of a database.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{json, Value};

use super::clients::Clients;
use crate::keys::Alg;

const SCOPES_TTL: Duration = Duration::from_secs(60);

/// Algorithms a client may sign a `private_key_jwt` assertion with.
pub const ASSERTION_ALGS: [&str; 4] = ["RS256", "PS256", "ES256", "EdDSA"];

pub struct Discovery {
    base: Value,
    cached: Mutex<Option<(Instant, Bytes)>>,
}

impl Discovery {
    pub fn new(issuer: &str) -> Self {
        let algs: Vec<&str> = Alg::ALL.iter().map(|a| a.as_str()).collect();
        let confidential = ["client_secret_basic", "client_secret_post", "private_key_jwt"];
        let mut with_public = confidential.to_vec();
        with_public.push("none");
        let base = json!({
            "issuer": issuer,
            "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
            "token_endpoint": format!("{issuer}/oauth2/token"),
            "introspection_endpoint": format!("{issuer}/oauth2/introspect"),
            "revocation_endpoint": format!("{issuer}/oauth2/revoke"),
            "userinfo_endpoint": format!("{issuer}/oauth2/userinfo"),
            "grant_types_supported": ["client_credentials", "refresh_token"],
            "response_types_supported": [],
            "token_endpoint_auth_methods_supported": with_public,
            "token_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
            "introspection_endpoint_auth_methods_supported": confidential,
            "introspection_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
            "revocation_endpoint_auth_methods_supported": with_public,
            "revocation_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
            "subject_types_supported": ["public"],
            "access_token_signing_alg_values_supported": algs,
        });
        Self {
            base,
            cached: Mutex::new(None),
        }
    }

    pub async fn body(&self, clients: &Clients) -> Bytes {
        let lock = || {
            self.cached
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        if let Some((at, body)) = lock().as_ref() {
            if at.elapsed() < SCOPES_TTL {
                return body.clone();
            }
        }
        let mut doc = self.base.clone();
        match clients.scopes().await {
            Ok(scopes) => doc["scopes_supported"] = json!(scopes),
            // Serve what is known; the scopes come back with the database.
            Err(e) => tracing::warn!(error = %e, "discovery: cannot read client scopes"),
        }
        let body = Bytes::from(doc.to_string());
        *lock() = Some((Instant::now(), body.clone()));
        body
    }
}
