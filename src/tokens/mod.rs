//! Tokens: JWT access tokens (issuing, verifying) and opaque, rotating refresh tokens.

mod access;
mod id_token;
mod refresh;
mod revocations;
mod secret;

pub use access::{AccessClaims, AccessGrant, AccessTokens, IssuedAccessToken};
pub use id_token::{at_hash, IdClaims, IdGrant, IdTokens};
pub use refresh::{RefreshError, RefreshSecret, RefreshTokens, Rotated};
pub use revocations::Revocations;
pub use secret::Secret;

use arc_swap::ArcSwap;
use serde::Serialize;

use std::sync::Arc;

use crate::keys::{Alg, JwsKind, KeySet, SigningKey};

/// The built-in public client that `/api/v1/auth/login` sessions belong to.
pub const FIRST_PARTY_CLIENT: &str = "first-party";

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Why a presented token was refused: for logs only, never for the caller.
    #[error("token refused: {0}")]
    Invalid(&'static str),
    #[error("no active {0} signing key")]
    NoSigningKey(crate::keys::Alg),
    #[error(transparent)]
    Key(#[from] crate::keys::KeyError),
}

/// The body of every successful token response (RFC 6749 §5.1).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenResponse {
    /// A JWT access token (RFC 9068), signed with a key published in the JWKS.
    pub access_token: String,
    #[schema(value_type = String, example = "Bearer")]
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Opaque; rotated on every use. Absent for `client_credentials`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub refresh_token: Option<RefreshSecret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// OpenID Connect: with scope `openid` at the authorization-code grant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

impl TokenResponse {
    /// A bearer access token and its scope; the caller adds a refresh token if there is one.
    pub fn bearer(issued: IssuedAccessToken, scope: Option<String>) -> Self {
        Self {
            access_token: issued.token,
            token_type: "Bearer",
            expires_in: issued.expires_in,
            refresh_token: None,
            scope,
            id_token: None,
        }
    }
}

/// Tokens longer than this are refused before any parsing.
const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The published key a presented token of ours names, and a validation pinned to that key's
/// algorithm (never the header's choice), once the header passes what every token of this
/// issuer must: a bounded size, a `typ` that `typ_ok` accepts, no `crit`, a known `kid`.
/// Times are left to the caller, who checks them against the service's clock.
fn pinned_key(
    keys: &ArcSwap<KeySet>,
    token: &str,
    typ_ok: fn(&str) -> bool,
) -> Result<(Arc<SigningKey>, jsonwebtoken::Validation), TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::Invalid("token too large"));
    }
    let header =
        jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid("malformed JWT header"))?;
    if !header.typ.as_deref().is_some_and(typ_ok) {
        return Err(TokenError::Invalid("unexpected typ"));
    }
    if header.crit.is_some() {
        return Err(TokenError::Invalid("unsupported crit header"));
    }
    let kid = header.kid.as_deref().ok_or(TokenError::Invalid("no kid"))?;
    let key = keys
        .load()
        .verifying_key(kid)
        .cloned()
        .ok_or(TokenError::Invalid("unknown kid"))?;
    let alg = key.alg().jsonwebtoken();
    if header.alg != alg {
        return Err(TokenError::Invalid("alg does not match the key"));
    }
    let mut validation = jsonwebtoken::Validation::new(alg);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    Ok((key, validation))
}

/// Signs `claims` as a JWS of `kind` with the active `alg` key; RSA off the async runtime.
async fn sign(
    keys: &ArcSwap<KeySet>,
    alg: Alg,
    kind: JwsKind,
    claims: &impl Serialize,
) -> Result<String, TokenError> {
    let key = keys
        .load()
        .active(alg)
        .cloned()
        .ok_or(TokenError::NoSigningKey(alg))?;
    let payload = serde_json::to_vec(claims).map_err(|_| TokenError::Invalid("unserialisable claims"))?;
    if key.is_slow() {
        tokio::task::spawn_blocking(move || key.sign_jws(kind, &payload))
            .await
            .map_err(|_| TokenError::Key(crate::keys::KeyError::Sign))?
            .map_err(TokenError::from)
    } else {
        Ok(key.sign_jws(kind, &payload)?)
    }
}
