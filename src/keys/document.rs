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
    /// Parses the document; an error names the offending key (by `kid` when it has one).
    /// serde's own messages quote the offending value, which may be key material, so only
    /// the place and the kind of the problem are reported.
    pub fn from_json(bytes: &[u8]) -> Result<Self, KeyError> {
        let de = &mut serde_json::Deserializer::from_slice(bytes);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.inner();
            let message = inner.to_string();
            let what = match inner.classify() {
                serde_json::error::Category::Data
                    if ["missing field", "unknown field", "duplicate field"]
                        .iter()
                        .any(|p| message.starts_with(p)) =>
                {
                    message.split(" at line").next().unwrap_or_default().to_owned()
                }
                serde_json::error::Category::Data => match path.rsplit('.').next() {
                    Some("alg") => "must be RS256 or EdDSA".to_owned(),
                    Some("state") => "must be pending, active or retired".to_owned(),
                    _ => "has the wrong type or value".to_owned(),
                },
                _ => "malformed JSON".to_owned(),
            };
            let kid = match e.path().iter().nth(1) {
                Some(serde_path_to_error::Segment::Seq { index }) => kid_at(bytes, *index)
                    .map(|kid| format!("key {kid}: "))
                    .unwrap_or_default(),
                _ => String::new(),
            };
            KeyError::Document(format!(
                "{kid}{path}: {what} (line {}, column {})",
                inner.line(),
                inner.column()
            ))
        })
    }

    pub fn to_json(&self) -> Zeroizing<String> {
        // Serialising plain structs of strings cannot fail.
        Zeroizing::new(serde_json::to_string_pretty(self).unwrap_or_default())
    }
}

/// The `kid` of the `index`th key, read without keeping any other field in memory.
fn kid_at(bytes: &[u8], index: usize) -> Option<String> {
    #[derive(Deserialize)]
    struct Kids {
        keys: Vec<Kid>,
    }
    #[derive(Deserialize)]
    struct Kid {
        kid: Option<String>,
    }
    let kids: Kids = serde_json::from_slice(bytes).ok()?;
    kids.keys.into_iter().nth(index)?.kid
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

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Pending => "pending",
            KeyState::Active => "active",
            KeyState::Retired => "retired",
        }
    }
}

impl fmt::Display for KeyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_key_is_named_in_the_error() {
        let doc = r#"{"keys": [{"kid": "k1", "alg": "HS256", "state": "active",
            "created_at": "2026-01-01T00:00:00Z", "private_key_pem": "x"}]}"#;
        let err = KeysetDocument::from_json(doc.as_bytes())
            .expect_err("HS256")
            .to_string();
        assert!(
            err.contains("key k1: keys[0].alg: must be RS256 or EdDSA"),
            "{err}"
        );
        // A PEM where a name belongs is reported by place, never quoted.
        let misplaced = doc.replace("\"HS256\"", "\"-----BEGIN PRIVATE KEY-----MIIEv\"");
        let err = KeysetDocument::from_json(misplaced.as_bytes())
            .expect_err("pem")
            .to_string();
        assert!(!err.contains("BEGIN") && !err.contains("MIIEv"), "{err}");
        let err = KeysetDocument::from_json(br#"{"keys": [{"kid": "k2"}]}"#)
            .expect_err("missing")
            .to_string();
        assert!(
            err.contains("key k2") && err.contains("missing field `alg`"),
            "{err}"
        );
        let err = KeysetDocument::from_json(b"{\"keys\": [")
            .expect_err("truncated")
            .to_string();
        assert!(err.starts_with("keyset document is not valid"), "{err}");
    }
}
