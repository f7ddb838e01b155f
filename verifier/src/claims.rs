//! Typed claims of an access token, with room for custom ones.

use serde::{Deserialize, Serialize};

/// `aud` as a single string or a list (RFC 7519 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    pub fn contains(&self, aud: &str) -> bool {
        match self {
            Audience::One(a) => a == aud,
            Audience::Many(list) => list.iter().any(|a| a == aud),
        }
    }
}

/// The registered claims of an RFC 9068 access token plus custom claims `T`
/// (by default every other member, as a JSON map).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims<T = serde_json::Map<String, serde_json::Value>> {
    pub iss: String,
    pub sub: String,
    pub aud: Audience,
    pub exp: i64,
    pub iat: i64,
    #[serde(default)]
    pub nbf: Option<i64>,
    /// RFC 9068 §2.2 requires both.
    pub jti: String,
    pub client_id: String,
    #[serde(default)]
    pub scope: Option<String>,
    /// The issuer's session the token belongs to (a user's token); absent for a service's.
    #[serde(default)]
    pub sid: Option<String>,
    #[serde(flatten)]
    pub custom: T,
}

impl<T> Claims<T> {
    /// The space-separated scopes of the token (RFC 8693 §4.2).
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.as_deref().unwrap_or_default().split_ascii_whitespace()
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes().any(|s| s == scope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audience_and_scopes() {
        let claims: Claims = serde_json::from_value(serde_json::json!({
                        "iss": "i", "sub": "s", "aud": ["a", "b"], "exp": 2, "iat": 1, "jti": "j", "client_id": "c",
            "scope": "read  write", "tenant": "t1"
        }))
        .expect("claims");
        assert!(claims.aud.contains("b") && !claims.aud.contains("c"));
        assert!(claims.has_scope("write") && !claims.has_scope("wr"));
        assert_eq!(claims.custom["tenant"], "t1");
    }
}
