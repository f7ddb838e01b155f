//! Verify access tokens of a token-issuer (or any RFC 9068 issuer) offline, against the
//! issuer's published JWKS.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let verifier = token_verifier::Verifier::builder("https://auth.example.com")
//!     .audience("https://api.example.com")
//!     .build()
//!     .await?;
//! let claims: token_verifier::Claims = verifier.verify("eyJ…").await?;
//! println!("token of {}", claims.sub);
//! # Ok(()) }
//! ```
//!
//! What it guarantees: the algorithm comes from the key (`none` and HMAC are never
//! accepted), `typ` is `at+jwt`, `iss` is exact, `aud` contains a configured audience,
//! `exp`/`nbf`/`iat` hold within the leeway. Key rotation is followed without restarts and
//! without letting a flood of random `kid`s hammer the issuer.

#[cfg(feature = "axum")]
pub mod axum;
mod claims;
mod clock;
mod error;
mod jwks;
mod remote;

pub use claims::{Audience, Claims};
pub use clock::CacheClock;
pub use error::VerifyError;
pub use jwks::{parse_jwks, KeyMap, VerifyingKey};
pub use remote::{JwksOptions, RemoteJwks};

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, Validation};
use serde::de::DeserializeOwned;

/// Verifies tokens. Cheap to clone; clones share the key cache.
#[derive(Clone)]
pub struct Verifier {
    keys: RemoteJwks,
    rules: Arc<Rules>,
}

struct Rules {
    types: Vec<String>,
    leeway: u64,
    max_token_bytes: usize,
    /// One prepared validation per algorithm a key may pin.
    validations: HashMap<Algorithm, Validation>,
}

/// Why a verifier could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    #[error("at least one audience is required")]
    NoAudience,
    #[error("discovery at {url} failed: {reason}")]
    Discovery { url: String, reason: String },
    #[error("HTTP client: {0}")]
    Client(String),
    #[error("invalid options: {0}")]
    Options(String),
}

pub struct VerifierBuilder {
    issuer: String,
    jwks_url: Option<String>,
    audiences: Vec<String>,
    types: Vec<String>,
    leeway: Duration,
    max_token_bytes: usize,
    jwks: JwksOptions,
    client: Option<reqwest::Client>,
    clock: CacheClock,
}

impl Verifier {
    /// Starts a verifier for tokens whose `iss` is exactly `issuer`.
    pub fn builder(issuer: impl Into<String>) -> VerifierBuilder {
        VerifierBuilder {
            issuer: issuer.into(),
            jwks_url: None,
            audiences: Vec::new(),
            types: vec!["at+jwt".into(), "application/at+jwt".into()],
            leeway: Duration::from_secs(60),
            max_token_bytes: 16 * 1024,
            jwks: JwksOptions::default(),
            client: None,
            clock: CacheClock::system(),
        }
    }

    /// The key set this verifier reads.
    pub fn keys(&self) -> &RemoteJwks {
        &self.keys
    }

    /// Fetches the issuer's keys now, so that a misconfiguration shows at start rather than
    /// as refused tokens.
    pub async fn prefetch(&self) -> Result<(), VerifyError> {
        self.keys.prefetch().await
    }

    /// Identifies this verifier (and its clones), so claims verified by one are never taken
    /// for another's.
    #[cfg(feature = "axum")]
    fn id(&self) -> usize {
        Arc::as_ptr(&self.rules) as usize
    }

    /// Verifies a compact JWS access token and returns its claims.
    pub async fn verify<T: DeserializeOwned>(&self, token: &str) -> Result<Claims<T>, VerifyError> {
        let rules = &self.rules;
        if token.len() > rules.max_token_bytes {
            return Err(VerifyError::TooLarge(rules.max_token_bytes));
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Malformed)?;
        if header.crit.is_some() {
            return Err(VerifyError::UnsupportedCritical);
        }
        let typ_ok = header
            .typ
            .as_deref()
            .is_some_and(|t| rules.types.iter().any(|ok| ok.eq_ignore_ascii_case(t)));
        if !typ_ok {
            return Err(VerifyError::WrongType(header.typ));
        }
        let kid = header.kid.as_deref().ok_or(VerifyError::MissingKid)?;
        let key = self.keys.key(kid).await?;
        if header.alg != key.alg {
            return Err(VerifyError::AlgorithmMismatch {
                expected: key.alg,
                got: header.alg,
            });
        }
        let validation = rules.validations.get(&key.alg).ok_or(VerifyError::Malformed)?;
        let claims = jsonwebtoken::decode::<Claims<T>>(token, &key.key, validation)?.claims;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()) as i64;
        if claims.iat > now.saturating_add(rules.leeway as i64) {
            return Err(VerifyError::IssuedInFuture);
        }
        Ok(claims)
    }
}

impl VerifierBuilder {
    /// An accepted `aud`; a token must carry at least one of these.
    pub fn audience(mut self, aud: impl Into<String>) -> Self {
        self.audiences.push(aud.into());
        self
    }

    /// Skip discovery and read the keys from this URL.
    pub fn jwks_url(mut self, url: impl Into<String>) -> Self {
        self.jwks_url = Some(url.into());
        self
    }

    /// The accepted `typ` header values (default `at+jwt`, `application/at+jwt`).
    pub fn token_types<I: IntoIterator<Item = S>, S: Into<String>>(mut self, types: I) -> Self {
        self.types = types.into_iter().map(Into::into).collect();
        self
    }

    /// Clock skew tolerated for `exp`, `nbf` and `iat` (default 60 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Longer tokens are refused unparsed (default 16 KiB).
    pub fn max_token_bytes(mut self, n: usize) -> Self {
        self.max_token_bytes = n;
        self
    }

    pub fn jwks_options(mut self, options: JwksOptions) -> Self {
        self.jwks = options;
        self
    }

    /// Read the key cache's ages from this clock (tests move an adjustable one forward).
    pub fn cache_clock(mut self, clock: CacheClock) -> Self {
        self.clock = clock;
        self
    }

    /// Use this HTTP client (e.g. with a proxy or custom roots) for discovery and keys.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.client = Some(client);
        self
    }

    /// Finds the JWKS (discovery, unless a URL was given) and returns a verifier. Keys are
    /// fetched on first use.
    pub async fn build(self) -> Result<Verifier, BuildError> {
        if self.audiences.is_empty() {
            return Err(BuildError::NoAudience);
        }
        self.jwks.validate().map_err(BuildError::Options)?;
        if self.types.is_empty() {
            return Err(BuildError::Options(
                "at least one accepted typ is required".into(),
            ));
        }
        if self.leeway > Duration::from_secs(3600) {
            return Err(BuildError::Options("leeway is longer than an hour".into()));
        }
        let client = match self.client {
            Some(c) => c,
            None => reqwest::Client::builder()
                .connect_timeout(self.jwks.connect_timeout)
                .timeout(self.jwks.timeout)
                .build()
                .map_err(|e| BuildError::Client(e.to_string()))?,
        };
        let issuer = self.issuer.trim_end_matches('/').to_owned();
        let jwks_url = match self.jwks_url {
            Some(url) => url,
            None => discover(&client, &self.issuer, self.jwks.max_response_bytes).await?,
        };
        let leeway = self.leeway.as_secs();
        let validations = [
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::PS384,
            Algorithm::PS512,
            Algorithm::ES256,
            Algorithm::ES384,
            Algorithm::EdDSA,
        ]
        .into_iter()
        .map(|alg| {
            let mut v = Validation::new(alg);
            v.leeway = leeway;
            v.validate_nbf = true;
            v.set_issuer(&[&self.issuer]);
            v.set_audience(&self.audiences);
            v.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
            (alg, v)
        })
        .collect();
        tracing::debug!(%issuer, %jwks_url, "token verifier ready");
        Ok(Verifier {
            keys: RemoteJwks::with_clock(jwks_url, client, self.jwks, self.clock),
            rules: Arc::new(Rules {
                types: self.types,
                leeway,
                max_token_bytes: self.max_token_bytes,
                validations,
            }),
        })
    }
}

/// `jwks_uri` from the issuer's metadata, whose `issuer` must match exactly.
async fn discover(client: &reqwest::Client, issuer: &str, max_bytes: usize) -> Result<String, BuildError> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let fail = |reason: String| BuildError::Discovery {
        url: url.clone(),
        reason,
    };
    let response = client.get(&url).send().await.map_err(|e| fail(e.to_string()))?;
    if !response.status().is_success() {
        return Err(fail(format!("HTTP {}", response.status())));
    }
    let body = remote::read_capped(response, max_bytes).await.map_err(fail)?;
    #[derive(serde::Deserialize)]
    struct Metadata {
        issuer: String,
        jwks_uri: String,
    }
    let metadata: Metadata = serde_json::from_slice(&body).map_err(|e| fail(e.to_string()))?;
    if metadata.issuer != issuer {
        return Err(fail(format!("metadata names issuer {:?}", metadata.issuer)));
    }
    Ok(metadata.jwks_uri)
}
