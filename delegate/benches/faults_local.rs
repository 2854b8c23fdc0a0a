//! Apply and revert times of the local process and resource faults, measured through the real
//! registry (plan, fsynced journal entry, apply; revert, journal entry removed), 50 iterations
//! each after a warm-up. Prints a table of p50 / p99 in milliseconds.
//!
//! `cargo bench -p faultline-delegate --bench faults_local` (as root for the tmpfs; otherwise
//! disk-fill runs in a temporary directory on the default filesystem).
use faultline_delegate::{
    faults::{Faults, RunCtx},
    journal::Journal,
};
use faultline_experiment::faults::{
    ByteSize, CpuParams, DiskFillParams, FaultSpec, IoParams, MemoryParams, PathTarget,
    ProcessTarget, StopParams,
};
use std::{
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

const ITERATIONS: usize = 50;

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

/// Applies and reverts `spec` ITERATIONS times (after two warm-up rounds); returns the sorted
/// apply and revert times.
fn measure(faults: &Faults, journal: &Journal, spec: &FaultSpec) -> (Vec<Duration>, Vec<Duration>) {
    let (mut apply, mut revert) = (Vec::new(), Vec::new());
    for i in 0..ITERATIONS + 2 {
        let run_id = format!("bench-{i}");
        let ctx = RunCtx {
            run_id: &run_id,
            step: 0,
        };
        let t = Instant::now();
        let a = faults
            .inject(journal, spec, ctx)
            .unwrap_or_else(|e| panic!("{}: {e}", spec.kind()));
        let applied = t.elapsed();
        let t = Instant::now();
        faults
            .revert(journal, &a)
            .unwrap_or_else(|e| panic!("{}: {e}", spec.kind()));
        let reverted = t.elapsed();
        if i >= 2 {
            apply.push(applied);
            revert.push(reverted);
        }
    }
    apply.sort();
    revert.sort();
    (apply, revert)
}

/// A tmpfs on `dir` when we may mount one; whether it was mounted.
fn mount_tmpfs(dir: &Path) -> bool {
    Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=512m", "fl-bench"])
        .arg(dir)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn main() {
    let state = tempfile::tempdir().unwrap();
    let journal = Journal::open(state.path()).unwrap();
    let faults = Faults::new().with_worker_exe(env!("CARGO_BIN_EXE_faultline-delegate"));
    let scratch = tempfile::tempdir().unwrap();
    let tmpfs = mount_tmpfs(scratch.path());
    let path = scratch.path().display().to_string();

    let mut sleeper = Command::new("sleep")
        .arg("300")
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let cases: Vec<(&str, FaultSpec)> = vec![
        (
            "process-stop (1 pid)",
            FaultSpec::ProcessStop {
                target: ProcessTarget {
                    pid: Some(sleeper.id() as i32),
                    ..Default::default()
                },
                params: StopParams::default(),
            },
        ),
        (
            "cpu-stress (2 workers, 10%)",
            FaultSpec::CpuStress {
                params: CpuParams {
                    workers: Some(2),
                    load: Some(10),
                    cores: vec![],
                },
            },
        ),
        (
            "memory-stress (16MiB)",
            FaultSpec::MemoryStress {
                params: MemoryParams {
                    size: Some(ByteSize::mib(16)),
                    ..Default::default()
                },
            },
        ),
        (
            "io-stress (1 writer, 64KiB)",
            FaultSpec::IoStress {
                target: PathTarget { path: path.clone() },
                params: IoParams {
                    workers: Some(1),
                    block_size: Some(ByteSize(64 * 1024)),
                    file_size: Some(ByteSize::mib(4)),
                    fsync: false,
                },
            },
        ),
        (
            if tmpfs {
                "disk-fill (64MiB, tmpfs)"
            } else {
                "disk-fill (64MiB, temp dir)"
            },
            FaultSpec::DiskFill {
                target: PathTarget { path: path.clone() },
                params: DiskFillParams {
                    size: Some(ByteSize::mib(64)),
                    ..Default::default()
                },
            },
        ),
    ];
    println!(
        "{:<30} {:>6} {:>10} {:>10} {:>11} {:>11}",
        "fault", "n", "apply p50", "apply p99", "revert p50", "revert p99"
    );
    for (name, spec) in &cases {
        let (apply, revert) = measure(&faults, &journal, spec);
        println!(
            "{:<30} {:>6} {:>8.2}ms {:>8.2}ms {:>9.2}ms {:>9.2}ms",
            name,
            apply.len(),
            percentile(&apply, 0.5),
            percentile(&apply, 0.99),
            percentile(&revert, 0.5),
            percentile(&revert, 0.99)
        );
    }
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    if tmpfs {
        let _ = Command::new("umount").arg(scratch.path()).status();
    }
}
