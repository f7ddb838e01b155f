//! RFC 9068 access tokens: signed with the active key of the configured algorithm, verified
//! against the published keys with the algorithm pinned by the key, never by the header.

use std::sync::Arc;
use std::time::Duration;

use super::TokenError;
use crate::clock::Clock;
use crate::keys::{Alg, JwsKind, KeySet};
use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};

/// How far in the future `iat` may lie (clock skew between instances).
const IAT_SKEW_SECS: i64 = 60;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    /// Never set by this issuer; a token that has one is refused until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    pub jti: String,
    pub client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The session (refresh family) a user's token belongs to; none for client_credentials.
    /// Lets the issuer refuse the token once its session has ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

/// Who a token is for; the issuer adds the rest.
#[derive(Debug, Clone)]
pub struct AccessGrant {
    /// How the token was obtained (`password`, `refresh_token`, `client_credentials`): a
    /// metrics label.
    pub grant: &'static str,
    pub sub: String,
    pub aud: String,
    pub client_id: String,
    pub scope: Option<String>,
    /// The session the token belongs to, for a user's token.
    pub sid: Option<String>,
    /// Shorter than the configured lifetime for this token; never longer.
    pub ttl: Option<Duration>,
}

#[derive(Debug)]
pub struct IssuedAccessToken {
    pub token: String,
    pub expires_in: u64,
}

#[derive(Clone)]
pub struct AccessTokens {
    issuer: String,
    ttl: Duration,
    alg: Alg,
    keys: Arc<ArcSwap<KeySet>>,
    clock: Clock,
}

impl AccessTokens {
    pub fn new(issuer: String, ttl: Duration, alg: Alg, keys: Arc<ArcSwap<KeySet>>, clock: Clock) -> Self {
        Self {
            issuer,
            ttl,
            alg,
            keys,
            clock,
        }
    }

    pub async fn issue(&self, grant: AccessGrant) -> Result<IssuedAccessToken, TokenError> {
        let iat = self.clock.unix();
        let expires_in = grant.ttl.map_or(self.ttl, |t| t.min(self.ttl)).as_secs();
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            sub: grant.sub,
            aud: grant.aud,
            exp: iat + expires_in as i64,
            iat,
            nbf: None,
            // UUID v4: 122 random bits.
            jti: uuid::Uuid::new_v4().to_string(),
            client_id: grant.client_id,
            scope: grant.scope,
            sid: grant.sid,
        };
        let token = super::sign(&self.keys, self.alg, JwsKind::AccessToken, &claims).await?;
        metrics::counter!("issuer_tokens_issued_total", "grant" => grant.grant, "alg" => self.alg.as_str())
            .increment(1);
        Ok(IssuedAccessToken { token, expires_in })
    }

    /// Checks signature, `typ`, `iss`, `aud`, `exp` and `iat` of a presented access token;
    /// `audience: None` accepts any (introspection and revocation speak for every audience).
    pub fn verify(&self, token: &str, audience: Option<&str>) -> Result<AccessClaims, TokenError> {
        let (key, mut validation) = super::pinned_key(&self.keys, token, |typ| {
            typ.eq_ignore_ascii_case("at+jwt") || typ.eq_ignore_ascii_case("application/at+jwt")
        })?;
        validation.set_issuer(&[&self.issuer]);
        match audience {
            Some(audience) => validation.set_audience(&[audience]),
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        let claims = jsonwebtoken::decode::<AccessClaims>(token, key.decoding_key(), &validation)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind;
                TokenError::Invalid(match e.kind() {
                    ErrorKind::ExpiredSignature => "expired",
                    ErrorKind::InvalidAudience => "wrong audience",
                    ErrorKind::InvalidIssuer => "wrong issuer",
                    ErrorKind::InvalidSignature => "bad signature",
                    _ => "invalid token",
                })
            })?
            .claims;
        let now = self.clock.unix();
        if claims.exp < now {
            return Err(TokenError::Invalid("expired"));
        }
        if claims.nbf.is_some_and(|nbf| nbf > now) {
            return Err(TokenError::Invalid("not valid yet"));
        }
        if claims.iat > now + IAT_SKEW_SECS {
            return Err(TokenError::Invalid("issued in the future"));
        }
        if claims.jti.is_empty() {
            return Err(TokenError::Invalid("no jti"));
        }
        Ok(claims)
    }
}
