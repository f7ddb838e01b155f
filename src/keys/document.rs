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
            let path = if path.len() <= 128
                && path
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-.[]".contains(&b))
            {
                path
            } else {
                "a field".to_owned()
            };
            let inner = e.inner();
            let message = inner.to_string();
            let what = match inner.classify() {
                serde_json::error::Category::Data
                    if ["missing field", "unknown field", "duplicate field"]
                        .iter()
                        .any(|p| message.starts_with(p)) =>
                {
                    // The field is named only when it looks like a field name: a mangled
                    // document can turn key material into one (found by fuzzing).
                    let kind = message.split(" `").next().unwrap_or_default();
                    match message.split('`').nth(1).filter(|name| looks_like_a_name(name)) {
                        Some(name) => format!("{kind} `{name}`"),
                        None => kind.to_owned(),
                    }
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
                    .filter(|kid| looks_like_a_name(kid))
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

/// Short, and only letters, digits, `_` and `-`: a field name or a thumbprint `kid`, safe to
/// quote in a log line.
fn looks_like_a_name(text: &str) -> bool {
    (1..=64).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
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
        // A mangled document that turns key material into a field name or a kid (found by
        // `cargo fuzz`): neither is quoted.
        let mangled = r#"{"keys": [{"kid": "-----BEGIN PRIVATE KEY-----", "alg": "EdDSA",
            "state": "active", "created_at": "2026-01-01T00:00:00Z",
            "private_kMC4CAQAwBQYDK2VwBCIEI PRIVATE KEY": "x"}]}"#;
        let err = KeysetDocument::from_json(mangled.as_bytes())
            .expect_err("unknown field")
            .to_string();
        assert!(
            err.contains("unknown field") && !err.contains("PRIVATE KEY") && !err.contains("MC4C"),
            "{err}"
        );
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
