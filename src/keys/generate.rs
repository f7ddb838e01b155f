//! New key pairs. CPU-heavy (RSA: ~0.2 s): call from a blocking thread.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::Ed25519KeyPair;
use pkcs8::EncodePrivateKey as _;
use pkcs8::LineEnding;
use time::OffsetDateTime;

use super::signing::thumbprint_of;
use super::{Alg, KeyError, KeyRecord, KeyState, PrivateKeyPem};

pub const RSA_BITS: [usize; 3] = [2048, 3072, 4096];

/// A fresh key of `alg` in `state`, its `kid` the thumbprint of its public key.
pub fn generate_record(
    alg: Alg,
    rsa_bits: usize,
    state: KeyState,
    now: OffsetDateTime,
) -> Result<KeyRecord, KeyError> {
    let pem = match alg {
        // The rsa crate only generates and encodes here; signing uses aws-lc-rs.
        Alg::Rs256 => {
            if !RSA_BITS.contains(&rsa_bits) {
                return Err(KeyError::Generate(format!(
                    "RSA keys are 2048, 3072 or 4096 bits, not {rsa_bits}"
                )));
            }
            let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, rsa_bits)
                .map_err(|e| KeyError::Generate(e.to_string()))?;
            key.to_pkcs8_pem(LineEnding::LF)
                .map_err(|e| KeyError::Generate(e.to_string()))?
        }
        Alg::EdDsa => {
            let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                .map_err(|_| KeyError::Generate("Ed25519 generation failed".into()))?;
            pkcs8::SecretDocument::try_from(doc.as_ref())
                .and_then(|d| d.to_pem("PRIVATE KEY", LineEnding::LF))
                .map_err(|e| KeyError::Generate(e.to_string()))?
        }
    };
    let private_key_pem = PrivateKeyPem::new(pem.to_string());
    let kid = thumbprint_of(alg, private_key_pem.expose())?;
    Ok(KeyRecord {
        kid,
        alg,
        state,
        created_at: now,
        activated_at: (state == KeyState::Active).then_some(now),
        retired_at: None,
        private_key_pem,
    })
}

/// The modulus size of an RSA key, so that a rotation's next key matches the current one.
pub fn rsa_bits(pem: &str) -> Option<usize> {
    use pkcs8::DecodePrivateKey as _;
    use rsa::traits::PublicKeyParts as _;
    rsa::RsaPrivateKey::from_pkcs8_pem(pem).ok().map(|k| k.size() * 8)
}
