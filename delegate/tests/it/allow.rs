//! The delegate's allow-list against real processes: what it does not list is refused before
//! anything is applied (at assignment, and again by the name a pid file resolves to), it is not
//! advertised, and a journalled fault is still reverted after the list changed.
use crate::helpers::{proc_state, wait_until, HttpServer, TargetProc};
use faultline_delegate::{
    allow::{AllowList, Entry},
    executor::{Executor, RunRequest, StartError},
    faults::{Faults, RunCtx},
    journal::Journal,
    outbox::Outbox,
};
use faultline_experiment::{
    events::{self, RunFinished, Verdict},
    faults::{FaultSpec, PauseParams, ProcessTarget},
};
use std::{sync::Arc, time::Duration};

fn allow(entries: &[&str]) -> AllowList {
    let e: Vec<Entry> = entries.iter().map(|s| s.parse().unwrap()).collect();
    AllowList::from_entries(&e)
}

fn executor(dir: &std::path::Path, entries: &[&str]) -> (Executor, Arc<Outbox>, Arc<Journal>) {
    let allow = self::allow(entries);
    let outbox = Arc::new(Outbox::open(&dir.join("runs")).unwrap());
    let journal = Arc::new(Journal::open(&dir.join("journal")).unwrap());
    // The hub side of the channel is not needed here; keep it open for the test's length.
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    std::mem::forget(rx);
    let exec = Executor::new(
        outbox.clone(),
        journal.clone(),
        Arc::new(Faults::with_allow(allow)),
        Arc::new(crate::helpers::probes(entries)),
        tx,
    );
    (exec, outbox, journal)
}

fn request(run_id: &str, url: &str, target: &str) -> RunRequest {
    let yaml = format!(
        "apiVersion: faultline.dev/v1\nkind: Experiment\nmetadata: {{name: allow}}\nhypothesis:\n  recoverWithin: 2s\n  probes:\n    - {{name: web, http: {{url: \"{url}\"}}, interval: 50ms}}\nsteps:\n  - {{fault: process-pause, target: {target}, duration: 300ms}}\n"
    );
    RunRequest {
        project: String::new(),
        run_id: run_id.into(),
        template_name: "allow".into(),
        template_version: 1,
        spec: faultline_experiment::parse_template(&yaml).unwrap(),
        dry_run: false,
    }
}

#[tokio::test]
async fn a_process_the_list_does_not_name_is_refused_before_anything_runs() {
    let server = HttpServer::start(200).await;
    let (ok, other) = (TargetProc::spawn(), TargetProc::spawn());
    let dir = tempfile::tempdir().unwrap();
    let entry = format!("process={}", ok.name);
    let (exec, outbox, _) = executor(dir.path(), &[entry.as_str()]);
    let refused = exec.start(request(
        "run-no",
        &server.url,
        &format!("{{name: {}}}", other.name),
    ));
    match refused {
        Err(StartError::Rejected(why)) => assert_eq!(
            why,
            format!("steps[0].target.name: process {} is not allowed: refused by this delegate's allow-list (hint: the delegate's operator must allow it: --allow process={})", other.name, other.name)
        ),
        other => panic!("{other:?}"),
    }
    assert!(
        outbox.history("run-no").unwrap_or_default().is_empty(),
        "nothing ran"
    );
    assert!(matches!(proc_state(other.pid()), 'S' | 'R'));

    // The listed one runs.
    exec.start(request(
        "run-yes",
        &server.url,
        &format!("{{name: {}}}", ok.name),
    ))
    .unwrap();
    exec.wait("run-yes").await;
    let fin: RunFinished = serde_json::from_str(
        &outbox
            .history("run-yes")
            .unwrap()
            .last()
            .unwrap()
            .payload_json,
    )
    .unwrap();
    assert_eq!(fin.verdict, Verdict::Passed, "{fin:?}");
}

#[tokio::test]
async fn a_pid_file_is_checked_by_the_process_it_points_to() {
    let server = HttpServer::start(200).await;
    let (ok, other) = (TargetProc::spawn(), TargetProc::spawn());
    let dir = tempfile::tempdir().unwrap();
    // The pid file is under an allowed path, but names a process the list does not.
    let entries = [
        format!("process={}", ok.name),
        format!("path={}", other.dir.path().display()),
    ];
    let entries: Vec<&str> = entries.iter().map(|s| s.as_str()).collect();
    let (exec, outbox, journal) = executor(dir.path(), &entries);
    let target = format!("{{pidFile: {}}}", other.pid_file().display());
    exec.start(request("run-pf", &server.url, &target)).unwrap();
    exec.wait("run-pf").await;
    let evs = outbox.history("run-pf").unwrap();
    assert!(!evs.iter().any(|e| e.kind == events::FAULT_APPLIED));
    let fin: RunFinished = serde_json::from_str(&evs.last().unwrap().payload_json).unwrap();
    assert_eq!(fin.verdict, Verdict::Error);
    assert!(
        fin.reason.ends_with(&format!(
            "process {} (pid {}) is not allowed on this delegate",
            other.name,
            other.pid()
        )),
        "{}",
        fin.reason
    );
    assert!(matches!(proc_state(other.pid()), 'S' | 'R'));
    assert!(
        journal.entries().unwrap().is_empty(),
        "refused before the journal"
    );

    // A pid file outside every allowed path is refused at assignment.
    let outside = format!("{{pidFile: {}}}", ok.pid_file().display());
    assert!(matches!(
        exec.start(request("run-out", &server.url, &outside)),
        Err(StartError::Rejected(why)) if why.contains("is not under an allowed path")
    ));
}

#[test]
fn only_allowed_kinds_are_advertised_but_journalled_faults_are_still_reverted() {
    let faults = Faults::with_allow(allow(&["fault=process-kill"]));
    assert_eq!(faults.capabilities(), vec!["process-kill".to_string()]);

    // A pause journalled by a delegate that allowed it...
    let target = TargetProc::spawn();
    let state = tempfile::tempdir().unwrap();
    let spec = FaultSpec::ProcessPause {
        target: ProcessTarget {
            name: Some(target.name.clone()),
            ..Default::default()
        },
        params: PauseParams::default(),
    };
    let ctx = RunCtx {
        run_id: "run-j",
        step: 0,
    };
    {
        let journal = Journal::open(state.path()).unwrap();
        assert!(
            faults.inject(&journal, &spec, ctx).is_err(),
            "not allowed now"
        );
        Faults::new().inject(&journal, &spec, ctx).unwrap();
        wait_until(Duration::from_secs(5), || proc_state(target.pid()) == 'T');
    }
    // ...is reverted at start by one that no longer allows it.
    let journal = Journal::open(state.path()).unwrap();
    assert_eq!(journal.recover(&faults).unwrap(), 1);
    wait_until(Duration::from_secs(5), || {
        matches!(proc_state(target.pid()), 'S' | 'R')
    });
}
