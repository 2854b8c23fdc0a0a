//! `io-stress`: `workers` writer processes under the directory `target.path`, each writing
//! `blockSize` blocks to its own file `.faultline-io-<run>-<step>-<n>` (optionally fdatasync'd
//! after each block), rewriting it from the start once it reaches `fileSize`. Revert kills the
//! writers, then deletes exactly those files. Planning refuses when the files could eat into the
//! filesystem's safety margin (see [`super::stress::Space::margin`]) or when one of them already
//! exists (revert must never delete a file it did not create).
use super::{
    stress::{self, human, tag, Space, StressError, Workers},
    Applied, Fault, FaultError, RunCtx,
};
use faultline_experiment::faults::{ByteSize, FaultSpec};
use serde::{Deserialize, Serialize};
use std::{path::PathBuf, sync::Arc};

pub struct IoStress {
    pub workers: Arc<Workers>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    tag: String,
    files: Vec<PathBuf>,
    block_size: u64,
    file_size: u64,
    fsync: bool,
}

impl Fault for IoStress {
    fn kind(&self) -> &'static str {
        "io-stress"
    }

    fn revertible(&self, _: &Applied) -> bool {
        true
    }

    fn plan(&self, spec: &FaultSpec, ctx: RunCtx<'_>) -> Result<Applied, FaultError> {
        let FaultSpec::IoStress { target, params } = spec else {
            return Err(FaultError::WrongSpec {
                kind: self.kind(),
                given: spec.kind(),
            });
        };
        let dir = stress::directory(&target.path, "target.path")?;
        let workers = params.workers.unwrap_or(1);
        let block = params.block_size.unwrap_or(ByteSize::mib(1)).0;
        let file_size = params.file_size.unwrap_or(ByteSize::mib(64)).0.max(block);
        let tag = tag(ctx.run_id, ctx.step);
        let files: Vec<PathBuf> = (0..workers)
            .map(|i| dir.join(format!(".faultline-io-{tag}-{i}")))
            .collect();
        if let Some(f) = files.iter().find(|f| f.symlink_metadata().is_ok()) {
            return Err(StressError::Refused(format!(
                "target.path: {} already exists; it is not ours to overwrite",
                f.display()
            ))
            .into());
        }
        let space = Space::of(&dir)?;
        let need = file_size.saturating_mul(workers as u64);
        if need.saturating_add(space.margin()) > space.avail {
            return Err(StressError::Refused(format!(
                "params.fileSize: {workers} files of {} would leave less than {} free on the filesystem of {} ({} available)",
                human(file_size),
                human(space.margin()),
                target.path,
                human(space.avail)
            ))
            .into());
        }
        let detail = format!(
            "{workers} writer{} of {} blocks{} under {}, files .faultline-io-{tag}-0..{} of up to {} each",
            if workers == 1 { "" } else { "s" },
            human(block),
            if params.fsync { " with fdatasync" } else { "" },
            target.path,
            workers - 1,
            human(file_size),
        );
        let data = Data {
            tag,
            files,
            block_size: block,
            file_size,
            fsync: params.fsync,
        };
        Ok(Applied::new(
            ctx,
            self.kind(),
            detail,
            serde_json::to_value(data).unwrap_or_default(),
        ))
    }

    fn apply(&self, plan: &Applied) -> Result<(), FaultError> {
        let d: Data = serde_json::from_value(plan.data.clone())
            .map_err(|e| StressError::Refused(format!("bad io-stress record: {e}")))?;
        for f in &d.files {
            let mut args = vec![
                "io".to_string(),
                "--file".into(),
                f.display().to_string(),
                "--block-size".into(),
                d.block_size.to_string(),
                "--file-size".into(),
                d.file_size.to_string(),
            ];
            if d.fsync {
                args.push("--fsync".into());
            }
            self.workers.spawn(&d.tag, &args)?;
        }
        Ok(())
    }

    fn revert(&self, applied: &Applied) -> Result<String, FaultError> {
        let d: Data = serde_json::from_value(applied.data.clone())
            .map_err(|e| StressError::Refused(format!("bad io-stress record: {e}")))?;
        // Writers first: a file deleted under a live writer would keep its space until it exits.
        let n = self.workers.stop(&d.tag);
        let mut deleted = 0;
        for f in &d.files {
            deleted += stress::remove_file(f)? as usize;
        }
        Ok(format!(
            "stopped {n} writers and deleted {deleted} of their files"
        ))
    }
}
