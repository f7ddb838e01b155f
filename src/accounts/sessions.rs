//! Sessions: a login opens a refresh family; refreshing rotates it; logout ends it.

use std::net::IpAddr;
use std::sync::Arc;

use super::throttle::LoginThrottle;
use super::{AccountError, Accounts, User};
use crate::clock::Clock;
use crate::ratelimit::{self, Denied, Limit, RateLimits};
use crate::store::StoreError;
use crate::tokens::{
    AccessGrant, AccessTokens, RefreshError, RefreshTokens, Revocations, TokenError, TokenResponse,
    FIRST_PARTY_CLIENT,
};

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Refresh(#[from] RefreshError),
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Login: wrong credentials, a disabled account, password hashing at capacity.
    #[error(transparent)]
    Account(#[from] AccountError),
    /// Over a login or refresh budget, or the budget's store is down and it fails closed.
    #[error("rate limited")]
    Denied(Denied),
}

/// What sessions are made of and kept within.
pub struct SessionParts {
    pub access: AccessTokens,
    pub refresh: RefreshTokens,
    pub revocations: Revocations,
    /// `aud` of user access tokens.
    pub audience: String,
    pub accounts: Accounts,
    /// Failed-login limits per client IP and per account.
    pub login_throttle: LoginThrottle,
    /// The refresh budgets.
    pub rate_limits: Arc<RateLimits>,
    pub clock: Clock,
}

#[derive(Clone)]
pub struct Sessions {
    access: AccessTokens,
    refresh: RefreshTokens,
    revocations: Revocations,
    audience: String,
    accounts: Accounts,
    login_throttle: Arc<LoginThrottle>,
    rate_limits: Arc<RateLimits>,
    clock: Clock,
}

impl Sessions {
    pub fn new(parts: SessionParts) -> Self {
        Self {
            access: parts.access,
            refresh: parts.refresh,
            revocations: parts.revocations,
            audience: parts.audience,
            accounts: parts.accounts,
            login_throttle: Arc::new(parts.login_throttle),
            rate_limits: parts.rate_limits,
            clock: parts.clock,
        }
    }

    /// A first-party login from `ip`: the password checked as [`Sessions::authenticate`]
    /// does, then a session opened.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        ip: IpAddr,
    ) -> Result<TokenResponse, SessionError> {
        let user = self.authenticate(email, password, ip).await?;
        self.open(&user.id).await
    }

    /// Checks a password typed at `ip` (the JSON login and the hosted login page), in the
    /// order that keeps guessing expensive: the attempt is counted against the client and the
    /// account (throttled by a keyed hash of the email: the address itself is never kept or
    /// logged) before the password is checked; a success gives the attempt back. Audited
    /// either way.
    pub async fn authenticate(&self, email: &str, password: &str, ip: IpAddr) -> Result<User, SessionError> {
        let throttle = &self.login_throttle;
        let account = throttle.account_key(email).await.map_err(SessionError::Denied)?;
        let now = self.clock.unix_ms();
        throttle
            .begin(ip, &account, now)
            .await
            .map_err(SessionError::Denied)?;
        let user = match self.accounts.authenticate(email, password).await {
            Ok(user) => user,
            Err(e) => {
                if matches!(e, AccountError::InvalidCredentials | AccountError::Disabled) {
                    metrics::counter!("issuer_login_failures_total").increment(1);
                    tracing::info!(target: "audit", event = "login_failed", reason = %e, account = %account);
                }
                return Err(e.into());
            }
        };
        if let Err(store) = throttle.succeeded(ip, &account, now).await {
            tracing::error!(error = %store, "cannot give back a successful login's attempt");
        }
        tracing::info!(target: "audit", event = "login_succeeded", user_id = %user.id);
        Ok(user)
    }

    /// Opens a first-party session for a user who has just proved their password.
    async fn open(&self, user_id: &str) -> Result<TokenResponse, SessionError> {
        // Sign first: without a signing key no session row is left behind.
        let sid = RefreshTokens::new_family_id();
        let access = self
            .issue("password", &sid, user_id, FIRST_PARTY_CLIENT, None)
            .await?;
        let refresh = self
            .refresh
            .start(&sid, user_id, FIRST_PARTY_CLIENT, None)
            .await?;
        Ok(TokenResponse {
            refresh_token: Some(refresh),
            ..access
        })
    }

    /// One code path for `/api/v1/auth/refresh` and `grant_type=refresh_token`, for a
    /// refresh token of `client_id` sent from `ip`. Each request spends one of the refresh
    /// budget: a confidential client refreshing for its users has one, wherever its requests
    /// come from; public clients (first-party, browser and native apps) are limited per
    /// client IP, as anyone can name them. `scope`: fewer scopes than the session's for this
    /// access token (checked by the caller); the session keeps all of them.
    pub async fn refresh(
        &self,
        presented: &str,
        client_id: &str,
        public: bool,
        ip: IpAddr,
        scope: Option<String>,
    ) -> Result<TokenResponse, SessionError> {
        let subject = match public {
            true => ratelimit::ip_subject(ip),
            false => format!("client:{client_id}"),
        };
        self.rate_limits
            .admit(Limit::Refresh, &subject)
            .await
            .map_err(SessionError::Denied)?;
        let rotated = self.refresh.rotate(presented, client_id).await?;
        let access = self
            .issue(
                "refresh_token",
                &rotated.family_id,
                &rotated.user_id,
                &rotated.client_id,
                scope.or_else(|| rotated.scope.clone()),
            )
            .await?;
        Ok(TokenResponse {
            refresh_token: Some(rotated.secret),
            ..access
        })
    }

    /// An access token of session `sid`.
    async fn issue(
        &self,
        grant: &'static str,
        sid: &str,
        user_id: &str,
        client_id: &str,
        scope: Option<String>,
    ) -> Result<TokenResponse, TokenError> {
        let issued = self
            .access
            .issue(AccessGrant {
                grant,
                sub: user_id.to_owned(),
                aud: self.audience.clone(),
                client_id: client_id.to_owned(),
                scope: scope.clone(),
                sid: Some(sid.to_owned()),
                ttl: None,
            })
            .await?;
        Ok(TokenResponse::bearer(issued, scope))
    }

    /// Ends the session of `refresh_token` if it is this user's.
    pub async fn logout(&self, user_id: &str, refresh_token: &str) -> Result<bool, SessionError> {
        Ok(self.refresh.revoke(refresh_token, Some(user_id)).await?)
    }

    pub async fn logout_all(&self, user_id: &str) -> Result<u64, SessionError> {
        Ok(self.refresh.revoke_all(user_id).await?)
    }

    pub fn access_tokens(&self) -> &AccessTokens {
        &self.access
    }

    pub fn refresh_tokens(&self) -> &RefreshTokens {
        &self.refresh
    }

    pub fn revocations(&self) -> &Revocations {
        &self.revocations
    }
    pub fn audience(&self) -> &str {
        &self.audience
    }
}
