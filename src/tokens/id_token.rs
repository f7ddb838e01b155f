//! OpenID Connect ID tokens (Core §2): who logged in, when and how, for the client that asked.
//! Signed like access tokens but typed `JWT`, with the client's algorithm: RS256 unless it
//! registered EdDSA.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha512};

use super::TokenError;
use crate::clock::Clock;
use crate::keys::{Alg, JwsKind, KeySet};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdClaims {
    pub iss: String,
    pub sub: String,
    /// The client id.
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub auth_time: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_hash: Option<String>,
    /// The login session at the hosted page (what RP-initiated logout ends).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// How the user authenticated (RFC 8176): a password.
    #[serde(default)]
    pub amr: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
}

/// What an ID token says; the issuer adds the rest.
pub struct IdGrant<'a> {
    pub sub: &'a str,
    pub client_id: &'a str,
    pub alg: Alg,
    pub auth_time: i64,
    pub nonce: Option<&'a str>,
    pub sid: &'a str,
    /// The access token issued with it, for `at_hash`.
    pub access_token: &'a str,
    /// With scope `email`.
    pub email: Option<&'a str>,
}

#[derive(Clone)]
pub struct IdTokens {
    issuer: String,
    ttl: Duration,
    keys: Arc<ArcSwap<KeySet>>,
    clock: Clock,
}

impl IdTokens {
    pub fn new(issuer: String, ttl: Duration, keys: Arc<ArcSwap<KeySet>>, clock: Clock) -> Self {
        Self {
            issuer,
            ttl,
            keys,
            clock,
        }
    }

    pub async fn issue(&self, grant: IdGrant<'_>) -> Result<String, TokenError> {
        let iat = self.clock.unix();
        let claims = IdClaims {
            iss: self.issuer.clone(),
            sub: grant.sub.to_owned(),
            aud: grant.client_id.to_owned(),
            exp: iat + self.ttl.as_secs() as i64,
            iat,
            auth_time: grant.auth_time,
            nonce: grant.nonce.map(str::to_owned),
            at_hash: Some(at_hash(grant.alg, grant.access_token)),
            sid: Some(grant.sid.to_owned()),
            amr: vec!["pwd".to_owned()],
            email: grant.email.map(str::to_owned),
            // Addresses are not verified by this issuer.
            email_verified: grant.email.map(|_| false),
        };
        super::sign(&self.keys, grant.alg, JwsKind::IdToken, &claims).await
    }

    /// An `id_token_hint` (RP-initiated logout): one of this issuer's ID tokens, expired or
    /// not (a logout often comes after expiry), its signature checked against the published
    /// keys with the key's own algorithm.
    pub fn verify_hint(&self, token: &str) -> Result<IdClaims, TokenError> {
        let claims: IdClaims = super::verified_claims(&self.keys.load(), token, |typ| typ == "JWT")
            .map_err(|_| TokenError::Invalid("not an ID token of this issuer"))?;
        if claims.iss != self.issuer {
            return Err(TokenError::Invalid("not an ID token of this issuer"));
        }
        Ok(claims)
    }
}

/// OIDC Core §3.1.3.6: the left half of the hash of the access token, with the hash of the
/// signing algorithm (SHA-512 for Ed25519).
pub fn at_hash(alg: Alg, access_token: &str) -> String {
    match alg {
        Alg::Rs256 => B64.encode(&Sha256::digest(access_token.as_bytes())[..16]),
        Alg::EdDsa => B64.encode(&Sha512::digest(access_token.as_bytes())[..32]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_matches_the_openid_example() {
        // OpenID Connect Core, Appendix A.3: an access token and its at_hash (RS256).
        assert_eq!(
            at_hash(Alg::Rs256, "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }
}
