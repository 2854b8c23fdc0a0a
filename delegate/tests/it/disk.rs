//! disk-fill on a small tmpfs each test mounts in a temporary directory (we run as root; the
//! mount goes away on drop): it reaches the asked fill, refuses beyond the safety margin, leaves
//! the directory exactly as it was after revert (or after journal recovery), and the allow-list
//! decides which directories io-stress and disk-fill may write in.
use crate::stress::{ctx, faults};
use faultline_delegate::{
    allow::{AllowList, Entry},
    faults::{stress::Space, FaultError, Faults},
    journal::Journal,
};
use faultline_experiment::faults::{ByteSize, DiskFillParams, FaultSpec, PathTarget};
use std::{path::Path, process::Command};

/// A tmpfs of `mib` MiB mounted on a fresh temporary directory, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(mib: u64) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "fl-test"])
            .arg(dir.path())
            .status()
            .expect("mount runs");
        assert!(ok.success(), "mount tmpfs (the tests run as root)");
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn used_percent(&self) -> f64 {
        Space::of(self.path()).unwrap().used_percent()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

fn fill(path: &Path, fill_percent: Option<u32>, size: Option<ByteSize>, force: bool) -> FaultSpec {
    FaultSpec::DiskFill {
        target: PathTarget {
            path: path.display().to_string(),
        },
        params: DiskFillParams {
            fill_percent,
            size,
            force,
        },
    }
}

/// Names, sizes and contents of the files in a directory.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap_or_default(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn disk_fill_reaches_the_asked_percentage_and_revert_leaves_the_directory_as_before() {
    let fs = Tmpfs::mount(300);
    std::fs::write(fs.path().join("data.txt"), "keep me").unwrap();
    let before = snapshot(fs.path());
    let used_before = fs.used_percent();
    let state = tempfile::tempdir().unwrap();
    let journal = Journal::open(state.path()).unwrap();
    let faults = faults();
    let a = faults
        .inject(
            &journal,
            &fill(fs.path(), Some(50), None, false),
            ctx("fill-run"),
        )
        .unwrap();
    let file = fs.path().join(".faultline-fill-fill-run-1");
    assert!(
        a.detail.contains("to 50.0% used with") && a.detail.contains(&file.display().to_string()),
        "{}",
        a.detail
    );
    let used = fs.used_percent();
    assert!((49.0..=51.5).contains(&used), "{used:.1}% used");
    faults.revert(&journal, &a).unwrap();
    assert_eq!(snapshot(fs.path()), before);
    assert!((fs.used_percent() - used_before).abs() < 0.5);
    assert!(journal.entries().unwrap().is_empty());
}

#[test]
fn disk_fill_refuses_beyond_the_safety_margin_unless_forced() {
    let fs = Tmpfs::mount(300);
    let state = tempfile::tempdir().unwrap();
    let journal = Journal::open(state.path()).unwrap();
    let faults = faults();
    // 90 % of 300 MiB leaves 30 MiB, under the 100 MiB margin.
    let err = faults
        .inject(
            &journal,
            &fill(fs.path(), Some(90), None, false),
            ctx("fill-bad"),
        )
        .unwrap_err();
    assert!(matches!(err, FaultError::Stress(_)), "{err}");
    let msg = err.to_string();
    assert!(
        msg.starts_with("params.fillPercent: filling ") && msg.contains("set force: true"),
        "{msg}"
    );
    let err = faults
        .inject(
            &journal,
            &fill(fs.path(), None, Some(ByteSize::mib(400)), true),
            ctx("fill-bad"),
        )
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("params.size: 400.0 MiB is more than"),
        "{err}"
    );
    assert!(snapshot(fs.path()).is_empty(), "nothing was written");
    assert!(journal.entries().unwrap().is_empty());
    // With force, the margin may go (a small one leaves ~30 MiB here).
    let a = faults
        .inject(
            &journal,
            &fill(fs.path(), Some(90), None, true),
            ctx("fill-force"),
        )
        .unwrap();
    assert!(fs.used_percent() >= 89.0);
    faults.revert(&journal, &a).unwrap();
    assert!(snapshot(fs.path()).is_empty());
}

#[test]
fn journal_recovery_deletes_a_fill_left_by_a_crash() {
    let fs = Tmpfs::mount(200);
    let state = tempfile::tempdir().unwrap();
    {
        let journal = Journal::open(state.path()).unwrap();
        faults()
            .inject(
                &journal,
                &fill(fs.path(), None, Some(ByteSize::mib(20)), false),
                ctx("fill-crash"),
            )
            .unwrap();
        // No revert: the delegate "crashed".
    }
    assert_eq!(snapshot(fs.path()).len(), 1);
    let journal = Journal::open(state.path()).unwrap();
    assert_eq!(journal.recover(&faults()).unwrap(), 1);
    assert!(snapshot(fs.path()).is_empty());
    assert!(fs.used_percent() < 1.0);
}

#[test]
fn paths_outside_the_allow_list_are_refused_before_anything_is_written() {
    let work = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let journal = Journal::open(state.path()).unwrap();
    let only = |p: &str| {
        let e: Entry = format!("path={p}").parse().unwrap();
        Faults::with_allow(AllowList::from_entries(&[e]))
            .with_worker_exe(env!("CARGO_BIN_EXE_faultline-delegate"))
    };
    let spec = fill(work.path(), None, Some(ByteSize(4096)), false);
    let err = only("/nonexistent-allowed")
        .inject(&journal, &spec, ctx("allow-run"))
        .unwrap_err();
    assert!(matches!(err, FaultError::NotAllowed(_)), "{err}");
    // A symlink under an allowed directory that leads out of it is refused too.
    let allowed = tempfile::tempdir().unwrap();
    let link = allowed.path().join("out");
    std::os::unix::fs::symlink(work.path(), &link).unwrap();
    let err = only(&allowed.path().display().to_string())
        .inject(
            &journal,
            &fill(&link, None, Some(ByteSize(4096)), false),
            ctx("allow-run"),
        )
        .unwrap_err();
    assert!(matches!(err, FaultError::NotAllowed(_)), "{err}");
    assert!(snapshot(work.path()).is_empty());
    // Allowed: applied, then reverted.
    let faults = only(&work.path().display().to_string());
    let a = faults.inject(&journal, &spec, ctx("allow-run")).unwrap();
    faults.revert(&journal, &a).unwrap();
    assert!(snapshot(work.path()).is_empty());
}
