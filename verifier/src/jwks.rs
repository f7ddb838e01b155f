//! A JWKS document turned into verification keys. Every key must say which algorithm it is
//! for, and its type must fit that algorithm; anything ambiguous is left out, never guessed.

use std::collections::HashMap;
use std::sync::Arc;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};

/// A key the issuer publishes, with the one algorithm it may verify.
pub struct VerifyingKey {
    pub alg: Algorithm,
    pub key: DecodingKey,
}

/// Keys by `kid`.
#[derive(Default, Clone)]
pub struct KeyMap(HashMap<String, Arc<VerifyingKey>>);

impl KeyMap {
    pub fn get(&self, kid: &str) -> Option<&Arc<VerifyingKey>> {
        self.0.get(kid)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Parses a JWKS body. Fails only when the body is not a JWK set at all; unusable keys
/// inside it are skipped (and logged) so one odd key cannot take the others down.
pub fn parse_jwks(body: &[u8]) -> Result<KeyMap, String> {
    #[derive(serde::Deserialize)]
    struct Set {
        keys: Vec<serde_json::Value>,
    }
    let set: Set = serde_json::from_slice(body).map_err(|e| format!("not a JWK set: {e}"))?;
    let mut keys: HashMap<String, Arc<VerifyingKey>> = HashMap::new();
    let mut duplicates = Vec::new();
    for value in set.keys {
        let Ok(jwk) = serde_json::from_value::<Jwk>(value) else {
            tracing::debug!("skipping a JWK of an unsupported shape");
            continue;
        };
        let Some(kid) = jwk.common.key_id.clone() else {
            tracing::debug!("skipping a JWK without kid");
            continue;
        };
        match verifying_key(&jwk) {
            Ok(key) => {
                if keys.insert(kid.clone(), Arc::new(key)).is_some() {
                    duplicates.push(kid);
                }
            }
            Err(reason) => tracing::warn!(%kid, reason, "skipping JWK"),
        }
    }
    // Two keys under one kid: which one signed is unknowable, so neither is trusted.
    for kid in duplicates {
        tracing::warn!(%kid, "JWKS lists kid twice; ignoring it");
        keys.remove(&kid);
    }
    Ok(KeyMap(keys))
}

fn verifying_key(jwk: &Jwk) -> Result<VerifyingKey, &'static str> {
    if matches!(
        jwk.common.public_key_use,
        Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
    ) {
        return Err("not a signing key");
    }
    let alg: Algorithm = jwk
        .common
        .key_algorithm
        .ok_or("no alg")?
        .to_string()
        .parse()
        .map_err(|_| "alg is not a signature algorithm")?;
    use Algorithm::*;
    let fits = match (&jwk.algorithm, alg) {
        (AlgorithmParameters::RSA(_), RS256 | RS384 | RS512 | PS256 | PS384 | PS512) => true,
        (AlgorithmParameters::EllipticCurve(p), ES256) => p.curve == EllipticCurve::P256,
        (AlgorithmParameters::EllipticCurve(p), ES384) => p.curve == EllipticCurve::P384,
        (AlgorithmParameters::OctetKeyPair(p), EdDSA) => p.curve == EllipticCurve::Ed25519,
        _ => false,
    };
    if !fits {
        return Err("key type does not fit its alg (or is symmetric)");
    }
    let key = DecodingKey::from_jwk(jwk).map_err(|_| "unusable public key")?;
    Ok(VerifyingKey { alg, key })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const N: &str = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";

    fn rsa(kid: &str, alg: Option<&str>) -> serde_json::Value {
        let mut k = json!({"kty": "RSA", "kid": kid, "n": N, "e": "AQAB", "use": "sig"});
        if let Some(alg) = alg {
            k["alg"] = json!(alg);
        }
        k
    }

    #[test]
    fn keeps_well_described_keys_only() {
        let body = json!({"keys": [
            rsa("good", Some("RS256")),
            rsa("no-alg", None),
            rsa("wrong-type", Some("EdDSA")),
            rsa("dup", Some("RS256")),
            rsa("dup", Some("RS256")),
            {"kty": "oct", "kid": "hmac", "alg": "HS256", "k": "c2VjcmV0"},
            {"kty": "RSA", "kid": "enc", "alg": "RSA-OAEP", "n": N, "e": "AQAB"},
            {"kty": "weird", "kid": "x"},
        ]});
        let keys = parse_jwks(body.to_string().as_bytes()).expect("a JWK set");
        assert_eq!(keys.len(), 1);
        assert_eq!(keys.get("good").expect("good").alg, Algorithm::RS256);
    }

    #[test]
    fn refuses_what_is_not_a_jwk_set() {
        assert!(parse_jwks(b"<html>").is_err());
        assert!(parse_jwks(b"{\"keys\": 5}").is_err());
        assert!(parse_jwks(b"{}").is_err());
    }
}
