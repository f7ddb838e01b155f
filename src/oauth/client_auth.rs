//! Who is calling an OAuth endpoint: a registered client proving itself with
//! `client_secret_basic`, `client_secret_post` or `private_key_jwt` (RFC 7523), a registered
//! public client, which names itself by `client_id` alone, or the built-in public client
//! `first-party`, which may also send nothing.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use serde::Deserialize;

use super::clients::{compare_with_dummy_secret, Client, Clients, Credential};
use super::{BasicCredentials, FormParams, OAuthError};
use crate::store::StoreError;
use crate::tokens::FIRST_PARTY_CLIENT;

pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Assertions may live this long at most, so their jti need be remembered only this long.
const MAX_ASSERTION_LIFETIME_SECS: i64 = 3600;
const ASSERTION_LEEWAY_SECS: i64 = 30;
const MAX_ASSERTION_BYTES: usize = 8 * 1024;

pub enum Caller {
    Client(Arc<Client>),
    FirstParty,
}

impl Caller {
    pub fn client_id(&self) -> &str {
        match self {
            Caller::Client(c) => &c.id,
            Caller::FirstParty => FIRST_PARTY_CLIENT,
        }
    }
}

/// Where an assertion may be addressed: the issuer, the token endpoint, or the endpoint it
/// is presented at (the issuer's URL and `path`, built only for an assertion).
pub struct Audiences<'a> {
    pub issuer: &'a str,
    pub path: &'a str,
}

fn refused(why: &str) -> OAuthError {
    OAuthError::InvalidClient(why.to_owned())
}

const WRONG_SECRET: &str = "unknown client or wrong secret";
const UNPROVEN: &str = "client authentication failed";

/// Identifies and authenticates the caller. More than one method at once is refused
/// (RFC 6749 §2.3).
pub async fn authenticate(
    clients: &Clients,
    audiences: Audiences<'_>,
    params: &FormParams,
    basic: Option<BasicCredentials>,
) -> Result<Caller, OAuthError> {
    let post_secret = params.get("client_secret");
    let assertion = params.get("client_assertion");
    let methods =
        usize::from(basic.is_some()) + usize::from(post_secret.is_some()) + usize::from(assertion.is_some());
    if methods > 1 {
        return Err(OAuthError::InvalidRequest(
            "use exactly one client authentication method".into(),
        ));
    }
    let form_id = params.get("client_id");
    if let Some(basic) = basic {
        if form_id.is_some_and(|id| id != basic.client_id) {
            return Err(OAuthError::InvalidRequest("two different client ids".into()));
        }
        // Some libraries send a public client as `Basic base64(client_id:)`.
        if basic.client_secret.is_empty() {
            return public(clients, Some(&basic.client_id)).await;
        }
        return with_secret(clients, &basic.client_id, &basic.client_secret).await;
    }
    if let Some(secret) = post_secret {
        let id =
            form_id.ok_or_else(|| OAuthError::InvalidRequest("client_secret without client_id".into()))?;
        return with_secret(clients, id, secret).await;
    }
    if let Some(assertion) = assertion {
        if params.get("client_assertion_type") != Some(JWT_BEARER_ASSERTION) {
            return Err(OAuthError::InvalidRequest(format!(
                "client_assertion_type must be {JWT_BEARER_ASSERTION}"
            )));
        }
        return with_assertion(clients, audiences, assertion, form_id).await;
    }
    public(clients, form_id).await
}

async fn find(clients: &Clients, id: &str) -> Result<Option<Arc<Client>>, OAuthError> {
    clients.find(id).await.map_err(OAuthError::from)
}

/// A client that sent no credential: the built-in public client, or a registered public one.
async fn public(clients: &Clients, id: Option<&str>) -> Result<Caller, OAuthError> {
    let id = match id {
        None | Some(FIRST_PARTY_CLIENT) => return Ok(Caller::FirstParty),
        Some(id) => id,
    };
    match find(clients, id).await? {
        Some(client) if client.is_public() => Ok(Caller::Client(client)),
        // A confidential client, or none: the same answer, so client ids cannot be probed.
        _ => Err(refused(WRONG_SECRET)),
    }
}

async fn with_secret(clients: &Clients, id: &str, secret: &str) -> Result<Caller, OAuthError> {
    match find(clients, id).await? {
        Some(client) if client.secret_matches(secret) => Ok(Caller::Client(client)),
        Some(_) => Err(refused(WRONG_SECRET)),
        None => {
            compare_with_dummy_secret(secret);
            Err(refused(WRONG_SECRET))
        }
    }
}

#[derive(Deserialize)]
struct Issuer {
    iss: Option<String>,
}

#[derive(Deserialize)]
struct AssertionClaims {
    sub: String,
    exp: i64,
    /// Some libraries write fractional seconds.
    #[serde(default)]
    nbf: Option<f64>,
    #[serde(default)]
    jti: Option<String>,
}

/// RFC 7523 §3: `iss` = `sub` = the client id, `aud` names this server, `exp` present and
/// near, `jti` unique; signed with the client's registered key and algorithm.
async fn with_assertion(
    clients: &Clients,
    audiences: Audiences<'_>,
    assertion: &str,
    form_id: Option<&str>,
) -> Result<Caller, OAuthError> {
    if assertion.len() > MAX_ASSERTION_BYTES {
        return Err(refused("client assertion is too large"));
    }
    let header =
        jsonwebtoken::decode_header(assertion).map_err(|_| refused("client assertion is not a JWT"))?;
    // The client is named by the (not yet verified) `iss`; its key then decides.
    let id = assertion
        .split('.')
        .nth(1)
        .and_then(|payload| B64.decode(payload).ok())
        .and_then(|json| serde_json::from_slice::<Issuer>(&json).ok())
        .and_then(|claims| claims.iss)
        .ok_or_else(|| refused("client assertion has no iss"))?;
    if form_id.is_some_and(|f| f != id) {
        return Err(refused("client_id differs from the assertion's iss"));
    }
    // Until the signature verifies, every failure reads the same: client ids cannot be probed.
    let unproven = |why: &str| {
        tracing::info!(client_id = %id, reason = why, "client assertion refused");
        refused(UNPROVEN)
    };
    let client = find(clients, &id)
        .await?
        .ok_or_else(|| unproven("unknown client"))?;
    let Credential::Key(key) = &client.credential else {
        return Err(unproven("the client authenticates with a secret"));
    };
    // The algorithm is the registered one, never the header's choice (no alg confusion).
    if header.alg != key.alg {
        return Err(unproven("not signed with the registered algorithm"));
    }
    let mut validation = jsonwebtoken::Validation::new(key.alg);
    // Times are checked below, against the service's clock.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.set_issuer(&[&id]);
    let url = |path: &str| format!("{}{path}", audiences.issuer);
    validation.set_audience(&[audiences.issuer, &url(audiences.path), &url("/oauth2/token")]);
    validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    let claims = jsonwebtoken::decode::<AssertionClaims>(assertion, &key.decoding, &validation)
        .map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            // jsonwebtoken checks the signature before the claims: past it, the caller holds
            // the key and may learn what else is wrong.
            match e.kind() {
                ErrorKind::InvalidAudience => refused("client assertion is not addressed to this server"),
                ErrorKind::InvalidIssuer | ErrorKind::MissingRequiredClaim(_) => {
                    refused("client assertion lacks a required claim or names another issuer")
                }
                _ => unproven("signature does not verify with the registered key"),
            }
        })?
        .claims;
    if claims.sub != id {
        return Err(refused("client assertion sub must equal its iss"));
    }
    let now = clients.clock().unix();
    let leeway = ASSERTION_LEEWAY_SECS;
    if claims.exp < now - leeway {
        return Err(refused("client assertion has expired"));
    }
    if claims.nbf.is_some_and(|nbf| nbf > (now + leeway) as f64) {
        return Err(refused("client assertion is not valid yet"));
    }
    if claims.exp > now + MAX_ASSERTION_LIFETIME_SECS {
        return Err(refused("client assertion lives longer than an hour"));
    }
    let jti = claims
        .jti
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or_else(|| refused("client assertion needs a jti"))?;
    // Remembered as long as it could still be accepted: until exp plus the leeway.
    let remember_until = claims.exp + ASSERTION_LEEWAY_SECS;
    match clients.record_assertion(&id, &jti, remember_until, now).await {
        Ok(()) => Ok(Caller::Client(client)),
        Err(StoreError::Conflict) => Err(refused("client assertion was used before (jti replayed)")),
        Err(e) => Err(e.into()),
    }
}
