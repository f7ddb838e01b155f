//! Times the primitives under token-issuer's hot paths, one at a time on one core, with
//! nothing around them: RSA-2048 and Ed25519 signatures, an RS256 verification, and an
//! argon2id verification at the given parameters. Prints one JSON object of milliseconds
//! per operation, which `scripts/bench` sets beside each workload.
//!
//!     crypto-floor [ARGON2_MEMORY_KIB ARGON2_ITERATIONS ARGON2_PARALLELISM]

use std::hint::black_box;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, Ed25519KeyPair, KeyPair as _, ParsedPublicKey, RsaKeyPair};

/// A signing input the size of an access token's header and claims.
const MESSAGE: &[u8; 320] = &[b'x'; 320];
const RUN_FOR: Duration = Duration::from_millis(1500);

/// Milliseconds per call of `op`, over at least `RUN_FOR` after one warm-up call.
fn time(mut op: impl FnMut()) -> f64 {
    op();
    let start = Instant::now();
    let mut calls = 0u32;
    while start.elapsed() < RUN_FOR {
        op();
        calls += 1;
    }
    start.elapsed().as_secs_f64() * 1000.0 / f64::from(calls)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<u32> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    // token-issuer's defaults (OWASP): 19 MiB, 2 passes, 1 lane.
    let (memory, iterations, lanes) = match args.as_slice() {
        [] => (19456, 2, 1),
        [m, i, p] => (*m, *i, *p),
        _ => {
            return Err("usage: crypto-floor [ARGON2_MEMORY_KIB ARGON2_ITERATIONS ARGON2_PARALLELISM]".into())
        }
    };

    let rng = SystemRandom::new();
    let rsa = RsaKeyPair::generate(KeySize::Rsa2048)?;
    let mut rsa_signature = vec![0; rsa.public_modulus_len()];
    let rs256_sign = time(|| {
        rsa.sign(
            &signature::RSA_PKCS1_SHA256,
            &rng,
            black_box(MESSAGE),
            &mut rsa_signature,
        )
        .expect("RSA signing with a key just generated");
    });
    // Parsed once, as token-issuer keeps its keys.
    let public = ParsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, rsa.public_key().as_ref())?;
    let rs256_verify = time(|| {
        public
            .verify_sig(black_box(MESSAGE), &rsa_signature)
            .expect("a signature just made verifies");
    });

    let ed25519 = Ed25519KeyPair::generate()?;
    let ed25519_sign = time(|| {
        black_box(ed25519.sign(black_box(MESSAGE)));
    });

    let params = Params::new(memory, iterations, lanes, None).map_err(|e| e.to_string())?;
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let salt = SaltString::encode_b64(&[7; 16]).map_err(|e| e.to_string())?;
    let hash = argon2
        .hash_password(b"correct horse battery staple", &salt)
        .map_err(|e| e.to_string())?;
    let argon2_verify = time(|| {
        argon2
            .verify_password(black_box(b"correct horse battery staple"), &hash)
            .expect("the password just hashed verifies");
    });

    println!(
        "{{\"rs256_sign_ms\": {rs256_sign:.4}, \"rs256_verify_ms\": {rs256_verify:.4}, \
         \"ed25519_sign_ms\": {ed25519_sign:.4}, \"argon2id_verify_ms\": {argon2_verify:.3}, \
         \"argon2\": \"{memory} KiB, {iterations} passes, {lanes} lane(s)\"}}"
    );
    Ok(())
}
