//! Access tokens this instance has already verified. A resource server introspects the same
//! token on every call it receives, and the RS256 signature check is most of what an
//! introspection costs (BENCHMARKS.md, round 13). A token is found only by its exact bytes
//! and only under the keyset that verified it, so a forged or altered token is never found,
//! and nothing remembered outlives a change of keys (a revoked key's tokens fail at once);
//! the claims' rules (issuer, audience, times) are the caller's, on every call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use super::AccessClaims;
use crate::keys::KeySet;
use crate::sync::lock;

/// At most this many tokens are kept: about 4 MiB of tokens and claims.
const CAPACITY: usize = 4096;

#[derive(Default)]
pub(super) struct VerifiedTokens {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The keyset that verified every token here. Weak, so a retired keyset's keys are not
    /// kept alive, yet its address cannot be reused by a later keyset while this is held.
    keyset: Weak<KeySet>,
    claims: HashMap<Box<str>, AccessClaims>,
}

impl State {
    /// Whether `keyset` is the one that verified these tokens: the same value, not an equal one.
    fn verified_by(&self, keyset: &Arc<KeySet>) -> bool {
        std::ptr::eq(self.keyset.as_ptr(), Arc::as_ptr(keyset))
    }
}

impl VerifiedTokens {
    /// The claims of `token` if `keyset` verified it before.
    pub fn get(&self, keyset: &Arc<KeySet>, token: &str) -> Option<AccessClaims> {
        let state = lock(&self.state);
        if !state.verified_by(keyset) {
            return None;
        }
        state.claims.get(token).cloned()
    }

    /// Remembers that `keyset` verified `token`. When full, the expired tokens go; if the
    /// live ones still fill three quarters, all go: more live tokens in use than that are
    /// verified again, as if nothing were remembered, but memory stays bounded.
    pub fn insert(&self, keyset: &Arc<KeySet>, token: &str, claims: &AccessClaims, now: i64) {
        let mut state = lock(&self.state);
        if !state.verified_by(keyset) {
            // Replaced whole, so no panic can leave old tokens under the new keyset.
            *state = State {
                keyset: Arc::downgrade(keyset),
                claims: HashMap::new(),
            };
        }
        if state.claims.len() >= CAPACITY {
            state.claims.retain(|_, claims| claims.exp >= now);
            if state.claims.len() >= CAPACITY / 4 * 3 {
                state.claims.clear();
            }
        }
        state.claims.insert(token.into(), claims.clone());
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        lock(&self.state).claims.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeysetDocument;

    fn keyset() -> Arc<KeySet> {
        Arc::new(KeySet::from_document(&KeysetDocument { keys: vec![] }).expect("empty keyset"))
    }

    fn claims(exp: i64) -> AccessClaims {
        AccessClaims {
            iss: "https://issuer.example".into(),
            sub: "svc".into(),
            aud: "https://api.example".into(),
            exp,
            iat: exp - 900,
            nbf: None,
            jti: "jti".into(),
            client_id: "svc".into(),
            scope: None,
            sid: None,
        }
    }

    #[test]
    fn a_token_is_found_only_by_its_bytes_and_under_the_keyset_that_verified_it() {
        let (verified, keys, later_keys) = (VerifiedTokens::default(), keyset(), keyset());
        verified.insert(&keys, "a.b.c", &claims(100), 0);
        assert_eq!(verified.get(&keys, "a.b.c").map(|c| c.exp), Some(100));
        assert!(verified.get(&keys, "a.b.d").is_none());
        assert!(verified.get(&later_keys, "a.b.c").is_none());
        verified.insert(&later_keys, "x.y.z", &claims(100), 0);
        assert!(verified.get(&keys, "x.y.z").is_none());
        assert!(
            verified.get(&later_keys, "a.b.c").is_none(),
            "the old keyset's tokens went"
        );
        assert_eq!(verified.len(), 1);
    }

    #[test]
    fn when_full_the_expired_go_first_and_live_ones_that_fill_it_all_go() {
        let (verified, keys) = (VerifiedTokens::default(), keyset());
        for i in 0..CAPACITY {
            // Half expire at 10, half live on.
            let exp = if i % 2 == 0 { 10 } else { 1000 };
            verified.insert(&keys, &format!("token-{i}"), &claims(exp), 0);
        }
        assert_eq!(verified.len(), CAPACITY);
        verified.insert(&keys, "one-more", &claims(1000), 20);
        assert_eq!(verified.len(), CAPACITY / 2 + 1, "the expired half went");
        assert!(verified.get(&keys, "token-1").is_some(), "a live one stayed");
        assert!(verified.get(&keys, "token-0").is_none(), "an expired one went");

        // 2,047 more fill it with live tokens: the next one finds none expired, and starts over.
        for i in 0..CAPACITY {
            verified.insert(&keys, &format!("live-{i}"), &claims(1000), 20);
        }
        assert_eq!(verified.len(), CAPACITY / 2 + 1, "all went once, then 2,049 came");
        assert!(verified.get(&keys, "token-1").is_none());
        assert!(verified.get(&keys, "live-2046").is_none());
        assert!(verified.get(&keys, "live-2047").is_some());
    }
}
