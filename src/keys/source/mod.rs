//! Where the keyset document lives: `file:DIR` or `aws-secretsmanager:SECRET_ID`. Servers
//! only read; `keys` commands change it with [`KeySource::update`], which never loses a
//! concurrent writer's change.

mod aws;
mod file;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

pub use aws::{AwsSource, WriteError as AwsWriteError};
pub use file::FileSource;

use super::{generate_record, lifecycle, Alg, KeyError, KeySet, KeyState, KeysetDocument};
use crate::config::{KeySourceSpec, Mode};

#[derive(Debug, Clone)]
pub enum KeySource {
    File(FileSource),
    Aws(AwsSource),
}

/// A document as read, with the version it was read at: the secret's version id, or a
/// digest of the file. `None` when the source holds no keyset yet.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub doc: KeysetDocument,
    pub version: Option<String>,
}

impl KeySource {
    pub async fn from_spec(spec: &KeySourceSpec) -> Self {
        match spec {
            KeySourceSpec::File(dir) => Self::File(FileSource::new(dir.clone())),
            KeySourceSpec::AwsSecretsManager(id) => Self::Aws(AwsSource::from_environment(id.clone()).await),
        }
    }

    pub fn name(&self) -> String {
        match self {
            Self::File(file) => file.name(),
            Self::Aws(aws) => aws.name(),
        }
    }

    fn error(&self, reason: impl Into<String>) -> KeyError {
        KeyError::Source {
            source_name: self.name(),
            reason: reason.into(),
        }
    }

    /// The stored document; an absent keyset is an empty one.
    pub async fn load(&self) -> Result<Loaded, KeyError> {
        let read = match self {
            Self::File(file) => {
                let file = file.clone();
                let bytes = self
                    .blocking(move || file.read())
                    .await?
                    .map_err(|reason| self.error(reason))?;
                bytes.map(|b| {
                    let digest = B64.encode(Sha256::digest(&b));
                    (b, digest)
                })
            }
            Self::Aws(aws) => aws
                .read()
                .await
                .map_err(|reason| self.error(reason))?
                .map(|(value, version)| (value.into_bytes(), version)),
        };
        match read {
            None => Ok(Loaded::default()),
            Some((bytes, version)) => {
                let bytes = zeroize::Zeroizing::new(bytes);
                Ok(Loaded {
                    doc: KeysetDocument::from_json(&bytes)?,
                    version: Some(version),
                })
            }
        }
    }

    /// Reads the document, applies `change`, and stores the result if it differs — refusing
    /// to overwrite a change another writer made in between. Nothing is stored when `change`
    /// fails or when the result is not a valid keyset.
    pub async fn update<T>(
        &self,
        change: impl FnOnce(&mut KeysetDocument) -> Result<T, KeyError>,
    ) -> Result<T, KeyError> {
        // Held until the end: the file source's writers take turns from read to write.
        let _lock = match self {
            Self::File(file) => {
                let file = file.clone();
                let lock = self
                    .blocking(move || file.lock())
                    .await?
                    .map_err(|reason| self.error(reason))?;
                Some(lock)
            }
            Self::Aws(_) => None,
        };
        let read = self.load().await?;
        let mut doc = read.doc.clone();
        let outcome = change(&mut doc)?;
        if doc.to_json() == read.doc.to_json() {
            return Ok(outcome);
        }
        let check = doc.clone();
        self.blocking(move || KeySet::from_document(&check)).await??;
        let json = doc.to_json();
        match self {
            Self::File(file) => {
                let file = file.clone();
                self.blocking(move || file.write(json.as_bytes()))
                    .await?
                    .map_err(|reason| self.error(reason))?;
            }
            Self::Aws(aws) => aws
                .write(&json, read.version.as_deref())
                .await
                .map_err(|e| match e {
                    aws::WriteError::Conflict(reason) => KeyError::Conflict {
                        source_name: self.name(),
                        reason,
                    },
                    aws::WriteError::Failed(reason) => self.error(reason),
                })?,
        }
        Ok(outcome)
    }

    /// The keyset a server starts with. Only the development default, a file source that is
    /// empty, gets one new active key of `alg`: anywhere else an empty source is more likely
    /// a typo in its name, and a key made there would fork the keyset (and create a cloud
    /// secret behind the operator's back). Refuses when `alg` has no active key.
    pub async fn load_for_serving(
        &self,
        mode: Mode,
        alg: Alg,
        now: OffsetDateTime,
    ) -> Result<(KeySet, Loaded), KeyError> {
        let mut loaded = self.load().await?;
        if loaded.doc.keys.is_empty() {
            if !self.generates_when_empty(mode) {
                return Err(KeyError::NoKeyset {
                    alg,
                    source_name: self.name(),
                });
            }
            let record = self
                .blocking(move || generate_record(alg, 2048, KeyState::Active, now))
                .await??;
            let change = self
                .update(|doc| match doc.keys.is_empty() {
                    true => lifecycle::add(doc, record, now).map(Some),
                    // Another instance generated one first.
                    false => Ok(None),
                })
                .await?;
            if let Some(change) = change {
                tracing::warn!(kid = %change.kid, %alg, source = %self.name(), "generated a development signing key");
                change.audit("key_generated", "token-issuer serve (development)");
            }
            loaded = self.load().await?;
        }
        let set = self.serving_keyset(loaded.doc.clone(), alg).await?;
        Ok((set, loaded))
    }

    /// Whether `serve` makes up a key for this source when it is empty: only the development
    /// default, a file source.
    pub fn generates_when_empty(&self, mode: Mode) -> bool {
        mode == Mode::Development && matches!(self, Self::File(_))
    }

    /// Parses `doc` into signers and requires an active key of `alg`, as a serving instance
    /// does. Off the runtime: RSA keys take milliseconds each to parse and check.
    pub async fn serving_keyset(&self, doc: KeysetDocument, alg: Alg) -> Result<KeySet, KeyError> {
        let set = self.blocking(move || KeySet::from_document(&doc)).await??;
        if set.active(alg).is_none() {
            return Err(KeyError::NoActiveKey {
                alg,
                source_name: self.name(),
            });
        }
        Ok(set)
    }

    /// Runs blocking file or CPU work on the blocking pool; a crashed task is a source error.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, KeyError> {
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| self.error(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;
    use crate::keys::KeyRecord;

    fn in_dir(dir: &std::path::Path) -> KeySource {
        KeySource::File(FileSource::new(dir.to_owned()))
    }

    fn ed25519() -> KeyRecord {
        generate_record(Alg::EdDsa, 0, KeyState::Pending, OffsetDateTime::now_utc()).expect("generate")
    }

    #[tokio::test]
    async fn development_generates_once_and_production_never() {
        let dir = tempfile::tempdir().expect("tempdir");
        let source = in_dir(&dir.path().join("keys"));
        let err = source
            .load_for_serving(Mode::Production, Alg::Rs256, OffsetDateTime::now_utc())
            .await
            .expect_err("no key");
        assert!(
            err.to_string().contains("no keyset in file:")
                && err.to_string().contains("keys generate --alg RS256"),
            "{err}"
        );
        assert!(!dir.path().join("keys/keyset.json").exists());

        let (first, _) = source
            .load_for_serving(Mode::Development, Alg::EdDsa, OffsetDateTime::now_utc())
            .await
            .expect("generated");
        let kid = first.active(Alg::EdDsa).expect("active").kid().to_owned();
        let (again, loaded) = source
            .load_for_serving(Mode::Development, Alg::EdDsa, OffsetDateTime::now_utc())
            .await
            .expect("loaded");
        assert_eq!(again.active(Alg::EdDsa).expect("active").kid(), kid);
        assert!(loaded.version.is_some());
        let mode = std::fs::metadata(dir.path().join("keys/keyset.json"))
            .expect("file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);

        let err = source
            .load_for_serving(Mode::Development, Alg::Rs256, OffsetDateTime::now_utc())
            .await
            .expect_err("no RS256");
        assert!(
            err.to_string().contains("RS256") && err.to_string().contains("file:"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn refuses_a_keyset_readable_by_others() {
        let dir = tempfile::tempdir().expect("tempdir");
        let source = in_dir(dir.path());
        source
            .update(|doc| lifecycle::add(doc, ed25519(), OffsetDateTime::now_utc()))
            .await
            .expect("add");
        let path = dir.path().join("keyset.json");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = source.load().await.expect_err("must refuse");
        assert!(err.to_string().contains("by group or others"), "{err}");
    }

    #[tokio::test]
    async fn a_failed_or_invalid_change_writes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let source = in_dir(dir.path());
        source
            .update(|doc| lifecycle::add(doc, ed25519(), OffsetDateTime::now_utc()))
            .await
            .expect("add");
        let before = std::fs::read(dir.path().join("keyset.json")).expect("read");

        let refused = source
            .update(|doc| {
                doc.keys.clear();
                Err::<(), _>(KeyError::UnknownKid("x".into()))
            })
            .await;
        assert!(matches!(refused, Err(KeyError::UnknownKid(_))));
        let mut second = ed25519();
        second.state = KeyState::Active;
        let invalid = source
            .update(|doc| {
                doc.keys.push(second);
                Ok(())
            })
            .await;
        assert!(matches!(invalid, Err(KeyError::TwoActive(..))), "{invalid:?}");
        assert_eq!(
            std::fs::read(dir.path().join("keyset.json")).expect("read"),
            before
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_updates_take_turns() {
        let dir = tempfile::tempdir().expect("tempdir");
        let source = in_dir(dir.path());
        let writers: Vec<_> = (0..8)
            .map(|_| {
                let (source, key) = (source.clone(), ed25519());
                tokio::spawn(async move {
                    source
                        .update(|doc| lifecycle::add(doc, key, OffsetDateTime::now_utc()))
                        .await
                })
            })
            .collect();
        for writer in writers {
            writer.await.expect("join").expect("update");
        }
        assert_eq!(source.load().await.expect("load").doc.keys.len(), 8);
    }
}
