//! Where the keyset document lives. `file:DIR` reads `DIR/keyset.json`.

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use super::{generate_record, Alg, KeyError, KeySet, KeyState, KeysetDocument};
use crate::config::{KeySourceSpec, Mode};

#[derive(Debug, Clone)]
pub enum KeySource {
    File { dir: PathBuf },
}

impl KeySource {
    pub fn from_spec(spec: &KeySourceSpec) -> Result<Self, KeyError> {
        match spec {
            KeySourceSpec::File(dir) => Ok(Self::File { dir: dir.clone() }),
            KeySourceSpec::AwsSecretsManager(_) => Err(KeyError::Source {
                source_name: spec.to_string(),
                reason: "the AWS Secrets Manager source is not built yet; use file:DIR".into(),
            }),
        }
    }

    pub fn name(&self) -> String {
        match self {
            Self::File { dir } => format!("file:{}", dir.display()),
        }
    }

    fn error(&self, reason: impl Into<String>) -> KeyError {
        KeyError::Source {
            source_name: self.name(),
            reason: reason.into(),
        }
    }

    /// The stored document; an absent keyset is an empty one.
    pub async fn load(&self) -> Result<KeysetDocument, KeyError> {
        match self {
            Self::File { dir } => {
                let path = dir.join("keyset.json");
                let read = tokio::task::spawn_blocking(move || read_private_file(&path))
                    .await
                    .map_err(|e| self.error(e.to_string()))?;
                match read.map_err(|reason| self.error(reason))? {
                    Some(bytes) => KeysetDocument::from_json(&bytes),
                    None => Ok(KeysetDocument::default()),
                }
            }
        }
    }

    pub async fn store(&self, doc: &KeysetDocument) -> Result<(), KeyError> {
        match self {
            Self::File { dir } => {
                let (dir, json) = (dir.clone(), doc.to_json());
                tokio::task::spawn_blocking(move || write_private_file(&dir, "keyset.json", json.as_bytes()))
                    .await
                    .map_err(|e| self.error(e.to_string()))?
                    .map_err(|e| self.error(e.to_string()))
            }
        }
    }

    /// The keyset a server starts with. In development an empty file source gets one new
    /// active key of `alg`; production never generates. Refuses when `alg` has no active key.
    pub async fn load_for_serving(&self, mode: Mode, alg: Alg) -> Result<KeySet, KeyError> {
        let mut doc = self.load().await?;
        if doc.keys.is_empty() && mode == Mode::Development {
            let record = tokio::task::spawn_blocking(move || {
                generate_record(alg, 2048, KeyState::Active, OffsetDateTime::now_utc())
            })
            .await
            .map_err(|e| KeyError::Generate(e.to_string()))??;
            tracing::warn!(kid = %record.kid, %alg, source = %self.name(), "generated a development signing key");
            doc.keys.push(record);
            self.store(&doc).await?;
        }
        let set = KeySet::from_document(&doc)?;
        if set.active(alg).is_none() {
            return Err(KeyError::NoActiveKey {
                alg,
                source_name: self.name(),
            });
        }
        Ok(set)
    }
}

/// Reads a file that must not be readable by group or others; `None` if it does not exist.
fn read_private_file(path: &Path) -> Result<Option<Vec<u8>>, String> {
    use std::io::Read as _;
    let fail = |e: std::io::Error| format!("{}: {e}", path.display());
    // Check the mode of the file we opened, not of whatever the path names later.
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(fail(e)),
    };
    let mode = file.metadata().map_err(fail)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "{} is readable by group or others (mode {mode:o}); run chmod 600 on it",
            path.display()
        ));
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(fail)?;
    Ok(Some(bytes))
}

/// Replaces `dir/name` atomically (temp file, fsync, rename) with a file only the owner can read.
fn write_private_file(dir: &Path, name: &str, contents: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        std::fs::rename(&tmp, dir.join(name))?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn development_generates_once_and_production_never() {
        let dir = tempfile::tempdir().expect("tempdir");
        let source = KeySource::File {
            dir: dir.path().join("keys"),
        };
        let err = source
            .load_for_serving(Mode::Production, Alg::Rs256)
            .await
            .expect_err("no key");
        assert!(err.to_string().contains("no active RS256 key"), "{err}");
        assert!(!dir.path().join("keys/keyset.json").exists());

        let first = source
            .load_for_serving(Mode::Development, Alg::EdDsa)
            .await
            .expect("generated");
        let kid = first.active(Alg::EdDsa).expect("active").kid().to_owned();
        let again = source
            .load_for_serving(Mode::Development, Alg::EdDsa)
            .await
            .expect("loaded");
        assert_eq!(again.active(Alg::EdDsa).expect("active").kid(), kid);
        let mode = std::fs::metadata(dir.path().join("keys/keyset.json"))
            .expect("file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);

        let err = source
            .load_for_serving(Mode::Development, Alg::Rs256)
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
        let source = KeySource::File {
            dir: dir.path().to_owned(),
        };
        source
            .load_for_serving(Mode::Development, Alg::EdDsa)
            .await
            .expect("generated");
        let path = dir.path().join("keyset.json");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = source.load().await.expect_err("must refuse");
        assert!(err.to_string().contains("readable by group or others"), "{err}");
    }
}
