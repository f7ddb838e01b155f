//! The keyset document, as stored in `keyset.json` or in a secret's value.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::{Alg, KeyError};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysetDocument {
    pub keys: Vec<KeyRecord>,
}

impl KeysetDocument {
    pub fn from_json(bytes: &[u8]) -> Result<Self, KeyError> {
        serde_json::from_slice(bytes).map_err(|e| KeyError::Document(e.to_string()))
    }

    pub fn to_json(&self) -> Zeroizing<String> {
        // Serialising plain structs of strings cannot fail.
        Zeroizing::new(serde_json::to_string_pretty(self).unwrap_or_default())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    /// Published, not yet signing.
    Pending,
    /// Signing; one per algorithm.
    Active,
    /// Published until every token it signed has expired.
    Retired,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRecord {
    pub kid: String,
    pub alg: Alg,
    pub state: KeyState,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub activated_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub retired_at: Option<OffsetDateTime>,
    pub private_key_pem: PrivateKeyPem,
}

/// PKCS#8 PEM text of a private key: wiped on drop, never printed.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PrivateKeyPem(Zeroizing<String>);

impl PrivateKeyPem {
    pub fn new(pem: String) -> Self {
        Self(Zeroizing::new(pem))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PrivateKeyPem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKeyPem(***)")
    }
}
