//! The authorization-server metadata document (RFC 8414, and OpenID Connect Discovery 1.0):
//! everything but the scopes is fixed
//! at start; `scopes_supported` (the union of the registered clients' scopes) is refreshed at
//! most once a minute, so the endpoint stays cheap and never fails for want of a database.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;

use super::clients::Clients;
use crate::keys::Alg;

const SCOPES_TTL: Duration = Duration::from_secs(60);

/// Algorithms a client may sign a `private_key_jwt` assertion with.
pub const ASSERTION_ALGS: [&str; 4] = ["RS256", "PS256", "ES256", "EdDSA"];

/// Authorization-server metadata (RFC 8414 §2).
#[derive(Clone, Serialize, utoipa::ToSchema)]
pub struct ServerMetadata {
    issuer: String,
    jwks_uri: String,
    authorization_endpoint: String,
    token_endpoint: String,
    introspection_endpoint: String,
    revocation_endpoint: String,
    userinfo_endpoint: String,
    /// RP-initiated logout.
    end_session_endpoint: String,
    #[schema(value_type = Vec<String>)]
    grant_types_supported: Vec<&'static str>,
    #[schema(value_type = Vec<String>)]
    response_types_supported: Vec<&'static str>,
    #[schema(value_type = Vec<String>)]
    response_modes_supported: Vec<&'static str>,
    /// PKCE: S256 only (`plain` is refused).
    #[schema(value_type = Vec<String>)]
    code_challenge_methods_supported: Vec<&'static str>,
    #[schema(value_type = Vec<String>)]
    prompt_values_supported: Vec<&'static str>,
    /// RFC 9207: every authorization response carries `iss`.
    authorization_response_iss_parameter_supported: bool,
    #[schema(value_type = Vec<String>)]
    id_token_signing_alg_values_supported: Vec<&'static str>,
    #[schema(value_type = Vec<String>)]
    claims_supported: Vec<&'static str>,
    request_parameter_supported: bool,
    request_uri_parameter_supported: bool,
    #[schema(value_type = Vec<String>)]
    token_endpoint_auth_methods_supported: Vec<&'static str>,
    #[schema(value_type = Vec<String>)]
    token_endpoint_auth_signing_alg_values_supported: Vec<&'static str>,
    #[schema(value_type = Vec<String>)]
    introspection_endpoint_auth_methods_supported: Vec<&'static str>,
    #[schema(value_type = Vec<String>)]
    introspection_endpoint_auth_signing_alg_values_supported: Vec<&'static str>,
    #[schema(value_type = Vec<String>)]
    revocation_endpoint_auth_methods_supported: Vec<&'static str>,
    #[schema(value_type = Vec<String>)]
    revocation_endpoint_auth_signing_alg_values_supported: Vec<&'static str>,
    #[schema(value_type = Vec<String>)]
    subject_types_supported: Vec<&'static str>,
    #[schema(value_type = Vec<String>)]
    access_token_signing_alg_values_supported: Vec<&'static str>,
    /// The registered clients' scopes; absent while the database cannot be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    scopes_supported: Option<Vec<String>>,
}

pub struct Discovery {
    base: ServerMetadata,
    cached: Mutex<Option<(Instant, Bytes)>>,
}

impl Discovery {
    pub fn new(issuer: &str) -> Self {
        let confidential = vec!["client_secret_basic", "client_secret_post", "private_key_jwt"];
        let mut with_public = confidential.clone();
        with_public.push("none");
        let base = ServerMetadata {
            issuer: issuer.to_owned(),
            jwks_uri: format!("{issuer}/.well-known/jwks.json"),
            authorization_endpoint: format!("{issuer}/oauth2/authorize"),
            token_endpoint: format!("{issuer}/oauth2/token"),
            introspection_endpoint: format!("{issuer}/oauth2/introspect"),
            revocation_endpoint: format!("{issuer}/oauth2/revoke"),
            userinfo_endpoint: format!("{issuer}/oauth2/userinfo"),
            end_session_endpoint: format!("{issuer}/oauth2/logout"),
            grant_types_supported: vec!["authorization_code", "client_credentials", "refresh_token"],
            response_types_supported: vec!["code"],
            response_modes_supported: vec!["query"],
            code_challenge_methods_supported: vec!["S256"],
            prompt_values_supported: vec!["none", "login", "consent", "select_account"],
            authorization_response_iss_parameter_supported: true,
            id_token_signing_alg_values_supported: Alg::ALL.iter().map(|a| a.as_str()).collect(),
            claims_supported: vec![
                "iss",
                "sub",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "nonce",
                "at_hash",
                "sid",
                "amr",
                "email",
                "email_verified",
            ],
            request_parameter_supported: false,
            request_uri_parameter_supported: false,
            token_endpoint_auth_methods_supported: with_public.clone(),
            token_endpoint_auth_signing_alg_values_supported: ASSERTION_ALGS.to_vec(),
            introspection_endpoint_auth_methods_supported: confidential,
            introspection_endpoint_auth_signing_alg_values_supported: ASSERTION_ALGS.to_vec(),
            revocation_endpoint_auth_methods_supported: with_public,
            revocation_endpoint_auth_signing_alg_values_supported: ASSERTION_ALGS.to_vec(),
            subject_types_supported: vec!["public"],
            access_token_signing_alg_values_supported: Alg::ALL.iter().map(|a| a.as_str()).collect(),
            scopes_supported: None,
        };
        Self {
            base,
            cached: Mutex::new(None),
        }
    }

    /// The document as last built, while its scopes are fresh (built under a minute ago);
    /// `None` before the first build and once it is stale, when [`Self::body`] rebuilds it.
    pub fn fresh(&self) -> Option<Bytes> {
        match self.lock().as_ref() {
            Some((at, body)) if at.elapsed() < SCOPES_TTL => Some(body.clone()),
            _ => None,
        }
    }

    pub async fn body(&self, clients: &Clients) -> Bytes {
        if let Some(body) = self.fresh() {
            return body;
        }
        let mut doc = self.base.clone();
        match clients.scopes().await {
            Ok(mut scopes) => {
                if !scopes.iter().any(|s| s == "openid") {
                    scopes.insert(0, "openid".to_owned());
                }
                doc.scopes_supported = Some(scopes)
            }
            // Serve what is known; the scopes come back with the database.
            Err(e) => tracing::warn!(error = %e, "discovery: cannot read client scopes"),
        }
        // Strings and lists of strings always serialise.
        let body = Bytes::from(serde_json::to_vec(&doc).unwrap_or_default());
        *self.lock() = Some((Instant::now(), body.clone()));
        body
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(Instant, Bytes)>> {
        self.cached
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
