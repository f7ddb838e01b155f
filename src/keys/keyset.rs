//! The loaded keyset: parsed signers by `kid`, the active one per algorithm, and the JWKS
//! body precomputed once per load.

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::HeaderValue;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use bytes::Bytes;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{Alg, KeyError, KeyState, KeysetDocument, SigningKey};

/// The JWKS response body and its strong ETag.
#[derive(Debug, Clone)]
pub struct Jwks {
    pub body: Bytes,
    pub etag: HeaderValue,
}

#[derive(Debug)]
pub struct KeySet {
    by_kid: HashMap<String, Arc<SigningKey>>,
    active: HashMap<Alg, Arc<SigningKey>>,
    jwks: Jwks,
}

impl KeySet {
    /// Parses every key of the document; any invalid key refuses the whole document.
    pub fn from_document(doc: &KeysetDocument) -> Result<Self, KeyError> {
        let mut by_kid = HashMap::new();
        let mut active: HashMap<Alg, Arc<SigningKey>> = HashMap::new();
        let mut published = Vec::with_capacity(doc.keys.len());
        for record in &doc.keys {
            let key = Arc::new(SigningKey::from_record(record)?);
            if by_kid.insert(key.kid().to_owned(), key.clone()).is_some() {
                return Err(KeyError::DuplicateKid(key.kid().to_owned()));
            }
            if key.state() == KeyState::Active {
                if let Some(other) = active.insert(key.alg(), key.clone()) {
                    return Err(KeyError::TwoActive(
                        key.alg(),
                        other.kid().to_owned(),
                        key.kid().to_owned(),
                    ));
                }
            }
            published.push(key.public_jwk().clone());
        }
        let body = Bytes::from(json!({ "keys": published }).to_string());
        // Quoted base64url: always a valid header value.
        let etag = HeaderValue::try_from(format!("\"{}\"", B64.encode(Sha256::digest(&body))))
            .unwrap_or(HeaderValue::from_static("\"\""));
        Ok(Self {
            by_kid,
            active,
            jwks: Jwks { body, etag },
        })
    }

    /// The key that signs new tokens of `alg`.
    pub fn active(&self, alg: Alg) -> Option<&Arc<SigningKey>> {
        self.active.get(&alg)
    }

    /// A key whose signatures are accepted: active or retired (a pending key has signed nothing).
    pub fn verifying_key(&self, kid: &str) -> Option<&Arc<SigningKey>> {
        self.by_kid
            .get(kid)
            .filter(|k| matches!(k.state(), KeyState::Active | KeyState::Retired))
    }

    pub fn jwks(&self) -> &Jwks {
        &self.jwks
    }

    /// How many keys the JWKS publishes.
    pub fn key_count(&self) -> usize {
        self.by_kid.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{generate_record, KeyRecord};
    use time::OffsetDateTime;

    fn record(alg: Alg, state: KeyState) -> KeyRecord {
        generate_record(alg, 2048, state, OffsetDateTime::now_utc()).expect("generate")
    }

    #[test]
    fn jwks_publishes_every_state_and_no_private_member() {
        let doc = KeysetDocument {
            keys: vec![
                record(Alg::Rs256, KeyState::Active),
                record(Alg::Rs256, KeyState::Pending),
                record(Alg::EdDsa, KeyState::Retired),
            ],
        };
        let set = KeySet::from_document(&doc).expect("valid");
        let jwks: serde_json::Value = serde_json::from_slice(&set.jwks().body).expect("json");
        let keys = jwks["keys"].as_array().expect("keys");
        assert_eq!(keys.len(), 3);
        for key in keys {
            for private in ["d", "p", "q", "dp", "dq", "qi"] {
                assert!(key.get(private).is_none(), "{private} published");
            }
            assert_eq!(key["use"], "sig");
            assert!(key["kid"].is_string() && key["alg"].is_string());
        }
        assert!(set.active(Alg::Rs256).is_some());
        assert!(set.active(Alg::EdDsa).is_none());
        assert!(
            set.verifying_key(&doc.keys[1].kid).is_none(),
            "pending keys sign nothing"
        );
        assert!(set.verifying_key(&doc.keys[2].kid).is_some());
    }

    #[test]
    fn refuses_two_active_keys_duplicates_and_wrong_kid() {
        let a = record(Alg::EdDsa, KeyState::Active);
        let b = record(Alg::EdDsa, KeyState::Active);
        let two = KeysetDocument {
            keys: vec![a.clone(), b],
        };
        assert!(matches!(
            KeySet::from_document(&two),
            Err(KeyError::TwoActive(Alg::EdDsa, _, _))
        ));
        let dup = KeysetDocument {
            keys: vec![a.clone(), a.clone()],
        };
        assert!(matches!(
            KeySet::from_document(&dup),
            Err(KeyError::DuplicateKid(_))
        ));
        let mut wrong = a.clone();
        wrong.kid = "not-the-thumbprint".into();
        let err = KeySet::from_document(&KeysetDocument { keys: vec![wrong] }).expect_err("mismatch");
        assert!(err.to_string().contains("not-the-thumbprint"));
        let mut mislabeled = a;
        mislabeled.alg = Alg::Rs256;
        assert!(KeySet::from_document(&KeysetDocument {
            keys: vec![mislabeled]
        })
        .is_err());
    }

    #[test]
    fn refuses_weak_rsa_keys() {
        use pkcs8::EncodePrivateKey as _;
        let weak = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 1024).expect("generate");
        let pem = weak.to_pkcs8_pem(pkcs8::LineEnding::LF).expect("pem");
        let mut rec = record(Alg::Rs256, KeyState::Active);
        rec.private_key_pem = crate::keys::PrivateKeyPem::new(pem.to_string());
        let err = KeySet::from_document(&KeysetDocument { keys: vec![rec] }).expect_err("weak");
        assert!(err.to_string().contains("weaker than 2048 bits"), "{err}");
    }
}
