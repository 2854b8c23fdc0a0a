//! `disk-fill`: one file `.faultline-fill-<run>-<step>` in the directory `target.path`,
//! allocated (fallocate, or written where that is not supported) so that the filesystem is
//! `fillPercent` % used, or by `size`. Revert deletes exactly that file. No worker process: the
//! file is the whole fault, and it outlives the delegate until revert or journal recovery.
//!
//! Planning measures the filesystem and refuses what would leave less than the safety margin
//! (2 % and 100 MiB, [`super::stress::Space::margin`]) unless `force`, and refuses when the file
//! already exists (revert must never delete a file it did not create).
use super::{
    stress::{self, human, Space, StressError},
    Applied, Fault, FaultError, RunCtx,
};
use faultline_experiment::faults::FaultSpec;
use nix::fcntl::{fallocate, FallocateFlags};
use serde::{Deserialize, Serialize};
use std::{io::Write, path::PathBuf};

pub struct DiskFill;

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    file: PathBuf,
    bytes: u64,
}

impl Fault for DiskFill {
    fn kind(&self) -> &'static str {
        "disk-fill"
    }

    fn revertible(&self, _: &Applied) -> bool {
        true
    }

    fn plan(&self, spec: &FaultSpec, ctx: RunCtx<'_>) -> Result<Applied, FaultError> {
        let FaultSpec::DiskFill { target, params } = spec else {
            return Err(FaultError::WrongSpec {
                kind: self.kind(),
                given: spec.kind(),
            });
        };
        let dir = stress::directory(&target.path, "target.path")?;
        let file = dir.join(format!(".faultline-fill-{}-{}", ctx.run_id, ctx.step));
        if file.symlink_metadata().is_ok() {
            return Err(StressError::Refused(format!(
                "target.path: {} already exists; it is not ours to overwrite",
                file.display()
            ))
            .into());
        }
        let space = Space::of(&dir)?;
        let (bytes, field) = match (params.fill_percent, params.size) {
            (Some(p), _) => {
                let want = ((space.used + space.avail) as f64 * p as f64 / 100.0) as u64;
                if want <= space.used {
                    return Err(StressError::Refused(format!(
                        "params.fillPercent: the filesystem of {} is already {:.1}% used",
                        target.path,
                        space.used_percent()
                    ))
                    .into());
                }
                (want - space.used, "params.fillPercent")
            }
            (None, Some(s)) => (s.0, "params.size"),
            (None, None) => {
                return Err(StressError::Refused("params: give fillPercent or size".into()).into())
            }
        };
        if bytes > space.avail {
            return Err(StressError::Refused(format!(
                "{field}: {} is more than the {} available on the filesystem of {}",
                human(bytes),
                human(space.avail),
                target.path
            ))
            .into());
        }
        let left = space.avail - bytes;
        if !params.force && left < space.margin() {
            return Err(StressError::Refused(format!(
                "{field}: filling {} would leave {} free on the filesystem of {}, less than the safety margin of {}; set force: true to allow it",
                human(bytes),
                human(left),
                target.path,
                human(space.margin())
            ))
            .into());
        }
        let after = (space.used + bytes) as f64 * 100.0 / (space.used + space.avail).max(1) as f64;
        Ok(Applied::new(
            ctx,
            self.kind(),
            format!(
                "filled the filesystem of {} from {:.1}% to {after:.1}% used with {} ({})",
                target.path,
                space.used_percent(),
                file.display(),
                human(bytes)
            ),
            serde_json::to_value(Data { file, bytes }).unwrap_or_default(),
        ))
    }

    fn apply(&self, plan: &Applied) -> Result<(), FaultError> {
        let d: Data = serde_json::from_value(plan.data.clone())
            .map_err(|e| StressError::Refused(format!("bad disk-fill record: {e}")))?;
        let io = |what: &str, source: std::io::Error| StressError::Io {
            what: format!("failed to {what} {}", d.file.display()),
            source,
        };
        // create_new: never take over (or follow a symlink to) a file that is not ours.
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&d.file)
            .map_err(|e| io("create", e))?;
        match fallocate(&f, FallocateFlags::empty(), 0, d.bytes as i64) {
            Ok(()) => {}
            Err(nix::errno::Errno::EOPNOTSUPP) => {
                let block = vec![0u8; 1 << 20];
                let mut left = d.bytes;
                while left > 0 {
                    let n = left.min(block.len() as u64) as usize;
                    f.write_all(&block[..n]).map_err(|e| io("write", e))?;
                    left -= n as u64;
                }
                f.sync_all().map_err(|e| io("sync", e))?;
            }
            Err(e) => return Err(io("allocate space for", e.into()).into()),
        }
        Ok(())
    }

    fn revert(&self, applied: &Applied) -> Result<String, FaultError> {
        let d: Data = serde_json::from_value(applied.data.clone())
            .map_err(|e| StressError::Refused(format!("bad disk-fill record: {e}")))?;
        Ok(if stress::remove_file(&d.file)? {
            format!("deleted {}", d.file.display())
        } else {
            format!("nothing to delete: {} is gone", d.file.display())
        })
    }
}
