//! Password hashing with argon2id, run on blocking threads so it never stalls the runtime.

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use std::sync::Arc;

use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use unicode_normalization::UnicodeNormalization as _;
use zeroize::Zeroizing;

use super::AccountError;

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
}

impl Passwords {
    pub async fn new(settings: Argon2Settings) -> Result<Self, AccountError> {
        let params = argon2_params(settings).map_err(|e| AccountError::Internal(e.to_string()))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let mut passwords = Self {
            argon2,
            params,
            permits: Arc::new(Semaphore::new(cores.saturating_sub(1).max(1))),
            waiting: Arc::new(AtomicUsize::new(0)),
            max_waiting: cores * 32,
            dummy_hash: String::new(),
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

    pub async fn hash(&self, password: Password) -> Result<String, AccountError> {
        let argon2 = self.argon2.clone();
        let permit = self.permit().await?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let salt = SaltString::generate(&mut rand::rngs::OsRng);
            argon2
                .hash_password(password.expose().as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| AccountError::Internal(format!("argon2: {e}")))
        })
        .await
        .map_err(|e| AccountError::Internal(e.to_string()))?
    }

    /// Verifies against `stored`, or against a dummy hash when there is none.
    pub async fn verify(
        &self,
        password: Password,
        stored: Option<String>,
    ) -> Result<Verification, AccountError> {
        let real = stored.is_some();
        let stored = stored.unwrap_or_else(|| self.dummy_hash.clone());
        let argon2 = self.argon2.clone();
        let params = self.params.clone();
        let permit = self.permit().await?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let hash = PasswordHash::new(&stored)
                .map_err(|e| AccountError::Internal(format!("stored hash: {e}")))?;
            let matches = argon2
                .verify_password(password.expose().as_bytes(), &hash)
                .is_ok();
            let same_params = hash.algorithm == Algorithm::Argon2id.ident()
                && Params::try_from(&hash).is_ok_and(|p| {
                    p.m_cost() == params.m_cost()
                        && p.t_cost() == params.t_cost()
                        && p.p_cost() == params.p_cost()
                });
            Ok(Verification {
                matches: matches && real,
                needs_rehash: !same_params,
            })
        })
        .await
        .map_err(|e| AccountError::Internal(e.to_string()))?
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
