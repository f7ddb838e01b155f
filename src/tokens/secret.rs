//! Random 256-bit secrets handed out once — refresh tokens, client secrets: base64url text,
//! wiped from memory on drop, never printed, stored only as their SHA-256.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use rand::RngCore as _;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// Not `Serialize`: a response writes it out by `expose`, on purpose.
#[derive(Clone)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(bytes.as_mut());
        Self(Zeroizing::new(B64.encode(bytes.as_ref())))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The stored form of a presented secret. 256 random bits need no salt or stretching,
    /// which keeps refreshes and `client_credentials` fast.
    pub fn digest(presented: &str) -> [u8; 32] {
        Sha256::digest(presented.as_bytes()).into()
    }

    /// [`Secret::digest`] as the text the database keeps (base64url).
    pub fn stored_form(presented: &str) -> String {
        B64.encode(Self::digest(presented))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_carry_256_bits_hash_deterministically_and_never_print() {
        let a = Secret::generate();
        let b = Secret::generate();
        assert_eq!(B64.decode(a.expose()).expect("base64url").len(), 32);
        assert_ne!(a.expose(), b.expose());
        assert_eq!(Secret::digest(a.expose()), Secret::digest(a.expose()));
        assert_ne!(Secret::digest(a.expose()), Secret::digest(b.expose()));
        assert_eq!(format!("{a:?}"), "Secret(***)");
    }
}
