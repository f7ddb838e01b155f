//! Times the primitives under token-issuer's hot paths, one at a time on one core, with
//! nothing around them: RSA-2048 and Ed25519 signatures, an RS256 verification, and an
//! argon2id verification at the given parameters. Prints one JSON object of milliseconds
//! per operation, which `scripts/bench` sets beside each workload; `--only NAME` times just
//! the primitive of that field.
//!
//!     crypto-floor [--only NAME] [ARGON2_MEMORY_KIB ARGON2_ITERATIONS ARGON2_PARALLELISM]

use std::hint::black_box;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, Ed25519KeyPair, KeyPair as _, ParsedPublicKey, RsaKeyPair};

/// A signing input the size of an access token's header and claims.
const MESSAGE: &[u8; 320] = &[b'x'; 320];
const RUN_FOR: Duration = Duration::from_millis(1000);

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

/// The primitives by the names of their JSON fields.
const PRIMITIVES: [&str; 4] = ["rs256_sign", "rs256_verify", "ed25519_sign", "argon2id_verify"];
const USAGE: &str =
    "usage: crypto-floor [--only NAME] [ARGON2_MEMORY_KIB ARGON2_ITERATIONS ARGON2_PARALLELISM]";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    // `--only NAME` times one primitive, quickly enough for scripts/bench to read it right
    // before and after the load it is set beside (this machine's speed drifts within a run).
    let only = match args.iter().position(|a| a == "--only") {
        Some(i) if i + 1 < args.len() => {
            let name = args.remove(i + 1);
            args.remove(i);
            if !PRIMITIVES.contains(&name.as_str()) {
                return Err(format!("--only takes one of {}", PRIMITIVES.join(", ")).into());
            }
            Some(name)
        }
        Some(_) => return Err(USAGE.into()),
        None => None,
    };
    let timed = |name: &str| only.as_deref().is_none_or(|o| o == name);
    let args: Vec<u32> = args.iter().map(|a| a.parse()).collect::<Result<_, _>>()?;
    // token-issuer's defaults (OWASP): 19 MiB, 2 passes, 1 lane.
    let (memory, iterations, lanes) = match args.as_slice() {
        [] => (19456, 2, 1),
        [m, i, p] => (*m, *i, *p),
        _ => return Err(USAGE.into()),
    };
    let mut fields = Vec::new();

    if timed("rs256_sign") || timed("rs256_verify") {
        let rng = SystemRandom::new();
        let rsa = RsaKeyPair::generate(KeySize::Rsa2048)?;
        let mut rsa_signature = vec![0; rsa.public_modulus_len()];
        let mut sign = || {
            rsa.sign(
                &signature::RSA_PKCS1_SHA256,
                &rng,
                black_box(MESSAGE),
                &mut rsa_signature,
            )
            .expect("RSA signing with a key just generated");
        };
        if timed("rs256_sign") {
            fields.push(format!("\"rs256_sign_ms\": {:.4}", time(&mut sign)));
        } else {
            sign();
        }
        if timed("rs256_verify") {
            // Parsed once, as token-issuer keeps its keys.
            let public =
                ParsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, rsa.public_key().as_ref())?;
            let rs256_verify = time(|| {
                public
                    .verify_sig(black_box(MESSAGE), &rsa_signature)
                    .expect("a signature just made verifies");
            });
            fields.push(format!("\"rs256_verify_ms\": {rs256_verify:.4}"));
        }
    }

    if timed("ed25519_sign") {
        let ed25519 = Ed25519KeyPair::generate()?;
        let ed25519_sign = time(|| {
            black_box(ed25519.sign(black_box(MESSAGE)));
        });
        fields.push(format!("\"ed25519_sign_ms\": {ed25519_sign:.4}"));
    }

    if timed("argon2id_verify") {
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
        fields.push(format!("\"argon2id_verify_ms\": {argon2_verify:.3}"));
        fields.push(format!(
            "\"argon2\": \"{memory} KiB, {iterations} passes, {lanes} lane(s)\""
        ));
    }

    println!("{{{}}}", fields.join(", "));
    Ok(())
}
