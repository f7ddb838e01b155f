//! Registered clients: what each may ask for, and how it proves who it is — a random secret
//! (stored as SHA-256) or a public JWK for `private_key_jwt` (RFC 7523). A running instance
//! keeps the clients it has seen in memory while the change counters say they are unchanged
//! (`store::Changes`): a deleted client or a rotated secret stops working everywhere within
//! `STALE_AFTER` (2 s), and at once on the instance that made the change.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use serde::Serialize;
use subtle::ConstantTimeEq as _;

use super::redirect;
use crate::clock::Clock;
use crate::keys::Alg;
use crate::store::{Changes, ClientRecord, Store, StoreError};
use crate::sync::lock;
use crate::tokens::{Secret, FIRST_PARTY_CLIENT};
use crate::uri::is_absolute_uri;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("client id must be 1–128 characters of A–Z, a–z, 0–9, '.', '_', '~', '-', neither {FIRST_PARTY_CLIENT} nor a UUID")]
    InvalidId,
    #[error("invalid scope {0:?}: scopes are printable ASCII without spaces, quotes or backslashes")]
    InvalidScope(String),
    #[error("invalid audience {0:?}: {rule}", rule = crate::uri::ABSOLUTE_URI_RULE)]
    InvalidAudience(String),
    #[error("unknown grant type {0:?} (authorization_code, client_credentials, refresh_token)")]
    InvalidGrant(String),
    #[error("invalid redirect URI {0:?}: {1}")]
    InvalidRedirectUri(String, &'static str),
    #[error("the authorization_code grant needs at least one --redirect-uri")]
    NoRedirectUri,
    #[error("redirect URIs are for the authorization_code grant only")]
    RedirectWithoutCode,
    #[error("a public client has no secret and no key: --public and --jwk exclude each other")]
    PublicWithKey,
    #[error("a public client cannot use client_credentials: it has nothing to prove itself with")]
    PublicClientCredentials,
    #[error("ID-token algorithm must be RS256 or EdDSA, not {0:?}")]
    InvalidIdTokenAlg(String),
    #[error("the client needs at least one grant type")]
    NoGrant,
    #[error("invalid JWK: {0}")]
    InvalidJwk(String),
    #[error("access-token lifetime must be between 1 second and ISSUER_ACCESS_TOKEN_TTL ({0} s)")]
    InvalidTtl(u64),
    #[error("a client with id {0} exists already")]
    Exists(String),
    #[error("no client {0}")]
    NotFound(String),
    #[error("client {0} authenticates with a key (private_key_jwt), not a secret")]
    NotASecretClient(String),
    #[error("stored client {0} is invalid: {1}")]
    Corrupt(String, String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    AuthorizationCode,
    ClientCredentials,
    RefreshToken,
}

impl GrantType {
    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::ClientCredentials => "client_credentials",
            GrantType::RefreshToken => "refresh_token",
        }
    }

    fn parse(s: &str) -> Result<Self, ClientError> {
        match s {
            "authorization_code" => Ok(GrantType::AuthorizationCode),
            "client_credentials" => Ok(GrantType::ClientCredentials),
            "refresh_token" => Ok(GrantType::RefreshToken),
            other => Err(ClientError::InvalidGrant(other.to_owned())),
        }
    }
}

/// A client secret in plain text: shown once at creation or rotation, never stored.
pub type ClientSecret = Secret;

/// How a client proves who it is.
#[derive(Debug, Clone)]
pub enum Credential {
    Secret([u8; 32]),
    Key(Box<ClientKey>),
    /// A public client (a browser or native app): it names itself, and PKCE protects its codes.
    None,
}

/// A client's registered public key and the one algorithm its assertions may use.
#[derive(Debug, Clone)]
pub struct ClientKey {
    pub jwk: Jwk,
    pub alg: jsonwebtoken::Algorithm,
    /// `jwk`, parsed once.
    pub decoding: jsonwebtoken::DecodingKey,
}

#[derive(Debug, Clone)]
pub struct Client {
    pub id: String,
    pub credential: Credential,
    pub grants: Vec<GrantType>,
    pub scopes: Vec<String>,
    pub audiences: Vec<String>,
    pub access_token_ttl: Option<Duration>,
    /// Unix seconds; tokens issued before it belong to an earlier client of the same id.
    pub created_at: i64,
    /// Where codes may be sent (authorization_code clients).
    pub redirect_uris: Vec<String>,
    /// Where RP-initiated logout may send the browser.
    pub post_logout_redirect_uris: Vec<String>,
    /// Trusted: its users see no consent page.
    pub first_party: bool,
    pub id_token_alg: Alg,
}

impl Client {
    fn from_record(record: ClientRecord) -> Result<Self, ClientError> {
        let corrupt = |why: String| ClientError::Corrupt(record.id.clone(), why);
        let credential = match (&record.secret_hash, &record.public_jwk) {
            (Some(hash), None) => {
                let bytes = B64.decode(hash).map_err(|e| corrupt(e.to_string()))?;
                Credential::Secret(
                    bytes
                        .try_into()
                        .map_err(|_| corrupt("secret hash length".into()))?,
                )
            }
            (None, Some(jwk)) => {
                Credential::Key(Box::new(client_key(jwk).map_err(|e| corrupt(e.to_string()))?))
            }
            (None, None) => Credential::None,
            (Some(_), Some(_)) => return Err(corrupt("has both a secret and a key".into())),
        };
        let id_token_alg = record
            .id_token_alg
            .parse::<Alg>()
            .map_err(|_| corrupt(format!("ID-token algorithm {}", record.id_token_alg)))?;
        Ok(Self {
            credential,
            grants: words(&record.grant_types)
                .map(GrantType::parse)
                .collect::<Result<_, _>>()?,
            scopes: words(&record.scopes).map(str::to_owned).collect(),
            audiences: words(&record.audiences).map(str::to_owned).collect(),
            access_token_ttl: record
                .access_token_ttl
                .map(|s| Duration::from_secs(s.unsigned_abs())),
            created_at: record.created_at,
            redirect_uris: words(&record.redirect_uris).map(str::to_owned).collect(),
            post_logout_redirect_uris: words(&record.post_logout_redirect_uris)
                .map(str::to_owned)
                .collect(),
            first_party: record.first_party != 0,
            id_token_alg,
            id: record.id,
        })
    }

    pub fn allows(&self, grant: GrantType) -> bool {
        self.grants.contains(&grant)
    }

    /// Checks a presented secret in constant time.
    pub fn secret_matches(&self, secret: &str) -> bool {
        match &self.credential {
            Credential::Secret(hash) => bool::from(hash.ct_eq(&Secret::digest(secret))),
            Credential::Key(_) | Credential::None => false,
        }
    }

    pub fn is_public(&self) -> bool {
        matches!(self.credential, Credential::None)
    }

    /// A presented redirect URI is one of the registered ones: exactly, except that a loopback
    /// one may differ in its port (RFC 8252 §7.3).
    pub fn redirect_uri_registered(&self, presented: &str) -> bool {
        redirect::matches(&self.redirect_uris, presented)
    }
}

/// Spends the same time on an unknown client id as on a wrong secret.
pub fn compare_with_dummy_secret(secret: &str) {
    let dummy = [0u8; 32];
    std::hint::black_box(bool::from(dummy.ct_eq(&Secret::digest(secret))));
}

fn words(list: &str) -> impl Iterator<Item = &str> {
    list.split_ascii_whitespace()
}

/// Parses a stored or registered public JWK and decides its algorithm: the JWK's `alg` if
/// given, else the one its key type implies. Private members and weak keys are refused.
pub fn client_key(json: &str) -> Result<ClientKey, ClientError> {
    use jsonwebtoken::Algorithm;
    let invalid = |why: &str| ClientError::InvalidJwk(why.to_owned());
    let value: serde_json::Value = serde_json::from_str(json).map_err(|_| invalid("not JSON"))?;
    if ["d", "p", "q", "dp", "dq", "qi", "k"]
        .iter()
        .any(|m| value.get(m).is_some())
    {
        return Err(invalid(
            "it holds private key material; register the public key only",
        ));
    }
    let jwk: Jwk = serde_json::from_value(value).map_err(|e| ClientError::InvalidJwk(e.to_string()))?;
    let implied = match &jwk.algorithm {
        AlgorithmParameters::RSA(rsa) => {
            let n = B64.decode(&rsa.n).map_err(|_| invalid("n is not base64url"))?;
            let bits = n.iter().skip_while(|b| **b == 0).count() * 8;
            if bits < 2048 {
                return Err(invalid("RSA keys must have at least 2048 bits"));
            }
            vec![Algorithm::RS256, Algorithm::PS256]
        }
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => vec![Algorithm::ES256],
        AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {
            vec![Algorithm::EdDSA]
        }
        _ => {
            return Err(invalid(
                "supported keys: RSA (RS256, PS256), EC P-256 (ES256), Ed25519 (EdDSA)",
            ))
        }
    };
    let declared = jwk
        .common
        .key_algorithm
        .map(|a| a.to_string().parse::<Algorithm>())
        .transpose()
        .map_err(|_| invalid("alg is not a signing algorithm"))?;
    let alg = match declared {
        Some(alg) if implied.contains(&alg) => alg,
        Some(_) => return Err(invalid("alg does not match the key type")),
        None => implied[0],
    };
    let decoding =
        jsonwebtoken::DecodingKey::from_jwk(&jwk).map_err(|e| ClientError::InvalidJwk(e.to_string()))?;
    Ok(ClientKey { jwk, alg, decoding })
}

/// What `clients create` asks for.
#[derive(Debug, Clone, Default)]
pub struct NewClient {
    pub id: String,
    pub grants: Vec<String>,
    pub scopes: Vec<String>,
    pub audiences: Vec<String>,
    pub access_token_ttl: Option<Duration>,
    /// A public JWK: the client authenticates with `private_key_jwt` and has no secret.
    pub jwk: Option<String>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// No secret and no key (`token_endpoint_auth_method: none`).
    pub public: bool,
    pub first_party: bool,
    /// `RS256` (the default) or `EdDSA`.
    pub id_token_alg: Option<String>,
}

/// Clients kept in memory at most: only registered ids get in, so this is plenty.
const CACHE_ENTRIES: usize = 10_000;
/// A cached client is read again after this long even when no change was counted (a row
/// edited with SQL, which counts nothing).
const CACHE_MAX_AGE_MS: i64 = 60_000;

/// A client as read from the database, under the clients generation of that moment.
struct Cached {
    client: Arc<Client>,
    generation: u64,
    read_at_ms: i64,
}

impl Cached {
    fn usable(&self, generation: u64, now: i64) -> bool {
        self.generation == generation && (0..CACHE_MAX_AGE_MS).contains(&(now - self.read_at_ms))
    }
}

#[derive(Clone)]
pub struct Clients {
    store: Store,
    /// The longest access token any client may get: key retention is computed from it.
    max_ttl: Duration,
    clock: Clock,
    changes: Changes,
    cache: Arc<Mutex<HashMap<String, Cached>>>,
    /// Bumped by each change made here, so that a read that began before it is not cached.
    changed_here: Arc<AtomicU64>,
}

impl Clients {
    /// `changes` decides whether cached clients may be used: a `Changes` nobody polls (the
    /// CLI's) caches nothing.
    pub fn new(store: Store, max_ttl: Duration, clock: Clock, changes: Changes) -> Self {
        Self {
            store,
            max_ttl,
            clock,
            changes,
            cache: Arc::default(),
            changed_here: Arc::default(),
        }
    }

    /// The clock client registration and authentication go by.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Registers a client; the secret (for a secret client) is returned once.
    pub async fn create(&self, new: NewClient) -> Result<(ClientRecord, Option<ClientSecret>), ClientError> {
        // Never shaped like a user id (a UUID): a client's `sub` must not pass for a user's.
        let id_ok = (1..=128).contains(&new.id.len())
            && new.id != FIRST_PARTY_CLIENT
            && uuid::Uuid::parse_str(&new.id).is_err()
            && new
                .id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._~-".contains(&b));
        if !id_ok {
            return Err(ClientError::InvalidId);
        }
        let mut grants = Vec::new();
        for grant in &new.grants {
            let grant = GrantType::parse(grant)?;
            if !grants.contains(&grant) {
                grants.push(grant);
            }
        }
        if grants.is_empty() {
            return Err(ClientError::NoGrant);
        }
        // RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
        let scopes: Vec<&str> = new.scopes.iter().flat_map(|s| words(s)).collect();
        if let Some(bad) = scopes.iter().find(|s| {
            !s.bytes()
                .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
        }) {
            return Err(ClientError::InvalidScope((*bad).to_owned()));
        }
        if let Some(bad) = new.audiences.iter().find(|a| !is_absolute_uri(a)) {
            return Err(ClientError::InvalidAudience(bad.clone()));
        }
        let code = grants.contains(&GrantType::AuthorizationCode);
        for uri in new.redirect_uris.iter().chain(&new.post_logout_redirect_uris) {
            redirect::check_registered(uri)
                .map_err(|why| ClientError::InvalidRedirectUri(uri.clone(), why))?;
        }
        if code && new.redirect_uris.is_empty() {
            return Err(ClientError::NoRedirectUri);
        }
        let any_redirect = !new.redirect_uris.is_empty() || !new.post_logout_redirect_uris.is_empty();
        if !code && any_redirect {
            return Err(ClientError::RedirectWithoutCode);
        }
        if new.public && new.jwk.is_some() {
            return Err(ClientError::PublicWithKey);
        }
        if new.public && grants.contains(&GrantType::ClientCredentials) {
            return Err(ClientError::PublicClientCredentials);
        }
        let id_token_alg = match new.id_token_alg.as_deref() {
            None => Alg::Rs256,
            Some(alg) => match alg.parse::<Alg>() {
                Ok(alg) => alg,
                Err(_) => return Err(ClientError::InvalidIdTokenAlg(alg.to_owned())),
            },
        };
        if let Some(ttl) = new.access_token_ttl {
            if ttl.is_zero() || ttl > self.max_ttl {
                return Err(ClientError::InvalidTtl(self.max_ttl.as_secs()));
            }
        }
        let (secret, secret_hash, public_jwk) = match &new.jwk {
            None if new.public => (None, None, None),
            Some(jwk) => {
                let key = client_key(jwk)?;
                // Stored as parsed: public members only.
                let public =
                    serde_json::to_string(&key.jwk).map_err(|e| ClientError::InvalidJwk(e.to_string()))?;
                (None, None, Some(public))
            }
            None => {
                let secret = Secret::generate();
                let hash = Secret::stored_form(secret.expose());
                (Some(secret), Some(hash), None)
            }
        };
        let record = ClientRecord {
            id: new.id.clone(),
            secret_hash,
            public_jwk,
            grant_types: grants.iter().map(|g| g.as_str()).collect::<Vec<_>>().join(" "),
            scopes: stored_list(scopes),
            audiences: stored_list(new.audiences.iter().map(String::as_str)),
            access_token_ttl: new.access_token_ttl.map(|d| d.as_secs() as i64),
            created_at: self.clock.unix(),
            secret_rotated_at: None,
            redirect_uris: stored_list(new.redirect_uris.iter().map(String::as_str)),
            post_logout_redirect_uris: stored_list(new.post_logout_redirect_uris.iter().map(String::as_str)),
            first_party: i64::from(new.first_party),
            id_token_alg: id_token_alg.as_str().to_owned(),
        };
        match self.store.insert_client(&record).await {
            Err(StoreError::Conflict) => Err(ClientError::Exists(new.id)),
            other => other.map_err(ClientError::from),
        }?;
        Ok((record, secret))
    }

    /// The client `id`, from memory when no change to clients was counted since it was read.
    /// Unknown ids are not remembered: each costs a query, as before.
    pub async fn find(&self, id: &str) -> Result<Option<Arc<Client>>, ClientError> {
        let now = self.clock.unix_ms();
        // Read before the database: a change committed after it moves these on.
        let generation = self.changes.current().map(|g| g.clients);
        let changed_here = self.changed_here.load(Ordering::Acquire);
        if let Some(generation) = generation {
            if let Some(hit) = lock(&self.cache).get(id).filter(|c| c.usable(generation, now)) {
                return Ok(Some(hit.client.clone()));
            }
        }
        let Some(record) = self.store.client(id).await? else {
            return Ok(None);
        };
        let client = Arc::new(Client::from_record(record)?);
        if let Some(generation) = generation {
            let mut cache = lock(&self.cache);
            if self.changed_here.load(Ordering::Acquire) != changed_here {
                return Ok(Some(client));
            }
            if cache.len() >= CACHE_ENTRIES {
                cache.retain(|_, c| c.usable(generation, now));
                if cache.len() >= CACHE_ENTRIES {
                    cache.clear();
                }
            }
            let cached = Cached {
                client: client.clone(),
                generation,
                read_at_ms: now,
            };
            cache.insert(id.to_owned(), cached);
        }
        Ok(Some(client))
    }

    /// Forgets `id` here at once; other instances see the change counted.
    fn forget(&self, id: &str) {
        let mut cache = lock(&self.cache);
        self.changed_here.fetch_add(1, Ordering::AcqRel);
        cache.remove(id);
    }

    pub async fn list(&self) -> Result<Vec<ClientRecord>, ClientError> {
        Ok(self.store.clients().await?)
    }

    /// Every scope some client may ask for, sorted.
    pub async fn scopes(&self) -> Result<Vec<String>, ClientError> {
        let mut scopes: Vec<String> = self
            .list()
            .await?
            .iter()
            .flat_map(|c| words(&c.scopes).map(str::to_owned).collect::<Vec<_>>())
            .collect();
        scopes.sort_unstable();
        scopes.dedup();
        Ok(scopes)
    }

    pub async fn delete(&self, id: &str) -> Result<(), ClientError> {
        let deleted = self.store.delete_client(id).await?;
        self.forget(id);
        match deleted {
            true => Ok(()),
            false => Err(ClientError::NotFound(id.to_owned())),
        }
    }

    /// Remembers an accepted assertion's jti until it expires; `Conflict` on a replay.
    pub async fn record_assertion(
        &self,
        client_id: &str,
        jti: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        self.store.record_assertion(client_id, jti, expires_at, now).await
    }

    /// A new secret, returned once; the old one stops working at once.
    pub async fn rotate_secret(&self, id: &str) -> Result<ClientSecret, ClientError> {
        let secret = Secret::generate();
        let hash = Secret::stored_form(secret.expose());
        if self.store.set_client_secret(id, &hash, self.clock.unix()).await? {
            self.forget(id);
            return Ok(secret);
        }
        match self.store.client(id).await? {
            Some(_) => Err(ClientError::NotASecretClient(id.to_owned())),
            None => Err(ClientError::NotFound(id.to_owned())),
        }
    }
}

/// A list as stored: space-separated, repeats dropped, in the order given.
fn stored_list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let mut out: Vec<&str> = Vec::new();
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_by_hash_and_never_print() {
        let secret = Secret::generate();
        assert_eq!(secret.expose().len(), 43, "256 bits, base64url");
        let client = Client {
            id: "svc".into(),
            credential: Credential::Secret(Secret::digest(secret.expose())),
            grants: vec![GrantType::ClientCredentials],
            scopes: vec![],
            audiences: vec![],
            access_token_ttl: None,
            created_at: 0,
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            first_party: false,
            id_token_alg: Alg::Rs256,
        };
        assert!(client.secret_matches(secret.expose()));
        assert!(!client.secret_matches(&secret.expose()[1..]));
        assert!(!client.secret_matches(""));
    }

    #[test]
    fn registered_jwks_must_be_public_strong_and_consistent() {
        let rsa = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).expect("rsa");
        use rsa::traits::PublicKeyParts as _;
        let n = B64.encode(rsa.n().to_bytes_be());
        let public = format!(r#"{{"kty":"RSA","n":"{n}","e":"AQAB"}}"#);
        assert_eq!(
            client_key(&public).expect("valid").alg,
            jsonwebtoken::Algorithm::RS256
        );
        let ps = format!(r#"{{"kty":"RSA","n":"{n}","e":"AQAB","alg":"PS256"}}"#);
        assert_eq!(
            client_key(&ps).expect("valid").alg,
            jsonwebtoken::Algorithm::PS256
        );
        let wrong = format!(r#"{{"kty":"RSA","n":"{n}","e":"AQAB","alg":"ES256"}}"#);
        assert!(client_key(&wrong).is_err());
        let private = format!(r#"{{"kty":"RSA","n":"{n}","e":"AQAB","d":"AQAB"}}"#);
        assert!(client_key(&private)
            .expect_err("private")
            .to_string()
            .contains("private"));
        let weak = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 1024).expect("rsa");
        let weak = format!(
            r#"{{"kty":"RSA","n":"{}","e":"AQAB"}}"#,
            B64.encode(weak.n().to_bytes_be())
        );
        assert!(client_key(&weak).expect_err("weak").to_string().contains("2048"));
        let hmac = r#"{"kty":"oct","k":"c2VjcmV0"}"#;
        assert!(client_key(hmac).is_err());
    }
}
