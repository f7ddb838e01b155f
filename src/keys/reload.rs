//! Hot reload: running instances re-read the key source on an interval and on request
//! (SIGHUP), and swap the parsed keyset in one atomic store — the signing path never locks.
//! A source that fails or holds an invalid document leaves the last good keyset in place.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;
use time::OffsetDateTime;
use tokio::sync::Notify;

use super::lifecycle::Transition;
use super::source::{KeySource, Loaded};
use super::{Alg, KeyError, KeySet};
use crate::clock::Clock;
use crate::config::Mode;

/// What `/readyz` and `/metrics` report about the keyset.
#[derive(Debug, Clone)]
pub struct KeysetStatus {
    /// When the source last answered with a valid keyset (changed or not).
    pub confirmed_at: OffsetDateTime,
    /// Why the latest reload failed; `None` once one succeeds.
    pub last_error: Option<String>,
}

impl KeysetStatus {
    /// Seconds since the source last confirmed the keyset.
    pub fn age_seconds(&self, now: OffsetDateTime) -> i64 {
        (now - self.confirmed_at).whole_seconds().max(0)
    }
}

pub struct Reloader {
    source: KeySource,
    alg: Alg,
    keys: Arc<ArcSwap<KeySet>>,
    /// The document behind `keys`; the async lock also keeps reloads from overlapping.
    current: tokio::sync::Mutex<Loaded>,
    status: Mutex<KeysetStatus>,
    wake: Notify,
    clock: Clock,
}

impl Reloader {
    /// Loads the keyset a server starts with (see [`KeySource::load_for_serving`]).
    pub async fn start(source: KeySource, mode: Mode, alg: Alg, clock: Clock) -> Result<Arc<Self>, KeyError> {
        let (set, loaded) = source.load_for_serving(mode, alg, clock.now()).await?;
        for key in &loaded.doc.keys {
            tracing::info!(target: "audit", event = "key_loaded", kid = %key.kid, alg = %key.alg, state = %key.state, source = %source.name());
        }
        Ok(Arc::new(Self {
            source,
            alg,
            keys: Arc::new(ArcSwap::from_pointee(set)),
            current: tokio::sync::Mutex::new(loaded),
            status: Mutex::new(KeysetStatus {
                confirmed_at: clock.now(),
                last_error: None,
            }),
            wake: Notify::new(),
            clock,
        }))
    }

    /// The keyset every request reads.
    pub fn keys(&self) -> &Arc<ArcSwap<KeySet>> {
        &self.keys
    }

    pub fn status(&self) -> KeysetStatus {
        self.status.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Asks the background task to reload now (SIGHUP).
    pub fn request_reload(&self) {
        self.wake.notify_one();
    }

    /// Re-reads the source every `interval` and whenever a reload is requested.
    pub fn spawn(self: &Arc<Self>, interval: Duration) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = tokio::time::sleep(interval) => {},
                    () = this.wake.notified() => {},
                }
                // Failures are recorded and logged inside; the next round tries again.
                let _ = this.reload().await;
            }
        })
    }

    /// One reload. On success the new keyset is live; on failure the last good one stays.
    pub async fn reload(&self) -> Result<(), KeyError> {
        let mut current = self.current.lock().await;
        let (status, result) = match self.read_changed(&current).await {
            Ok(None) => (
                KeysetStatus {
                    confirmed_at: self.clock.now(),
                    last_error: None,
                },
                Ok(()),
            ),
            Ok(Some((set, loaded))) => {
                for change in Transition::between(&current.doc, &loaded.doc) {
                    change.audit("key_state_changed", "reload");
                }
                self.keys.store(Arc::new(set));
                *current = loaded;
                tracing::info!(source = %self.source.name(), "keyset reloaded");
                metrics::counter!("issuer_keyset_reloads_total", "result" => "changed").increment(1);
                (
                    KeysetStatus {
                        confirmed_at: self.clock.now(),
                        last_error: None,
                    },
                    Ok(()),
                )
            }
            Err(e) => {
                tracing::error!(source = %self.source.name(), error = %e, "keyset reload failed; keeping the last good keyset");
                metrics::counter!("issuer_keyset_reloads_total", "result" => "failed").increment(1);
                let status = KeysetStatus {
                    confirmed_at: self.status().confirmed_at,
                    last_error: Some(e.to_string()),
                };
                (status, Err(e))
            }
        };
        *self.status.lock().unwrap_or_else(PoisonError::into_inner) = status;
        result
    }

    /// The new keyset, or `None` when the source still holds the version already loaded.
    async fn read_changed(&self, current: &Loaded) -> Result<Option<(KeySet, Loaded)>, KeyError> {
        let loaded = self.source.load().await?;
        if loaded.version.is_some() && loaded.version == current.version {
            return Ok(None);
        }
        let set = self.source.serving_keyset(loaded.doc.clone(), self.alg).await?;
        Ok(Some((set, loaded)))
    }
}
