//! Signing keys: the keyset document, keys parsed once into signers, the published JWKS,
//! and the sources the document is read from.

mod document;
mod generate;
mod keyset;
pub mod lifecycle;
mod reload;
mod signing;
pub mod source;

use std::fmt;
use std::str::FromStr;

pub use document::{KeyRecord, KeyState, KeysetDocument, PrivateKeyPem};
pub use generate::{generate_record, rsa_bits};
pub use keyset::{Jwks, KeySet};
pub use reload::{KeysetStatus, Reloader};
pub use signing::{thumbprint_of, JwsKind, SigningKey};

/// A signing algorithm this issuer supports. HMAC and `none` are not representable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Alg {
    #[serde(rename = "RS256")]
    Rs256,
    #[serde(rename = "EdDSA")]
    EdDsa,
}

impl Alg {
    pub const ALL: [Alg; 2] = [Alg::Rs256, Alg::EdDsa];

    pub fn as_str(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::EdDsa => "EdDSA",
        }
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Alg {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, KeyError> {
        match s {
            "RS256" => Ok(Alg::Rs256),
            "EdDSA" => Ok(Alg::EdDsa),
            other => Err(KeyError::UnknownAlgorithm(other.to_owned())),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("unknown signing algorithm {0:?} (RS256 or EdDSA)")]
    UnknownAlgorithm(String),
    #[error("key {kid}: {reason}")]
    InvalidKey { kid: String, reason: String },
    #[error("keyset has two active {0} keys: {1} and {2}")]
    TwoActive(Alg, String, String),
    #[error("keyset lists key {0} twice")]
    DuplicateKid(String),
    #[error("no active {alg} key in {source_name}")]
    NoActiveKey { alg: Alg, source_name: String },
    #[error(
        "no keyset in {source_name}: check the name, or create one with `token-issuer keys \
         generate --alg {alg}` (on Secrets Manager this creates the secret)"
    )]
    NoKeyset { alg: Alg, source_name: String },
    #[error("keyset document is not valid: {0}")]
    Document(String),
    #[error("key source {source_name}: {reason}")]
    Source { source_name: String, reason: String },
    #[error("key {0} is already in the keyset")]
    AlreadyPresent(String),
    #[error("no key {0} in the keyset")]
    UnknownKid(String),
    #[error(
        "no pending {0} key to promote; run `keys generate --alg {0}`, then rotate once it has \
         been published for the publication period"
    )]
    NoPendingKey(Alg),
    #[error("no pending {alg} key has been published long enough: {kid} can be promoted in {left}")]
    NotYetEligible { alg: Alg, kid: String, left: String },
    #[error(
        "key source {source_name}: the keyset changed since it was read ({reason}); nothing was \
         written, run the command again"
    )]
    Conflict { source_name: String, reason: String },
    #[error("cannot generate a key: {0}")]
    Generate(String),
    #[error("signing failed")]
    Sign,
}

impl KeyError {
    fn invalid(kid: &str, reason: impl Into<String>) -> Self {
        KeyError::InvalidKey {
            kid: kid.to_owned(),
            reason: reason.into(),
        }
    }
}
