//! Tokens: JWT access tokens (issuing, verifying) and opaque, rotating refresh tokens.

mod access;
mod id_token;
mod refresh;
mod revocations;
mod secret;
mod verified;

pub use access::{AccessClaims, AccessGrant, AccessTokens, IssuedAccessToken};
pub use id_token::{at_hash, IdClaims, IdGrant, IdTokens};
pub use refresh::{RefreshError, RefreshSecret, RefreshTokens, Rotated};
pub use revocations::Revocations;
pub use secret::Secret;

use std::io::Write as _;

use arc_swap::ArcSwap;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::keys::{Alg, JwsKind, KeySet};

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

/// The body of every successful token response (RFC 6749 §5.1), as JSON by
/// [`TokenResponse::to_json`]; the `serde` attributes are the schema's (utoipa reads them),
/// and `to_json` leaves out the same members.
#[derive(Debug, utoipa::ToSchema)]
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

    /// The JSON body. The tokens and the refresh secret are base64url and dots, copied as
    /// they are ([`crate::json`]); the members absent are left out.
    pub fn to_json(&self) -> Vec<u8> {
        let tokens = self.access_token.len() + self.id_token.as_ref().map_or(0, String::len);
        let mut out = Vec::with_capacity(tokens + 200);
        out.extend_from_slice(b"{\"access_token\":");
        crate::json::push_string(&mut out, &self.access_token);
        out.extend_from_slice(b",\"token_type\":");
        crate::json::push_string(&mut out, self.token_type);
        // Writing into a Vec cannot fail.
        let _ = write!(out, ",\"expires_in\":{}", self.expires_in);
        let optional = [
            ("refresh_token", self.refresh_token.as_ref().map(Secret::expose)),
            ("scope", self.scope.as_deref()),
            ("id_token", self.id_token.as_deref()),
        ];
        for (name, value) in optional {
            if let Some(value) = value {
                out.extend_from_slice(b",\"");
                out.extend_from_slice(name.as_bytes());
                out.extend_from_slice(b"\":");
                crate::json::push_string(&mut out, value);
            }
        }
        out.push(b'}');
        out
    }
}

/// Tokens longer than this are refused before any parsing.
const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The header members this issuer reads; the others are ignored, and `crit` is refused.
#[derive(Deserialize)]
struct JwsHeader {
    alg: String,
    typ: Option<String>,
    kid: Option<String>,
    crit: Option<serde::de::IgnoredAny>,
}

/// The claims of a token of ours, once it passes, in this order: a bounded size, three
/// base64url parts, a header with a `typ` that `typ_ok` accepts, no `crit` and a known `kid`
/// whose algorithm it names, and the signature by that key with the key's algorithm (never
/// the header's choice). Issuer, audience and times are left to the caller, who checks them
/// against the service's settings and clock.
fn verified_claims<T: DeserializeOwned>(
    keys: &KeySet,
    token: &str,
    typ_ok: fn(&str) -> bool,
) -> Result<T, TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::Invalid("token too large"));
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Invalid("not a compact JWS"));
    };
    let signed = &token[..header.len() + 1 + payload.len()];
    let header: JwsHeader = json_part(header).ok_or(TokenError::Invalid("malformed JWT header"))?;
    if !header.typ.as_deref().is_some_and(typ_ok) {
        return Err(TokenError::Invalid("unexpected typ"));
    }
    if header.crit.is_some() {
        return Err(TokenError::Invalid("unsupported crit header"));
    }
    let kid = header.kid.as_deref().ok_or(TokenError::Invalid("no kid"))?;
    let key = keys
        .verifying_key(kid)
        .ok_or(TokenError::Invalid("unknown kid"))?;
    if header.alg != key.alg().as_str() {
        return Err(TokenError::Invalid("alg does not match the key"));
    }
    let signature = B64
        .decode(signature)
        .map_err(|_| TokenError::Invalid("bad signature"))?;
    if !key.verifies(signed.as_bytes(), &signature) {
        return Err(TokenError::Invalid("bad signature"));
    }
    json_part(payload).ok_or(TokenError::Invalid("malformed claims"))
}

/// A base64url part of a compact JWS, read as JSON.
fn json_part<T: DeserializeOwned>(part: &str) -> Option<T> {
    serde_json::from_slice(&B64.decode(part).ok()?).ok()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_response_is_the_json_of_rfc_6749_with_absent_members_left_out() {
        let bare = TokenResponse {
            access_token: "eyJh.eyJz.c2ln".into(),
            token_type: "Bearer",
            expires_in: 900,
            refresh_token: None,
            scope: None,
            id_token: None,
        };
        assert_eq!(
            String::from_utf8(bare.to_json()).expect("UTF-8"),
            r#"{"access_token":"eyJh.eyJz.c2ln","token_type":"Bearer","expires_in":900}"#
        );
        let refresh = Secret::generate();
        let full = TokenResponse {
            refresh_token: Some(refresh.clone()),
            scope: Some("openid \"odd\\ scope".into()),
            id_token: Some("eyJp.eyJk.c2ln".into()),
            ..bare
        };
        let json: serde_json::Value = serde_json::from_slice(&full.to_json()).expect("JSON");
        assert_eq!(
            json,
            serde_json::json!({"access_token": "eyJh.eyJz.c2ln", "token_type": "Bearer",
                "expires_in": 900, "refresh_token": refresh.expose(),
                "scope": "openid \"odd\\ scope", "id_token": "eyJp.eyJk.c2ln"})
        );
    }
}
