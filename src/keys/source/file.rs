//! `file:DIR`: `DIR/keyset.json`, private to its owner, replaced atomically, and written
//! under a lock file so two `keys` commands cannot lose each other's change.

use std::io::{Read as _, Write as _};
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

const KEYSET: &str = "keyset.json";
const LOCK: &str = "keyset.json.lock";

#[derive(Debug, Clone)]
pub struct FileSource {
    dir: PathBuf,
}

/// Held while a writer reads, changes and replaces the keyset; unlocked on drop.
pub struct WriteLock {
    _file: std::fs::File,
}

impl FileSource {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    pub fn name(&self) -> String {
        format!("file:{}", self.dir.display())
    }

    /// The keyset's bytes; `None` if there is no keyset yet. Refuses a file that group or
    /// others can read.
    pub fn read(&self) -> Result<Option<Vec<u8>>, String> {
        let path = self.dir.join(KEYSET);
        let fail = |e: std::io::Error| format!("{}: {e}", path.display());
        // Check the mode of the file we opened, not of whatever the path names later.
        let mut file = match std::fs::File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(fail(e)),
        };
        let mode = file.metadata().map_err(fail)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(format!(
                "{} is readable or writable by group or others (mode {mode:o}); run chmod 600 on it",
                path.display()
            ));
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(fail)?;
        Ok(Some(bytes))
    }

    /// Waits for the exclusive write lock. Readers never take it: they see the old or the new
    /// file whole, because writes replace it by rename.
    pub fn lock(&self) -> Result<WriteLock, String> {
        let fail = |e: std::io::Error| format!("{}: {e}", self.dir.join(LOCK).display());
        std::fs::create_dir_all(&self.dir).map_err(fail)?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(self.dir.join(LOCK))
            .map_err(fail)?;
        file.lock().map_err(fail)?;
        Ok(WriteLock { _file: file })
    }

    /// Replaces the keyset atomically (temp file, fsync, rename, fsync of the directory) with a
    /// file only the owner can read. The caller holds the write lock.
    pub fn write(&self, contents: &[u8]) -> Result<(), String> {
        write_private_file(&self.dir, KEYSET, contents).map_err(|e| format!("{}: {e}", self.dir.display()))
    }
}

fn write_private_file(dir: &Path, name: &str, contents: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        // Replacing the file as another user would leave the servers a file they cannot read.
        if let Ok(existing) = std::fs::metadata(dir.join(name)) {
            let me = file.metadata()?.uid();
            if existing.uid() != me {
                return Err(std::io::Error::other(format!(
                    "{name} belongs to uid {}, but this command runs as uid {me}; run it as the \
                     owner (e.g. sudo -u token-issuer)",
                    existing.uid()
                )));
            }
        }
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
