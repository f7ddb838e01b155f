//! The authorization endpoint (RFC 6749 §4.1 as OAuth 2.1 tightens it, OpenID Connect Core
//! §3.1.2): which requests are valid, whether the user must log in or approve, and the code
//! sent back. Pages and cookies are the HTTP layer's; the rules are here.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;

use super::clients::{Client, GrantType};
use super::{redirect, scopes_within, FormParams, OAuth, OAuthError};
use crate::accounts::{AccountError, LoginSession};
use crate::store::CodeRecord;
use crate::tokens::Secret;

/// How long a code may wait for its exchange.
pub const CODE_TTL_SECS: i64 = 60;

/// The parameters of an authorization request this issuer reads; the login and consent
/// forms carry them on.
const PARAMETERS: [&str; 12] = [
    "client_id",
    "redirect_uri",
    "response_type",
    "response_mode",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "max_age",
    "login_hint",
];

/// `prompt` (OpenID Connect Core §3.1.2.1).
#[derive(Debug, Clone, Copy, Default)]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
}

/// A valid authorization request.
#[derive(Debug)]
pub struct AuthorizationRequest {
    pub client: Arc<Client>,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub scopes: Vec<String>,
    pub code_challenge: String,
    pub nonce: Option<String>,
    pub prompt: Prompt,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    /// The request's parameters as received (the known ones), for the forms.
    pub fields: Vec<(&'static str, String)>,
}

impl AuthorizationRequest {
    pub fn scope(&self) -> Option<String> {
        (!self.scopes.is_empty()).then(|| self.scopes.join(" "))
    }

    /// The redirect URI with `pairs`, `state` and `iss` (RFC 9207) added to its query.
    fn location(&self, issuer: &str, pairs: &[(&str, &str)]) -> String {
        let mut pairs = pairs.to_vec();
        if let Some(state) = &self.state {
            pairs.push(("state", state));
        }
        pairs.push(("iss", issuer));
        redirect::with_query(&self.redirect_uri, &pairs)
    }

    fn error(&self, issuer: &str, error: &'static str, description: impl Into<String>) -> AuthorizeError {
        let description = description.into();
        AuthorizeError::Redirect {
            location: self.location(issuer, &[("error", error), ("error_description", &description)]),
            error,
            description,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthorizeError {
    /// The client or its redirect URI cannot be trusted: the issuer shows its own error page
    /// and never redirects.
    #[error("invalid authorization request: {0}")]
    Page(String),
    /// Sent back to the client (RFC 6749 §4.1.2.1) at `location`.
    #[error("{error}: {description}")]
    Redirect {
        location: String,
        error: &'static str,
        description: String,
    },
    /// The service could not decide (database down, …): an error page.
    #[error(transparent)]
    Server(#[from] OAuthError),
}

impl From<crate::store::StoreError> for AuthorizeError {
    fn from(e: crate::store::StoreError) -> Self {
        AuthorizeError::Server(e.into())
    }
}

/// What the browser sees next.
#[derive(Debug)]
pub enum Step {
    /// The login page.
    Login(Box<AuthorizationRequest>),
    /// The consent page, for the user with this email.
    Consent(Box<AuthorizationRequest>, String),
    /// Back to the client, with a code or an error.
    Redirect(String),
}

/// RFC 7636 §4.1: 43–128 of `A-Z a-z 0-9 - . _ ~`; a S256 challenge is 43 base64url characters.
fn pkce_text(text: &str) -> bool {
    (43..=128).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// Whether `verifier` is the one `challenge` was made from (S256), in constant time.
pub fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    use sha2::{Digest, Sha256};
    use subtle::ConstantTimeEq as _;
    let computed = B64.encode(Sha256::digest(verifier.as_bytes()));
    pkce_text(verifier) && bool::from(computed.as_bytes().ct_eq(challenge.as_bytes()))
}

impl OAuth {
    /// Checks an authorization request. The client and redirect URI first: until both are
    /// known good, errors are the issuer's page; after, they go back to the client.
    pub async fn authorization_request(
        &self,
        params: &FormParams,
    ) -> Result<AuthorizationRequest, AuthorizeError> {
        let client_id = params
            .get("client_id")
            .ok_or_else(|| AuthorizeError::Page("the request names no client (client_id)".into()))?;
        let client = self
            .clients
            .find(client_id)
            .await
            .map_err(OAuthError::from)?
            .filter(|c| !c.redirect_uris.is_empty())
            .ok_or_else(|| {
                AuthorizeError::Page(format!(
                    "no application {client_id:?} is registered for browser login"
                ))
            })?;
        let redirect_uri = params
            .get("redirect_uri")
            .ok_or_else(|| AuthorizeError::Page("the request has no redirect_uri".into()))?;
        if !client.redirect_uri_registered(redirect_uri) {
            return Err(AuthorizeError::Page(format!(
                "the redirect_uri is not registered for {client_id}"
            )));
        }
        let mut request = AuthorizationRequest {
            redirect_uri: redirect_uri.to_owned(),
            state: params.get("state").map(str::to_owned),
            scopes: Vec::new(),
            code_challenge: String::new(),
            nonce: params.get("nonce").map(str::to_owned),
            prompt: Prompt::default(),
            max_age: None,
            login_hint: params.get("login_hint").map(str::to_owned),
            fields: params.pick(&PARAMETERS),
            client,
        };
        let issuer = self.issuer.as_str();
        let invalid =
            |request: &AuthorizationRequest, why: &str| request.error(issuer, "invalid_request", why);
        match params.get("response_type") {
            Some("code") => {}
            None => return Err(invalid(&request, "response_type is missing")),
            // Never echoed: error_description is a narrow character set (RFC 6749 §4.1.2.1).
            Some(_) => {
                return Err(request.error(
                    issuer,
                    "unsupported_response_type",
                    "only response_type=code is supported",
                ))
            }
        }
        if !request.client.allows(GrantType::AuthorizationCode) {
            return Err(request.error(
                issuer,
                "unauthorized_client",
                "the client may not use the authorization code",
            ));
        }
        if params.get("response_mode").is_some_and(|m| m != "query") {
            return Err(invalid(&request, "response_mode must be query"));
        }
        if params.get("request").is_some() {
            return Err(request.error(
                issuer,
                "request_not_supported",
                "request objects are not supported",
            ));
        }
        if params.get("request_uri").is_some() {
            return Err(request.error(
                issuer,
                "request_uri_not_supported",
                "request_uri is not supported",
            ));
        }
        match (params.get("code_challenge"), params.get("code_challenge_method")) {
            (None, _) => return Err(invalid(&request, "code_challenge is required (PKCE with S256)")),
            (Some(_), Some(method)) if method != "S256" => {
                return Err(invalid(&request, "code_challenge_method must be S256"))
            }
            (Some(_), None) => return Err(invalid(&request, "code_challenge_method=S256 is required")),
            (Some(challenge), Some(_)) if challenge.len() != 43 || !pkce_text(challenge) => {
                return Err(invalid(
                    &request,
                    "code_challenge must be the 43-character base64url SHA-256 of the verifier",
                ))
            }
            (Some(challenge), Some(_)) => request.code_challenge = challenge.to_owned(),
        }
        // Without `scope`, every scope the client has (RFC 6749 §3.3 allows a default).
        request.scopes = match params.get("scope") {
            None => request.client.scopes.clone(),
            Some(asked) => match scopes_within(asked, |s| request.client.scopes.iter().any(|c| c == s)) {
                Ok(scopes) => scopes.into_iter().map(str::to_owned).collect(),
                Err(_) => {
                    return Err(request.error(
                        issuer,
                        "invalid_scope",
                        "a requested scope is not granted to this client",
                    ))
                }
            },
        };
        for value in params
            .get("prompt")
            .unwrap_or_default()
            .split(' ')
            .filter(|s| !s.is_empty())
        {
            match value {
                "none" => request.prompt.none = true,
                "login" => request.prompt.login = true,
                "consent" => request.prompt.consent = true,
                // One account per browser: there is nothing to select.
                "select_account" => {}
                _ => {
                    return Err(invalid(
                        &request,
                        "prompt must be none, login, consent or select_account",
                    ))
                }
            }
        }
        if request.prompt.none && (request.prompt.login || request.prompt.consent) {
            return Err(invalid(
                &request,
                "prompt=none cannot be combined with other values",
            ));
        }
        if let Some(max_age) = params.get("max_age") {
            match max_age.parse::<i64>() {
                Ok(age) if age >= 0 => request.max_age = Some(age),
                _ => return Err(invalid(&request, "max_age must be a whole number of seconds")),
            }
        }
        Ok(request)
    }

    /// The next step of a valid request for a browser with `session` (if any). `fresh`: the
    /// user typed their password in this very request, which satisfies `prompt=login` and
    /// `max_age`.
    pub async fn authorize(
        &self,
        request: AuthorizationRequest,
        session: Option<&LoginSession>,
        fresh: bool,
    ) -> Result<Step, AuthorizeError> {
        let now = self.clock.unix();
        // max_age=0 asks for the password every time, as prompt=login does (Core §3.1.2.1).
        let session = session.filter(|s| {
            fresh
                || (!request.prompt.login
                    && request
                        .max_age
                        .is_none_or(|age| age > 0 && now - s.auth_time <= age))
        });
        let Some(session) = session else {
            if request.prompt.none {
                return Err(request.error(&self.issuer, "login_required", "the user is not logged in"));
            }
            return Ok(Step::Login(Box::new(request)));
        };
        // Without the user typing anything now, an app is approved silently only if its
        // redirect proves who it is (RFC 8252 §8.6): any local program can claim a loopback
        // port or an app scheme and send a client id it read from the real app.
        let unproven =
            !fresh && request.client.is_public() && !redirect::proves_the_app(&request.redirect_uri);
        let approved = request.client.first_party || {
            let remembered = self.store.consent(&session.user_id, &request.client.id).await?;
            remembered
                .as_deref()
                .is_some_and(|approved| request.scopes.iter().all(|s| approved.split(' ').any(|a| a == s)))
        };
        if request.prompt.consent || !approved || unproven {
            if request.prompt.none {
                return Err(request.error(
                    &self.issuer,
                    "consent_required",
                    "the user must approve this client",
                ));
            }
            let user = match self.accounts.find(&session.user_id).await {
                Ok(user) => user,
                // Gone or disabled since the session was read: log in again.
                Err(AccountError::NotFound) => return Ok(Step::Login(Box::new(request))),
                Err(e) => return Err(AuthorizeError::Server(OAuthError::Unavailable(e.to_string()))),
            };
            return Ok(Step::Consent(Box::new(request), user.email));
        }
        self.code(&request, session).await.map(Step::Redirect)
    }

    /// The user's answer on the consent page. Approved scopes are remembered, together with
    /// any approved before.
    pub async fn decide(
        &self,
        request: AuthorizationRequest,
        session: &LoginSession,
        allow: bool,
    ) -> Result<Step, AuthorizeError> {
        if !allow {
            tracing::info!(target: "audit", event = "consent_denied", user_id = %session.user_id, client_id = %request.client.id);
            return Err(request.error(&self.issuer, "access_denied", "the user refused"));
        }
        let mut scopes: Vec<String> = self
            .store
            .consent(&session.user_id, &request.client.id)
            .await?
            .map(|s| {
                s.split(' ')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        for scope in &request.scopes {
            if !scopes.contains(scope) {
                scopes.push(scope.clone());
            }
        }
        self.store
            .save_consent(
                &session.user_id,
                &request.client.id,
                &scopes.join(" "),
                self.clock.unix(),
            )
            .await?;
        tracing::info!(target: "audit", event = "consent_granted", user_id = %session.user_id, client_id = %request.client.id, scope = %scopes.join(" "));
        self.code(&request, session).await.map(Step::Redirect)
    }

    /// Issues a code for the request and returns where it goes.
    async fn code(
        &self,
        request: &AuthorizationRequest,
        session: &LoginSession,
    ) -> Result<String, AuthorizeError> {
        let code = Secret::generate();
        let now = self.clock.unix();
        self.store
            .insert_code(&CodeRecord {
                code_hash: code_hash(code.expose()),
                client_id: request.client.id.clone(),
                user_id: session.user_id.clone(),
                login_session_id: session.id.clone(),
                redirect_uri: request.redirect_uri.clone(),
                code_challenge: request.code_challenge.clone(),
                scope: request.scope(),
                nonce: request.nonce.clone(),
                auth_time: session.auth_time,
                expires_at: now + CODE_TTL_SECS,
                used_at: None,
                family_id: None,
            })
            .await?;
        tracing::info!(target: "audit", event = "authorization_code_issued", user_id = %session.user_id, client_id = %request.client.id);
        Ok(request.location(&self.issuer, &[("code", code.expose())]))
    }
}

/// The stored form of a code.
pub fn code_hash(code: &str) -> String {
    Secret::stored_form(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_the_rfc_7636_example() {
        // RFC 7636 Appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(pkce_matches(verifier, challenge));
        assert!(!pkce_matches(&verifier[1..], challenge));
        assert!(!pkce_matches(challenge, challenge), "plain is not S256");
        assert!(!pkce_matches("short", challenge));
    }
}
