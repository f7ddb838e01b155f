//! `POST /oauth2/token`: `authorization_code` (browser and native apps), `refresh_token` (any
//! client its tokens belong to) and `client_credentials` (confidential clients: scope within
//! theirs, audience among theirs).

use std::net::IpAddr;

use super::client_auth::Caller;
use super::clients::{Client, GrantType};
use super::{scopes_within, BasicCredentials, FormParams, OAuth, OAuthError};
use crate::ratelimit::{self, Limit};
use crate::tokens::{AccessGrant, TokenResponse};
use crate::uri::{is_absolute_uri, ABSOLUTE_URI_RULE};

impl OAuth {
    pub async fn token(
        &self,
        params: &FormParams,
        basic: Option<BasicCredentials>,
        client_ip: IpAddr,
    ) -> Result<TokenResponse, OAuthError> {
        let grant_type = params.require("grant_type")?;
        // Whether the request named a client at all (RFC 6749 §5.2 tells the two apart).
        let identified = basic.is_some() || params.get("client_id").is_some();
        let caller = self.caller("/oauth2/token", params, basic).await?;
        // Budgets are spent after authentication, so nobody can spend a client's budget
        // with its id alone.
        // A public client's id is no secret: its budget is per client address.
        match &caller {
            Caller::Client(client) if client.is_public() => {
                let subject = format!("{}@{}", client.id, ratelimit::ip_subject(client_ip));
                self.rate_limits.admit(Limit::Token, &subject).await?
            }
            Caller::Client(client) => self.rate_limits.admit(Limit::Token, &client.id).await?,
            Caller::FirstParty => {}
        }
        match grant_type {
            "authorization_code" => {
                let Caller::Client(client) = &caller else {
                    return Err(OAuthError::UnauthorizedClient(
                        "the first-party client logs in at /api/v1/auth/login".into(),
                    ));
                };
                require_grant(client, GrantType::AuthorizationCode)?;
                self.exchange_code(client, params).await
            }
            "refresh_token" => {
                if let Caller::Client(client) = &caller {
                    require_grant(client, GrantType::RefreshToken)?;
                }
                let refresh_token = params.require("refresh_token")?;
                let scope = self.refresh_scope(refresh_token, params.get("scope")).await?;
                let public = match &caller {
                    Caller::Client(client) => client.is_public(),
                    Caller::FirstParty => true,
                };
                Ok(self
                    .sessions
                    .refresh(refresh_token, caller.client_id(), public, client_ip, scope)
                    .await?)
            }
            "client_credentials" => {
                let Caller::Client(client) = caller else {
                    return Err(match identified {
                        true => OAuthError::UnauthorizedClient(
                            "the public client cannot use client_credentials".into(),
                        ),
                        false => OAuthError::InvalidClient(
                            "client_credentials needs client authentication; none was included".into(),
                        ),
                    });
                };
                require_grant(&client, GrantType::ClientCredentials)?;
                let scope = granted_scope(&client, params.get("scope"))?;
                let aud = audience(&client, params, &self.default_audience)?;
                let issued = self
                    .sessions
                    .access_tokens()
                    .issue(AccessGrant {
                        grant: "client_credentials",
                        sub: client.id.clone(),
                        aud,
                        client_id: client.id.clone(),
                        scope: scope.clone(),
                        sid: None,
                        ttl: client.access_token_ttl,
                    })
                    .await?;
                tracing::info!(target: "audit", event = "token_issued", grant = "client_credentials", client_id = %client.id);
                // RFC 6749 §4.4.3: no refresh token for this grant.
                Ok(TokenResponse::bearer(issued, scope))
            }
            other => Err(OAuthError::UnsupportedGrantType(format!(
                "grant_type {other} is not supported"
            ))),
        }
    }
}

impl OAuth {
    /// RFC 6749 §6: a refresh may ask for the session's scopes or fewer, for this access token
    /// only (the session keeps them all); none asked means all of them.
    async fn refresh_scope(
        &self,
        presented: &str,
        requested: Option<&str>,
    ) -> Result<Option<String>, OAuthError> {
        let Some(requested) = requested else {
            return Ok(None);
        };
        // An unknown token fails in the refresh itself, as it does without a scope.
        let Some(record) = self.sessions.refresh_tokens().lookup(presented).await? else {
            return Ok(None);
        };
        let granted: Vec<&str> = record.scope.as_deref().unwrap_or_default().split(' ').collect();
        let asked = scopes_within(requested, |s| granted.contains(&s)).map_err(|scope| {
            OAuthError::InvalidScope(format!("scope {scope} was not granted to this session"))
        })?;
        Ok((!asked.is_empty()).then(|| asked.join(" ")))
    }
}

fn require_grant(client: &Client, grant: GrantType) -> Result<(), OAuthError> {
    match client.allows(grant) {
        true => Ok(()),
        false => Err(OAuthError::UnauthorizedClient(format!(
            "client {} may not use {}",
            client.id,
            grant.as_str()
        ))),
    }
}

/// The requested scope, which must lie within the client's; all of the client's when absent.
fn granted_scope(client: &Client, requested: Option<&str>) -> Result<Option<String>, OAuthError> {
    let Some(requested) = requested else {
        return Ok((!client.scopes.is_empty()).then(|| client.scopes.join(" ")));
    };
    let granted = scopes_within(requested, |s| client.scopes.iter().any(|c| c == s))
        .map_err(|scope| OAuthError::InvalidScope(format!("scope {scope} is not granted to this client")))?;
    Ok((!granted.is_empty()).then(|| granted.join(" ")))
}

/// RFC 8707: `resource` (or the common `audience`) names one of the client's registered
/// audiences; without one, the client's first (or the issuer's default when it has none).
fn audience(client: &Client, params: &FormParams, default: &str) -> Result<String, OAuthError> {
    let mut asked: Vec<&str> = params.get_all("resource");
    asked.extend(params.get("audience"));
    asked.sort_unstable();
    asked.dedup();
    match asked.as_slice() {
        [] => Ok(client
            .audiences
            .first()
            .map_or(default, String::as_str)
            .to_owned()),
        [one] if !is_absolute_uri(one) => Err(OAuthError::InvalidTarget(format!(
            "resource {one} is not {ABSOLUTE_URI_RULE}"
        ))),
        [one] if client.audiences.iter().any(|a| a == one) => Ok((*one).to_owned()),
        [one] => Err(OAuthError::InvalidTarget(format!(
            "resource {one} is not allowed for this client"
        ))),
        _ => Err(OAuthError::InvalidTarget("ask for one resource per token".into())),
    }
}
