//! The state directory: its layout, the lock that keeps a second delegate out of it, and the
//! credential file. The journal and the outbox own their own subdirectories; this module only
//! says where they are, plus the small durable-write helpers they share.
use anyhow::{bail, Context, Result};
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};
use std::{
    fmt,
    fs::{self, File, OpenOptions},
    io::Write,
    os::unix::fs::{DirBuilderExt, OpenOptionsExt},
    path::{Path, PathBuf},
};

const CREDENTIAL: &str = "credential.json";

/// The identity the hub gave this delegate at registration.
#[derive(Clone, Serialize, Deserialize)]
pub struct Credential {
    pub delegate_id: String,
    pub credential: String,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("delegate_id", &self.delegate_id)
            .field("credential", &"***")
            .finish()
    }
}

pub struct StateDir {
    root: PathBuf,
    /// Held for the life of the process: two delegates sharing a journal would revert each
    /// other's faults.
    _lock: Flock<File>,
}

impl StateDir {
    /// Creates the directory tree (mode 0700) if needed and locks it.
    pub fn open(root: &Path) -> Result<Self> {
        for dir in [root.to_path_buf(), root.join("journal"), root.join("runs")] {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .with_context(|| format!("failed to create {}", dir.display()))?;
        }
        let lock_path = root.join("lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .with_context(|| format!("failed to open {}", lock_path.display()))?;
        let lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(l) => l,
            Err((_, errno)) => bail!(
                "state directory {} is in use by another delegate ({errno})",
                root.display()
            ),
        };
        Ok(StateDir {
            root: root.to_path_buf(),
            _lock: lock,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn journal_dir(&self) -> PathBuf {
        self.root.join("journal")
    }

    pub fn runs_dir(&self) -> PathBuf {
        self.root.join("runs")
    }

    /// The stored credential, if this delegate has registered before.
    pub fn load_credential(&self) -> Result<Option<Credential>> {
        let path = self.root.join(CREDENTIAL);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("failed to read {}", path.display())),
        };
        let cred: Credential = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a valid credential file", path.display()))?;
        if cred.delegate_id.is_empty() || cred.credential.is_empty() {
            bail!("{} has an empty delegate_id or credential", path.display());
        }
        Ok(Some(cred))
    }

    /// Stores the credential readable by the owner only.
    pub fn save_credential(&self, cred: &Credential) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(cred).context("failed to encode the credential")?;
        write_durable(&self.root.join(CREDENTIAL), &bytes, 0o600)
    }

    pub fn delete_credential(&self) -> Result<()> {
        let path = self.root.join(CREDENTIAL);
        match fs::remove_file(&path) {
            Ok(()) => sync_dir(&self.root),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("failed to delete {}", path.display())),
        }
    }
}

/// Writes `bytes` to `path` so that after a crash the file holds either the old or the new
/// content: temp file, fsync, rename, fsync of the directory.
pub(crate) fn write_durable(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(mode)
        .open(&tmp)
        .with_context(|| format!("failed to create {}", tmp.display()))?;
    if let Err(e) = f.write_all(bytes).and_then(|_| f.sync_all()) {
        // A full disk: give back what was written.
        let _ = fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("failed to write {}", tmp.display()));
    }
    fs::rename(&tmp, path)
        .with_context(|| format!("failed to rename {} into place", tmp.display()))?;
    match path.parent() {
        Some(dir) => sync_dir(dir),
        None => Ok(()),
    }
}

/// Makes a directory's entries (new, renamed or removed files) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("failed to sync directory {}", dir.display()))
}

/// Run ids that have a file `<id><suffix>` in `dir`, sorted; other files are ignored.
pub fn run_ids_with_suffix(dir: &Path, suffix: &str) -> anyhow::Result<Vec<String>> {
    use anyhow::Context;
    let listing = fs::read_dir(dir).with_context(|| format!("failed to list {}", dir.display()))?;
    let mut ids: Vec<String> = listing
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(suffix))
                .map(str::to_string)
        })
        .filter(|id| valid_run_id(id))
        .collect();
    ids.sort();
    Ok(ids)
}

/// Run ids come from the hub and end up in file names: only plain ids are accepted.
pub fn valid_run_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn credential_round_trip_is_private_and_the_dir_is_locked() {
        let dir = tempfile::tempdir().unwrap();
        let s = StateDir::open(dir.path()).unwrap();
        assert!(s.load_credential().unwrap().is_none());
        let cred = Credential {
            delegate_id: "d1".into(),
            credential: "fl_dlg_x".into(),
        };
        s.save_credential(&cred).unwrap();
        let mode = fs::metadata(dir.path().join(CREDENTIAL))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(s.load_credential().unwrap().unwrap().credential, "fl_dlg_x");
        assert!(!format!("{cred:?}").contains("fl_dlg_x"));
        let second = StateDir::open(dir.path());
        assert!(
            second.is_err(),
            "a second delegate must not share the state dir"
        );
        s.delete_credential().unwrap();
        assert!(s.load_credential().unwrap().is_none());
    }

    #[test]
    fn run_ids_are_plain() {
        assert!(valid_run_id("4b4e7a6e-2f43-4a7b-9a0e-1e0f6c2b9d11"));
        assert!(!valid_run_id("../../etc/passwd"));
        assert!(!valid_run_id(""));
        assert!(!valid_run_id("a/b"));
    }
}
