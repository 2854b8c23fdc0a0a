//! process-kill against real processes: by pid file, by name, and the errors for a missing or
//! forbidden target.
use crate::helpers::TargetProc;
use faultline_delegate::{
    faults::{FaultError, Faults, RunCtx},
    journal::Journal,
};
use faultline_experiment::faults::{FaultSpec, KillParams, ProcessTarget, Signal};
use std::time::Duration;

fn kill_spec(pid_file: Option<String>, name: Option<String>, signal: Signal) -> FaultSpec {
    FaultSpec::ProcessKill {
        target: ProcessTarget {
            pid_file,
            name,
            ..Default::default()
        },
        params: KillParams {
            signal,
            ..Default::default()
        },
    }
}

const CTX: RunCtx<'static> = RunCtx {
    run_id: "kill-run",
    step: 0,
};

#[test]
fn kills_by_pid_file() {
    let mut target = TargetProc::spawn();
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    let pid_file = target.pid_file().display().to_string();
    let applied = Faults::new()
        .inject(
            &journal,
            &kill_spec(Some(pid_file), None, Signal::Kill),
            CTX,
        )
        .unwrap();
    assert!(applied.detail.contains("SIGKILL"), "{}", applied.detail);
    assert_eq!(target.wait_for_death(Duration::from_secs(5)), Some(9));
}

#[test]
fn kills_every_process_with_the_name() {
    let mut a = TargetProc::spawn();
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    let applied = Faults::new()
        .inject(
            &journal,
            &kill_spec(None, Some(a.name.clone()), Signal::Term),
            CTX,
        )
        .unwrap();
    assert_eq!(
        applied.processes.iter().map(|p| p.pid).collect::<Vec<_>>(),
        vec![a.pid()]
    );
    assert_eq!(applied.signal.as_deref(), Some("SIGTERM"));
    assert_eq!(a.wait_for_death(Duration::from_secs(5)), Some(15));
}

#[test]
fn a_missing_target_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    let faults = Faults::new();
    let err = faults
        .inject(
            &journal,
            &kill_spec(None, Some("fl-nobody-here".into()), Signal::Kill),
            CTX,
        )
        .unwrap_err();
    assert_eq!(err.to_string(), "no process named fl-nobody-here");

    let missing = dir.path().join("nope.pid").display().to_string();
    let err = faults
        .inject(
            &journal,
            &kill_spec(Some(missing.clone()), None, Signal::Kill),
            CTX,
        )
        .unwrap_err();
    assert!(matches!(err, FaultError::PidFile { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with(&format!("pid file {missing}: ")),
        "{err}"
    );

    let garbage = dir.path().join("garbage.pid");
    std::fs::write(&garbage, "s3cret-content").unwrap();
    let err = faults
        .inject(
            &journal,
            &kill_spec(Some(garbage.display().to_string()), None, Signal::Kill),
            CTX,
        )
        .unwrap_err();
    assert!(err.to_string().contains("does not hold a pid"), "{err}");
    // A pid file may point at any file: its content never shows.
    assert!(!err.to_string().contains("s3cret"), "{err}");

    // A pid that cannot exist (pids stay below pid_max, at most 2^22).
    let dead = dir.path().join("dead.pid");
    std::fs::write(&dead, "4194304").unwrap();
    let err = faults
        .inject(
            &journal,
            &kill_spec(Some(dead.display().to_string()), None, Signal::Kill),
            CTX,
        )
        .unwrap_err();
    assert_eq!(err.to_string(), "no process with pid 4194304");
    assert!(
        journal.entries().unwrap().is_empty(),
        "nothing journaled for faults that never applied"
    );
}

#[test]
fn refuses_init_and_itself() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    let faults = Faults::new();
    for pid in [1, std::process::id() as i32] {
        let f = dir.path().join(format!("{pid}.pid"));
        std::fs::write(&f, pid.to_string()).unwrap();
        let err = faults
            .inject(
                &journal,
                &kill_spec(Some(f.display().to_string()), None, Signal::Kill),
                CTX,
            )
            .unwrap_err();
        assert!(matches!(err, FaultError::Forbidden { .. }), "{err}");
    }
}
