//! The fault journal: a directory with one small JSON file per applied fault
//! (`<run_id>-<step>.json`, holding its [`Applied`] record). An entry is written and fsynced
//! before the fault is applied and removed after it is reverted, so whatever is left after a
//! crash is exactly what may still be in effect; [`Journal::recover`] reverts it on start.
//!
//! The journal only stores records: applying and reverting belong to [`crate::faults`].
use crate::faults::{Applied, Faults};
use crate::state::{sync_dir, valid_run_id, write_durable};
use anyhow::{bail, Context, Result};
use std::{
    fs,
    path::{Path, PathBuf},
};

pub struct Journal {
    dir: PathBuf,
}

impl Journal {
    pub fn open(dir: &Path) -> Result<Self> {
        fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
        Ok(Journal {
            dir: dir.to_path_buf(),
        })
    }

    fn path(&self, run_id: &str, step: usize) -> Result<PathBuf> {
        if !valid_run_id(run_id) {
            bail!("invalid run id {run_id:?}");
        }
        Ok(self.dir.join(format!("{run_id}-{step}.json")))
    }

    /// Durably records `applied` (call before applying it).
    pub fn record(&self, applied: &Applied) -> Result<()> {
        let path = self.path(&applied.run_id, applied.step)?;
        let bytes =
            serde_json::to_vec_pretty(applied).context("failed to encode a journal entry")?;
        write_durable(&path, &bytes, 0o600)
    }

    /// Forgets an entry (call after reverting it). Removing a missing entry is fine.
    pub fn remove(&self, run_id: &str, step: usize) -> Result<()> {
        let path = self.path(run_id, step)?;
        match fs::remove_file(&path) {
            Ok(()) => sync_dir(&self.dir),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("failed to remove {}", path.display())),
        }
    }

    /// Every readable entry; unreadable files are logged and skipped (and stay for a human).
    pub fn entries(&self) -> Result<Vec<Applied>> {
        let mut out = Vec::new();
        let dir = fs::read_dir(&self.dir)
            .with_context(|| format!("failed to list {}", self.dir.display()))?;
        for entry in dir.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            match fs::read(&path)
                .map_err(anyhow::Error::from)
                .and_then(|b| Ok(serde_json::from_slice::<Applied>(&b)?))
            {
                Ok(a) => out.push(a),
                Err(e) => {
                    tracing::error!(file = %path.display(), error = %e, "unreadable fault journal entry; revert it by hand")
                }
            }
        }
        out.sort_by(|a, b| (a.at_ms, &a.run_id, a.step).cmp(&(b.at_ms, &b.run_id, b.step)));
        Ok(out)
    }

    /// Entries of one run.
    pub fn entries_for(&self, run_id: &str) -> Vec<Applied> {
        match self.entries() {
            Ok(all) => all.into_iter().filter(|a| a.run_id == run_id).collect(),
            Err(e) => {
                tracing::error!(error = %e, "failed to read the fault journal");
                Vec::new()
            }
        }
    }

    /// Reverts, newest first, everything a previous process left applied. Returns how many
    /// entries were reverted; failures are logged and keep their entry for the next start.
    /// Action undos are left to [`crate::actions::recover`], which runs them after this.
    pub fn recover(&self, faults: &Faults) -> Result<usize> {
        let mut entries = self.entries()?;
        entries.retain(|a| a.kind != crate::actions::UNDO_KIND);
        entries.reverse();
        let mut reverted = 0;
        for a in entries {
            match faults.revert(self, &a) {
                Ok(detail) => {
                    reverted += 1;
                    tracing::warn!(run_id = %a.run_id, step = a.step, kind = %a.kind, applied = %a.detail, %detail, "reverted a fault left applied by a previous run of the delegate");
                }
                Err(e) => {
                    tracing::error!(run_id = %a.run_id, step = a.step, kind = %a.kind, error = %e, "failed to revert a fault left applied by a previous run of the delegate")
                }
            }
        }
        Ok(reverted)
    }
}
