//! Password hashing with argon2id, run on blocking threads so it never stalls the runtime.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use argon2::password_hash::{Output, ParamsString, PasswordHash, Salt, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use unicode_normalization::UnicodeNormalization as _;
use zeroize::Zeroizing;

use super::AccountError;
use crate::sync::lock;

/// Cost of argon2id password hashing (`ISSUER_ARGON2_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Settings {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

pub fn argon2_params(s: Argon2Settings) -> Result<Params, argon2::Error> {
    Params::new(s.memory_kib, s.iterations, s.parallelism, None)
}

/// A password as the user typed it, NFKC-normalised (NIST SP 800-63B §5.1.1.2) so that the
/// same characters typed on different keyboards hash alike. Wiped on drop, never printed.
pub struct Password(Zeroizing<String>);

impl Password {
    pub fn new(raw: &str) -> Self {
        Self(Zeroizing::new(raw.nfkc().collect()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

pub struct Verification {
    pub matches: bool,
    /// The stored hash uses other parameters than the configured ones.
    pub needs_rehash: bool,
}

#[derive(Clone)]
pub struct Passwords {
    argon2: Argon2<'static>,
    params: Params,
    /// Bounds concurrent hashing (each takes `m` KiB and a core): one core is always left to
    /// the runtime, so a login flood queues here instead of starving JWKS and token requests
    /// or exhausting memory; a request that times out while queued starts no hash at all.
    permits: Arc<Semaphore>,
    /// Hashes waiting for a permit, and how many may wait: past that a login flood is
    /// refused at once (503) rather than holding request slots that JWKS and token requests
    /// need.
    waiting: Arc<AtomicUsize>,
    max_waiting: usize,
    /// Verified against when the email is unknown, so both cases cost the same.
    dummy_hash: String,
    spare: Arc<SpareBlocks>,
}

/// Argon2's working memory (`m` KiB a hash), kept for the next hash only while another one
/// waits for a permit: under a login flood it is reused instead of mapped, zeroed and
/// faulted in again for every hash (over half of a login's samples here); at rest it goes
/// back to the system. At most one set per permit is kept.
struct SpareBlocks {
    sets: Mutex<Vec<Vec<Block>>>,
    max: usize,
}

impl SpareBlocks {
    fn take(&self, count: usize) -> Vec<Block> {
        let spare = lock(&self.sets).pop();
        spare
            .filter(|blocks| blocks.len() == count)
            .unwrap_or_else(|| vec![Block::default(); count])
    }

    fn give_back(&self, blocks: Vec<Block>, wanted: bool) {
        let mut sets = lock(&self.sets);
        if wanted && sets.len() < self.max {
            sets.push(blocks);
        }
    }
}

impl Passwords {
    pub async fn new(settings: Argon2Settings) -> Result<Self, AccountError> {
        let params = argon2_params(settings).map_err(|e| AccountError::Internal(e.to_string()))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let permits = cores.saturating_sub(1).max(1);
        let mut passwords = Self {
            argon2,
            params,
            permits: Arc::new(Semaphore::new(permits)),
            waiting: Arc::new(AtomicUsize::new(0)),
            max_waiting: cores * 32,
            dummy_hash: String::new(),
            spare: Arc::new(SpareBlocks {
                sets: Mutex::new(Vec::new()),
                max: permits,
            }),
        };
        passwords.dummy_hash = passwords
            .hash(Password::new("dummy password for unknown users"))
            .await?;
        Ok(passwords)
    }

    async fn permit(&self) -> Result<OwnedSemaphorePermit, AccountError> {
        if let Ok(permit) = self.permits.clone().try_acquire_owned() {
            return Ok(permit);
        }
        // Counted out on drop, so a waiter whose request is cancelled leaves the queue too.
        struct Waiting<'a>(&'a AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::AcqRel);
            }
        }
        let waiting = Waiting(&self.waiting);
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_waiting {
            return Err(AccountError::Busy);
        }
        let permit = self.permits.clone().acquire_owned().await;
        drop(waiting);
        permit.map_err(|e| AccountError::Internal(e.to_string()))
    }

    /// The raw argon2 hash of `password` and `salt`, `length` bytes, computed on a blocking
    /// thread under a permit, in spare working memory when there is some.
    async fn raw_hash(
        &self,
        argon2: Argon2<'static>,
        password: Password,
        salt: RawSalt,
        length: usize,
    ) -> Result<Output, AccountError> {
        let permit = self.permit().await?;
        let spare = self.spare.clone();
        let waiting = self.waiting.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let mut blocks = spare.take(argon2.params().block_count());
            let hash = Output::init_with(length, |out| {
                Ok(argon2.hash_password_into_with_memory(
                    password.expose().as_bytes(),
                    salt.bytes(),
                    out,
                    &mut blocks,
                )?)
            });
            spare.give_back(blocks, waiting.load(Ordering::Acquire) > 0);
            hash.map_err(|e| AccountError::Internal(format!("argon2: {e}")))
        })
        .await
        .map_err(|e| AccountError::Internal(e.to_string()))?
    }

    /// A PHC string (`$argon2id$v=19$m=…`) of `password` with a new random salt.
    pub async fn hash(&self, password: Password) -> Result<String, AccountError> {
        let failed = |e: argon2::password_hash::Error| AccountError::Internal(format!("argon2: {e}"));
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        let raw = RawSalt::decode(salt.as_salt()).map_err(failed)?;
        let length = self.params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
        let hash = self.raw_hash(self.argon2.clone(), password, raw, length).await?;
        Ok(PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&self.params).map_err(failed)?,
            salt: Some(salt.as_salt()),
            hash: Some(hash),
        }
        .to_string())
    }

    /// Verifies against `stored`, or against a dummy hash when there is none, with the stored
    /// hash's own algorithm, version and parameters (as argon2's own verifier does).
    pub async fn verify(
        &self,
        password: Password,
        stored: Option<String>,
    ) -> Result<Verification, AccountError> {
        let real = stored.is_some();
        let stored = stored.unwrap_or_else(|| self.dummy_hash.clone());
        let unusable = |e: argon2::password_hash::Error| AccountError::Internal(format!("stored hash: {e}"));
        let hash = PasswordHash::new(&stored).map_err(unusable)?;
        let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
            return Err(AccountError::Internal("stored hash: no salt or no hash".into()));
        };
        let algorithm = Algorithm::try_from(hash.algorithm).map_err(unusable)?;
        let version = hash
            .version
            .map(Version::try_from)
            .transpose()
            .map_err(|e| unusable(e.into()))?;
        let params = Params::try_from(&hash).map_err(unusable)?;
        let needs_rehash = algorithm != Algorithm::Argon2id
            || params.m_cost() != self.params.m_cost()
            || params.t_cost() != self.params.t_cost()
            || params.p_cost() != self.params.p_cost();
        let argon2 = Argon2::new(algorithm, version.unwrap_or_default(), params);
        let salt = RawSalt::decode(salt).map_err(unusable)?;
        let computed = self.raw_hash(argon2, password, salt, expected.len()).await?;
        Ok(Verification {
            // `Output` compares in constant time.
            matches: computed == expected && real,
            needs_rehash,
        })
    }
}

/// A salt decoded from its PHC (B64) form, owned so it can travel to a blocking thread.
struct RawSalt {
    bytes: [u8; Salt::MAX_LENGTH],
    len: usize,
}

impl RawSalt {
    fn decode(salt: Salt<'_>) -> argon2::password_hash::Result<Self> {
        let mut bytes = [0; Salt::MAX_LENGTH];
        let len = salt.decode_b64(&mut bytes)?.len();
        Ok(Self { bytes, len })
    }

    fn bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHEAP: Argon2Settings = Argon2Settings {
        memory_kib: 1024,
        iterations: 1,
        parallelism: 1,
    };

    #[tokio::test]
    async fn a_flood_past_the_waiting_bound_is_refused_not_queued() {
        let mut passwords = Passwords::new(CHEAP).await.expect("params");
        passwords.permits = Arc::new(Semaphore::new(1));
        passwords.max_waiting = 2;
        let held = passwords
            .permits
            .clone()
            .try_acquire_owned()
            .expect("the one permit");
        let wait_in_line = |text: &'static str| {
            let passwords = passwords.clone();
            tokio::spawn(async move { passwords.hash(Password::new(text)).await })
        };
        let waits_until = |n: usize| {
            let waiting = passwords.waiting.clone();
            async move {
                while waiting.load(Ordering::Acquire) != n {
                    tokio::task::yield_now().await;
                }
            }
        };
        let first = wait_in_line("first in the queue");
        waits_until(1).await;
        let cancelled = wait_in_line("cancelled while waiting");
        waits_until(2).await;
        assert!(matches!(
            passwords.hash(Password::new("one too many")).await,
            Err(AccountError::Busy)
        ));
        cancelled.abort();
        let _ = cancelled.await;
        waits_until(1).await;
        let second = wait_in_line("takes the cancelled one's place");
        waits_until(2).await;
        drop(held);
        assert!(
            first.await.expect("task").is_ok(),
            "queued hashes run once a permit frees"
        );
        assert!(second.await.expect("task").is_ok());
        assert_eq!(passwords.waiting.load(Ordering::Acquire), 0);
    }

    #[tokio::test]
    async fn verifies_and_flags_old_parameters_for_rehash() {
        let cheap = Passwords::new(CHEAP).await.expect("params");
        let hash = cheap
            .hash(Password::new("correct horse battery"))
            .await
            .expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        let ok = cheap
            .verify(Password::new("correct horse battery"), Some(hash.clone()))
            .await
            .expect("verify");
        assert!(ok.matches && !ok.needs_rehash);
        let bad = cheap
            .verify(Password::new("wrong horse battery"), Some(hash.clone()))
            .await
            .expect("verify");
        assert!(!bad.matches);

        let stronger = Passwords::new(Argon2Settings {
            iterations: 2,
            ..CHEAP
        })
        .await
        .expect("params");
        let old = stronger
            .verify(Password::new("correct horse battery"), Some(hash))
            .await
            .expect("verify");
        assert!(old.matches && old.needs_rehash);
    }

    #[tokio::test]
    async fn hashes_interoperate_with_the_argon2_crate() {
        use argon2::{PasswordHasher as _, PasswordVerifier as _};
        let ours = Passwords::new(CHEAP).await.expect("params");
        let params = argon2_params(CHEAP).expect("params");
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        let theirs = |algorithm| {
            Argon2::new(algorithm, Version::V0x13, params.clone())
                .hash_password(b"correct horse battery", &salt)
                .expect("hash")
                .to_string()
        };
        let verify = |stored| ours.verify(Password::new("correct horse battery"), Some(stored));
        let verified = verify(theirs(Algorithm::Argon2id)).await.expect("verify");
        assert!(verified.matches && !verified.needs_rehash);

        let made = ours
            .hash(Password::new("correct horse battery"))
            .await
            .expect("hash");
        let parsed = PasswordHash::new(&made).expect("a PHC string");
        assert!(Argon2::default()
            .verify_password(b"correct horse battery", &parsed)
            .is_ok());
        assert!(Argon2::default()
            .verify_password(b"wrong horse battery", &parsed)
            .is_err());

        // Another variant of argon2 still verifies, and asks to be hashed again.
        let old = verify(theirs(Algorithm::Argon2i)).await.expect("verify");
        assert!(old.matches && old.needs_rehash);
    }

    #[test]
    fn working_memory_is_kept_only_for_a_waiting_hash_and_one_per_permit() {
        let spare = SpareBlocks {
            sets: Mutex::new(Vec::new()),
            max: 1,
        };
        spare.give_back(spare.take(8), false);
        assert!(lock(&spare.sets).is_empty(), "nobody waits: memory goes back");
        spare.give_back(spare.take(8), true);
        spare.give_back(vec![Block::default(); 8], true);
        assert_eq!(lock(&spare.sets).len(), 1, "never more than one set per permit");
        let kept = lock(&spare.sets)[0].as_ptr();
        let reused = spare.take(8);
        assert_eq!(reused.as_ptr(), kept, "the next hash reuses it");
        spare.give_back(reused, true);
        spare.give_back(spare.take(16), true);
        assert_eq!(
            lock(&spare.sets)[0].len(),
            16,
            "a set of another size is not reused"
        );
    }

    #[tokio::test]
    async fn unknown_users_never_match_the_dummy_hash() {
        let p = Passwords::new(CHEAP).await.expect("params");
        let v = p
            .verify(Password::new("dummy password for unknown users"), None)
            .await
            .expect("verify");
        assert!(!v.matches);
    }

    #[test]
    fn passwords_are_nfkc_normalised() {
        // "é" precomposed and as e + combining acute accent.
        assert_eq!(
            Password::new("caf\u{e9}").expose(),
            Password::new("cafe\u{301}").expose()
        );
    }
}
