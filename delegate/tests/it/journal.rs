//! The journal survives a "crash": a fault applied by one process is reverted by the next start.
use crate::helpers::{proc_state, wait_until, TargetProc};
use faultline_delegate::{
    faults::{Faults, RunCtx},
    journal::Journal,
};
use faultline_experiment::faults::{FaultSpec, PauseParams, ProcessTarget};

#[test]
fn startup_recovery_reverts_a_pause_left_by_a_crash() {
    let target = TargetProc::spawn();
    let state = tempfile::tempdir().unwrap();
    let faults = Faults::new();
    let spec = FaultSpec::ProcessPause {
        target: ProcessTarget {
            name: Some(target.name.clone()),
            ..Default::default()
        },
        params: PauseParams::default(),
    };
    {
        let journal = Journal::open(&state.path().join("journal")).unwrap();
        let applied = faults
            .inject(
                &journal,
                &spec,
                RunCtx {
                    run_id: "run-1",
                    step: 0,
                },
            )
            .unwrap();
        assert_eq!(applied.processes.len(), 1);
        assert_eq!(applied.processes[0].pid, target.pid());
        // Signals are delivered asynchronously.
        wait_until(std::time::Duration::from_secs(5), || {
            proc_state(target.pid()) == 'T'
        });
        assert!(state.path().join("journal/run-1-0.json").exists());
        // The process "crashes" here: the journal entry is all that is left.
    }
    let journal = Journal::open(&state.path().join("journal")).unwrap();
    assert_eq!(journal.entries().unwrap().len(), 1);
    assert_eq!(journal.recover(&faults).unwrap(), 1);
    wait_until(std::time::Duration::from_secs(5), || {
        matches!(proc_state(target.pid()), 'S' | 'R')
    });
    assert!(journal.entries().unwrap().is_empty());
    assert!(!state.path().join("journal/run-1-0.json").exists());
}

#[test]
fn recovery_of_a_fault_whose_process_is_gone_just_clears_the_entry() {
    let state = tempfile::tempdir().unwrap();
    let faults = Faults::new();
    let journal = Journal::open(state.path()).unwrap();
    let mut target = TargetProc::spawn();
    let spec = FaultSpec::ProcessPause {
        target: ProcessTarget {
            name: Some(target.name.clone()),
            ..Default::default()
        },
        params: PauseParams::default(),
    };
    faults
        .inject(
            &journal,
            &spec,
            RunCtx {
                run_id: "run-2",
                step: 3,
            },
        )
        .unwrap();
    target.child.kill().unwrap();
    target.wait_for_death(std::time::Duration::from_secs(5));
    assert_eq!(journal.recover(&faults).unwrap(), 1);
    assert!(journal.entries().unwrap().is_empty());
}
