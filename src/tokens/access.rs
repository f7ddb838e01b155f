//! RFC 9068 access tokens: signed with the active key of the configured algorithm, verified
//! against the published keys with the algorithm pinned by the key, never by the header.

use std::sync::Arc;
use std::time::Duration;

use super::verified::VerifiedTokens;
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
    verified: Arc<VerifiedTokens>,
}

impl AccessTokens {
    pub fn new(issuer: String, ttl: Duration, alg: Alg, keys: Arc<ArcSwap<KeySet>>, clock: Clock) -> Self {
        Self {
            issuer,
            ttl,
            alg,
            keys,
            clock,
            verified: Arc::default(),
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
        crate::metrics::token_issued(grant.grant, self.alg.as_str());
        Ok(IssuedAccessToken { token, expires_in })
    }

    /// Checks signature, `typ`, `iss`, `aud`, `exp` and `iat` of a presented access token;
    /// `audience: None` accepts any (introspection and revocation speak for every audience).
    /// A token verified before under the same keyset skips the signature check.
    pub fn verify(&self, token: &str, audience: Option<&str>) -> Result<AccessClaims, TokenError> {
        let keys = self.keys.load();
        let now = self.clock.unix();
        if let Some(claims) = self.verified.get(&keys, token) {
            return self.checked(claims, audience, now);
        }
        let claims: AccessClaims = super::verified_claims(&keys, token, |typ| {
            typ.eq_ignore_ascii_case("at+jwt") || typ.eq_ignore_ascii_case("application/at+jwt")
        })?;
        let claims = self.checked(claims, audience, now)?;
        self.verified.insert(&keys, token, &claims, now);
        Ok(claims)
    }

    /// The claims' rules, which hold or fail whether or not the signature was checked now.
    fn checked(
        &self,
        claims: AccessClaims,
        audience: Option<&str>,
        now: i64,
    ) -> Result<AccessClaims, TokenError> {
        if claims.iss != self.issuer {
            return Err(TokenError::Invalid("wrong issuer"));
        }
        if audience.is_some_and(|audience| claims.aud != audience) {
            return Err(TokenError::Invalid("wrong audience"));
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{generate_record, KeyState, KeysetDocument};
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use base64::Engine as _;
    use serde_json::json;

    const ISSUER: &str = "https://issuer.example";

    fn tokens(alg: Alg) -> AccessTokens {
        tokens_with(alg, Clock::system())
    }

    fn tokens_with(alg: Alg, clock: Clock) -> AccessTokens {
        let keys = Arc::new(ArcSwap::from_pointee(fresh_keyset()));
        AccessTokens::new(ISSUER.into(), Duration::from_secs(900), alg, keys, clock)
    }

    /// New active keys of both algorithms.
    fn fresh_keyset() -> KeySet {
        let now = time::OffsetDateTime::now_utc();
        let keys = Alg::ALL
            .iter()
            .map(|&alg| generate_record(alg, 2048, KeyState::Active, now).expect("key"))
            .collect();
        KeySet::from_document(&KeysetDocument { keys }).expect("keyset")
    }

    async fn issued(tokens: &AccessTokens) -> String {
        let grant = AccessGrant {
            grant: "client_credentials",
            sub: "svc".into(),
            aud: "https://api.example".into(),
            client_id: "svc".into(),
            scope: None,
            sid: None,
            ttl: None,
        };
        tokens.issue(grant).await.expect("issued").token
    }

    /// The token with its header replaced by `header` (the signature left as it was).
    fn with_header(token: &str, header: serde_json::Value) -> String {
        let rest = token.split_once('.').expect("dots").1;
        format!("{}.{rest}", B64.encode(header.to_string()))
    }

    fn refusal(result: Result<AccessClaims, TokenError>) -> &'static str {
        match result {
            Err(TokenError::Invalid(why)) => why,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_token_verifies_with_its_own_key_and_audience_for_both_algorithms() {
        for alg in Alg::ALL {
            let tokens = tokens(alg);
            let token = issued(&tokens).await;
            let claims = tokens
                .verify(&token, Some("https://api.example"))
                .expect("verifies");
            assert_eq!(
                (claims.sub.as_str(), claims.iss.as_str()),
                ("svc", ISSUER),
                "{alg}"
            );
            assert!(tokens.verify(&token, None).is_ok(), "{alg}: any audience");
            assert_eq!(
                refusal(tokens.verify(&token, Some("https://other.example"))),
                "wrong audience"
            );
        }
    }

    #[tokio::test]
    async fn the_key_decides_the_algorithm_and_the_header_must_agree() {
        for (alg, other) in [(Alg::Rs256, Alg::EdDsa), (Alg::EdDsa, Alg::Rs256)] {
            let tokens = tokens(alg);
            let token = issued(&tokens).await;
            let header = B64.decode(token.split('.').next().expect("header")).expect("b64");
            let kid = serde_json::from_slice::<serde_json::Value>(&header).expect("json")["kid"].clone();
            let header = |extra: serde_json::Value| {
                let mut h = json!({"alg": alg.as_str(), "kid": kid, "typ": "at+jwt"});
                for (k, v) in extra.as_object().expect("object") {
                    h[k] = v.clone();
                }
                h
            };
            let cases = [
                (
                    with_header(&token, header(json!({"alg": other.as_str()}))),
                    "alg does not match the key",
                ),
                (
                    with_header(&token, header(json!({"crit": ["exp"]}))),
                    "unsupported crit header",
                ),
                (
                    with_header(&token, header(json!({"typ": "JWT"}))),
                    "unexpected typ",
                ),
                (format!("{token}.x"), "not a compact JWS"),
            ];
            for (forged, why) in cases {
                assert_eq!(refusal(tokens.verify(&forged, None)), why, "{alg}");
            }
            let signature_swapped = {
                let later = issued(&tokens).await;
                let (signed, _) = token.rsplit_once('.').expect("dot");
                format!("{signed}.{}", later.rsplit_once('.').expect("dot").1)
            };
            assert_eq!(
                refusal(tokens.verify(&signature_swapped, None)),
                "bad signature",
                "{alg}"
            );
            // An ID token of the same key is no access token.
            let id_token = super::super::sign(&tokens.keys, alg, JwsKind::IdToken, &json!({"iss": ISSUER}))
                .await
                .expect("signed");
            assert_eq!(refusal(tokens.verify(&id_token, None)), "unexpected typ", "{alg}");
        }
    }

    #[tokio::test]
    async fn a_token_verified_before_is_still_held_to_every_rule() {
        for alg in Alg::ALL {
            let clock = Clock::adjustable();
            let tokens = tokens_with(alg, clock.clone());
            let token = issued(&tokens).await;
            assert!(tokens.verify(&token, None).is_ok(), "{alg}: verified once");
            assert!(
                tokens.verified.get(&tokens.keys.load(), &token).is_some(),
                "{alg}: and remembered"
            );
            assert!(tokens.verify(&token, None).is_ok(), "{alg}: and again");
            assert_eq!(
                refusal(tokens.verify(&token, Some("https://other.example"))),
                "wrong audience",
                "{alg}"
            );
            let (signed, signature) = token.rsplit_once('.').expect("dot");
            let flipped = if signature.starts_with('A') { "B" } else { "A" };
            let altered = format!("{signed}.{flipped}{}", &signature[1..]);
            assert_eq!(refusal(tokens.verify(&altered, None)), "bad signature", "{alg}");
            clock.advance(Duration::from_secs(901));
            assert_eq!(refusal(tokens.verify(&token, None)), "expired", "{alg}");
        }
    }

    #[tokio::test]
    async fn a_token_verified_before_fails_once_its_key_leaves_the_keyset() {
        for alg in Alg::ALL {
            let tokens = tokens(alg);
            let token = issued(&tokens).await;
            assert!(tokens.verify(&token, None).is_ok(), "{alg}");
            tokens.keys.store(Arc::new(fresh_keyset()));
            assert_eq!(refusal(tokens.verify(&token, None)), "unknown kid", "{alg}");
        }
    }
}
