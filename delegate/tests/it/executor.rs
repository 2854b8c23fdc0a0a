//! The executor end to end, without a hub: real HTTP server, real processes, events read back
//! from the outbox.
use crate::helpers::{assert_well_formed, eventually, kinds, proc_state, HttpServer, TargetProc};
use faultline_delegate::{
    deadman,
    executor::{Executor, RunRequest, StartError},
    faults::Faults,
    journal::Journal,
    outbox::{Outbox, StoredEvent},
};
use faultline_experiment::{
    events::{self, FaultEvent, ProbeCheck, Verdict},
    Dur,
};
use faultline_proto::v1::{self as pb, delegate_message::Msg};
use std::{
    sync::{atomic::Ordering, Arc},
    time::{Duration, Instant},
};
use tokio::sync::mpsc;

pub struct Rig {
    pub _dir: tempfile::TempDir,
    pub outbox: Arc<Outbox>,
    pub journal: Arc<Journal>,
    pub exec: Executor,
    pub to_hub: mpsc::UnboundedReceiver<Msg>,
}

pub fn rig() -> Rig {
    let dir = tempfile::tempdir().unwrap();
    rig_in(dir)
}

fn rig_in(dir: tempfile::TempDir) -> Rig {
    let outbox = Arc::new(Outbox::open(&dir.path().join("runs")).unwrap());
    let journal = Arc::new(Journal::open(&dir.path().join("journal")).unwrap());
    let (tx, to_hub) = mpsc::unbounded_channel();
    let exec = Executor::new(
        outbox.clone(),
        journal.clone(),
        Arc::new(Faults::new()),
        Arc::new(crate::helpers::probes(&["command=*"])),
        tx,
    );
    Rig {
        _dir: dir,
        outbox,
        journal,
        exec,
        to_hub,
    }
}

fn template(url: &str, recover_within: &str, steps: &str) -> String {
    format!(
        r#"
apiVersion: faultline.dev/v1
kind: Experiment
metadata: {{name: it-experiment}}
hypothesis:
  probes:
    - name: web-ok
      http: {{url: "{url}", expect: {{status: 200}}}}
      interval: 50ms
      timeout: 500ms
  recoverWithin: {recover_within}
steps:
{steps}"#
    )
}

fn request(run_id: &str, yaml: &str) -> RunRequest {
    let spec = faultline_experiment::parse_template(yaml).unwrap();
    RunRequest {
        project: String::new(),
        run_id: run_id.into(),
        template_name: "it-experiment".into(),
        template_version: 3,
        spec,
        dry_run: false,
    }
}

fn drain(rx: &mut mpsc::UnboundedReceiver<Msg>) -> Vec<Msg> {
    let mut out = Vec::new();
    while let Ok(m) = rx.try_recv() {
        out.push(m);
    }
    out
}

pub fn payloads<T: serde::de::DeserializeOwned>(events: &[StoredEvent], kind: &str) -> Vec<T> {
    events
        .iter()
        .filter(|e| e.kind == kind)
        .map(|e| serde_json::from_str(&e.payload_json).unwrap())
        .collect()
}

#[tokio::test]
async fn a_run_goes_through_every_phase_and_scores_what_the_checks_say() {
    let server = HttpServer::start(200).await;
    let paused = TargetProc::spawn();
    let mut killed = TargetProc::spawn();
    let steps = format!(
        "  - {{fault: process-pause, target: {{name: {}}}, duration: 300ms, weight: 10}}\n  - {{fault: process-kill, target: {{name: {}}}, duration: 200ms, weight: 5}}\n",
        paused.name, killed.name
    );
    let mut r = rig();
    let run = "run-e2e";
    // The service is "down" while the pause holds, as a paused server would be.
    let (outbox, status) = (r.outbox.clone(), server.status.clone());
    let flipper = tokio::spawn(async move {
        loop {
            let ev = outbox.history(run).unwrap_or_default();
            let k = kinds(&ev);
            if k.contains(&events::FAULT_REVERTED) {
                status.store(200, Ordering::SeqCst);
                return;
            }
            if k.contains(&events::FAULT_APPLIED) {
                status.store(503, Ordering::SeqCst);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    let t0 = Instant::now();
    r.exec
        .start(request(run, &template(&server.url, "2s", &steps)))
        .unwrap();
    assert_eq!(r.exec.running(), vec![run.to_string()]);
    assert_eq!(r.exec.inflight(), vec![run.to_string()]);
    r.exec.wait(run).await;
    flipper.await.unwrap();
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());

    let events = r.outbox.history(run).unwrap();
    let fin = assert_well_formed(&events, &[10, 5]);
    assert_eq!(fin.verdict, Verdict::Passed, "{fin:?}");
    // The reason names what recovery is measured from: the kill, the method's last fault.
    assert!(fin.reason.starts_with("back "), "{}", fin.reason);
    let from = fin.recovery_from.as_ref().expect("a recovery reference");
    assert_eq!(
        (from.event.as_str(), from.what.as_str()),
        (events::FAULT_APPLIED, "process-kill"),
        "{fin:?}"
    );
    assert!(
        fin.reason
            .contains(&format!("after process-kill ({}) at +", from.path)),
        "{}",
        fin.reason
    );
    assert!(fin.recovery_ms.is_some());
    let checks: Vec<ProbeCheck> = payloads(&events, events::PROBE_CHECK);
    assert!(
        checks.iter().any(|c| c.step == 0 && !c.ok),
        "some checks fail during the pause"
    );
    assert!(fin.score.unwrap() < 100.0, "{fin:?}");
    assert_eq!(checks[0].phase, events::Phase::Before);
    assert!(
        checks
            .iter()
            .filter(|c| c.phase == events::Phase::During)
            .count()
            >= 3
    );
    // The kill is the last fault: recovery counts from the kill, so passing checks in its watch
    // window already count as recovered.
    let recovered: Vec<serde_json::Value> = payloads(&events, events::RUN_RECOVERED);
    assert!(
        recovered[0]["recoveryMs"].as_u64().unwrap() <= 200,
        "{recovered:?}"
    );
    assert!(checks
        .iter()
        .all(|c| c.mode == "continuous" && c.attempts == 1));

    // The kill cannot be undone: its window closes with fault.ended once its watch is over.
    let all = kinds(&events);
    let kill = all
        .iter()
        .rposition(|k| *k == events::FAULT_APPLIED)
        .unwrap();
    let ended: Vec<usize> = (0..all.len())
        .filter(|i| all[*i] == events::FAULT_ENDED)
        .collect();
    assert!(ended.len() == 1 && ended[0] > kill, "{all:?}");
    // The timeline, with consecutive probe checks folded, and without a check that a loaded
    // machine let land between the recovery and the end of the kill's watch.
    let recovered_at = all.iter().position(|k| *k == events::RUN_RECOVERED);
    let mut timeline: Vec<&str> = all
        .into_iter()
        .enumerate()
        .filter(|(i, k)| {
            *k != events::FAULT_ENDED
                && !(*k == events::PROBE_CHECK && recovered_at.is_some_and(|r| *i > r))
        })
        .map(|(_, k)| k)
        .collect();
    timeline.dedup();
    assert_eq!(
        timeline,
        vec![
            events::RUN_STARTED,
            events::PROBE_CHECK,
            events::FAULT_APPLIED,
            events::PROBE_CHECK,
            events::FAULT_REVERTED,
            events::FAULT_APPLIED,
            events::PROBE_CHECK,
            events::RUN_RECOVERED,
            events::RUN_FINISHED
        ]
    );
    let applied: Vec<FaultEvent> = payloads(&events, events::FAULT_APPLIED);
    assert_eq!(applied[0].fault, "process-pause");
    assert_eq!(
        (applied[1].step, applied[1].fault.as_str()),
        (1, "process-kill")
    );
    let started: serde_json::Value = events[0].payload();
    assert_eq!(
        started,
        serde_json::json!({"template": "it-experiment", "version": 3})
    );

    assert_eq!(killed.wait_for_death(Duration::from_secs(2)), Some(9));
    assert!(matches!(proc_state(paused.pid()), 'S' | 'R'));
    assert!(r.journal.entries().unwrap().is_empty());
    let msgs = drain(&mut r.to_hub);
    assert!(
        matches!(&msgs[..], [Msg::RunAccepted(a)] if a.run_id == run),
        "{msgs:?}"
    );
    // A second assignment of the same run is ignored.
    assert_eq!(
        r.exec
            .start(request(run, &template(&server.url, "2s", &steps))),
        Err(StartError::Duplicate)
    );
}

#[tokio::test]
async fn steady_state_failure_injects_nothing() {
    let server = HttpServer::start(500).await;
    let target = TargetProc::spawn();
    let steps = format!(
        "  - {{fault: process-pause, target: {{name: {}}}, duration: 5s}}\n",
        target.name
    );
    let r = rig();
    r.exec
        .start(request("run-before", &template(&server.url, "1s", &steps)))
        .unwrap();
    r.exec.wait("run-before").await;
    let events = r.outbox.history("run-before").unwrap();
    let fin = assert_well_formed(&events, &[5]);
    assert_eq!(fin.verdict, Verdict::Failed);
    assert!(
        fin.reason.starts_with(
            "steady state did not hold before the faults: web-ok: 500 Internal Server Error in "
        ),
        "{}",
        fin.reason
    );
    assert_eq!(fin.score, Some(0.0));
    assert_eq!(
        kinds(&events),
        vec![
            events::RUN_STARTED,
            events::PROBE_CHECK,
            events::RUN_FINISHED
        ]
    );
    assert!(matches!(proc_state(target.pid()), 'S' | 'R'));
}

#[tokio::test]
async fn no_recovery_within_the_window_fails_the_run() {
    let server = HttpServer::start(200).await;
    let target = TargetProc::spawn();
    let steps = format!(
        "  - {{fault: process-pause, target: {{name: {}}}, duration: 100ms}}\n",
        target.name
    );
    let r = rig();
    let (outbox, status) = (r.outbox.clone(), server.status.clone());
    tokio::spawn(async move {
        while !kinds(&outbox.history("run-slow").unwrap_or_default())
            .contains(&events::FAULT_APPLIED)
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        status.store(503, Ordering::SeqCst);
    });
    r.exec
        .start(request("run-slow", &template(&server.url, "300ms", &steps)))
        .unwrap();
    r.exec.wait("run-slow").await;
    let events = r.outbox.history("run-slow").unwrap();
    let fin = assert_well_formed(&events, &[5]);
    assert_eq!(fin.verdict, Verdict::Failed);
    assert!(
        fin.reason
            .starts_with("did not recover within 300ms (after process-"),
        "{}",
        fin.reason
    );
    assert_eq!(fin.recovery_ms, None);
    assert!(!kinds(&events).contains(&events::RUN_RECOVERED));
    let after = payloads::<ProbeCheck>(&events, events::PROBE_CHECK)
        .into_iter()
        .filter(|c| c.phase == events::Phase::After)
        .count();
    assert!(
        (2..=9).contains(&after),
        "about one check per 50ms for 300ms, got {after}"
    );
}

#[tokio::test]
async fn a_fault_that_cannot_be_applied_ends_in_error() {
    let server = HttpServer::start(200).await;
    let target = TargetProc::spawn();
    let steps = format!(
        "  - {{fault: process-pause, target: {{name: {}}}, duration: 100ms}}\n  - {{fault: process-kill, target: {{name: fl-missing}}}}\n",
        target.name
    );
    let r = rig();
    r.exec
        .start(request("run-err", &template(&server.url, "1s", &steps)))
        .unwrap();
    r.exec.wait("run-err").await;
    let events = r.outbox.history("run-err").unwrap();
    let fin = assert_well_formed(&events, &[5, 5]);
    assert_eq!(fin.verdict, Verdict::Error);
    assert_eq!(
        fin.reason,
        "steps[1] (process-kill) could not be applied: no process named fl-missing"
    );
    assert!(matches!(proc_state(target.pid()), 'S' | 'R'));
    assert!(r.journal.entries().unwrap().is_empty());
}

#[tokio::test]
async fn abort_reverts_at_once_and_confirms() {
    let server = HttpServer::start(200).await;
    let target = TargetProc::spawn();
    let steps = format!(
        "  - {{fault: process-pause, target: {{name: {}}}, duration: 30s}}\n",
        target.name
    );
    let mut r = rig();
    r.exec
        .start(request("run-abort", &template(&server.url, "1s", &steps)))
        .unwrap();
    eventually(Duration::from_secs(5), || proc_state(target.pid()) == 'T').await;
    let t0 = Instant::now();
    r.exec.abort("run-abort", "aborted by it-test").await;
    assert!(t0.elapsed() < Duration::from_secs(1));
    assert!(matches!(proc_state(target.pid()), 'S' | 'R'));
    assert!(r.journal.entries().unwrap().is_empty());
    assert!(r.exec.running().is_empty());
    let events = r.outbox.history("run-abort").unwrap();
    let fin = assert_well_formed(&events, &[5]);
    assert_eq!(fin.verdict, Verdict::Aborted);
    assert_eq!(fin.reason, "aborted by it-test");
    let k = kinds(&events);
    let tail = &k[k.len() - 3..];
    assert_eq!(
        tail,
        [
            events::RUN_ABORTED,
            events::FAULT_REVERTED,
            events::RUN_FINISHED
        ]
    );
    let msgs = drain(&mut r.to_hub);
    assert!(
        matches!(msgs.last(), Some(Msg::Aborted(a)) if a.run_id == "run-abort"),
        "{msgs:?}"
    );
    // Aborting again, or aborting something unknown, only confirms.
    r.exec.abort("run-abort", "again").await;
    r.exec.abort("never-seen", "").await;
    let msgs = drain(&mut r.to_hub);
    assert_eq!(msgs.len(), 2);
    assert!(msgs.iter().all(|m| matches!(m, Msg::Aborted(_))));
    assert_eq!(
        r.outbox.history("run-abort").unwrap().len(),
        events.len(),
        "no new events"
    );
}

#[tokio::test]
async fn bad_assignments_are_rejected_with_a_reason() {
    let mut r = rig();
    r.exec.assign(pb::AssignRun {
        project: String::new(),
        run_id: "run-bad".into(),
        spec_json: "{not json".into(),
        ..Default::default()
    });
    r.exec.assign(pb::AssignRun {
        project: String::new(),
        run_id: "../../etc".into(),
        spec_json: "{}".into(),
        ..Default::default()
    });
    let msgs = drain(&mut r.to_hub);
    assert_eq!(msgs.len(), 2);
    for m in msgs {
        let Msg::RunRejected(rej) = m else {
            panic!("{m:?}")
        };
        assert!(
            rej.reason.starts_with("invalid spec") || rej.reason.starts_with("invalid run id"),
            "{}",
            rej.reason
        );
    }
    assert!(r.outbox.unsettled_runs().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_interrupted_by_a_restart_is_finished_as_error() {
    let dir = tempfile::tempdir().unwrap();
    let server = HttpServer::start(200).await;
    let target = TargetProc::spawn();
    let steps = format!(
        "  - {{fault: process-pause, target: {{name: {}}}, duration: 30s}}\n",
        target.name
    );
    let path = dir.path().to_path_buf();
    // First life: the run starts and pauses the target; then the process "dies" (the task is
    // dropped with the runtime, nothing reverts).
    let state = path.join("state");
    std::fs::create_dir_all(&state).unwrap();
    let state2 = state.clone();
    let url = server.url.clone();
    let target_pid = target.pid();
    tokio::task::spawn_blocking(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let outbox = Arc::new(Outbox::open(&state2.join("runs")).unwrap());
            let journal = Arc::new(Journal::open(&state2.join("journal")).unwrap());
            let (tx, _rx) = mpsc::unbounded_channel();
            let exec = Executor::new(
                outbox,
                journal,
                Arc::new(Faults::new()),
                Arc::new(crate::helpers::probes(&["command=*"])),
                tx,
            );
            exec.start(request("run-crash", &template(&url, "1s", &steps)))
                .unwrap();
            while proc_state(target_pid) != 'T' {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            tokio::time::sleep(Duration::from_millis(120)).await;
        });
        drop(rt);
    })
    .await
    .unwrap();
    assert_eq!(
        proc_state(target.pid()),
        'T',
        "still paused after the crash"
    );

    // Second life: journal recovery, then the interrupted run gets its final event.
    let outbox = Arc::new(Outbox::open(&state.join("runs")).unwrap());
    let journal = Arc::new(Journal::open(&state.join("journal")).unwrap());
    let faults = Arc::new(Faults::new());
    assert_eq!(journal.recover(&faults).unwrap(), 1);
    assert!(matches!(proc_state(target.pid()), 'S' | 'R'));
    let (tx, _rx) = mpsc::unbounded_channel();
    let exec = Executor::new(
        outbox.clone(),
        journal,
        faults,
        Arc::new(crate::helpers::probes(&["command=*"])),
        tx,
    );
    assert_eq!(exec.finish_interrupted().unwrap(), 1);
    assert_eq!(
        exec.inflight(),
        vec!["run-crash".to_string()],
        "unacked events keep it in flight"
    );
    let events = outbox.history("run-crash").unwrap();
    let fin = assert_well_formed(&events, &[5]);
    assert_eq!(fin.verdict, Verdict::Error);
    assert_eq!(fin.reason, "delegate restarted mid-run; faults reverted");
    assert!(
        fin.checks_total >= 2,
        "checks from before the crash count: {fin:?}"
    );
    // Known from its files: a repeated assignment is ignored, and it is not finished twice.
    assert_eq!(exec.finish_interrupted().unwrap(), 0);
    let again = request(
        "run-crash",
        &template(
            &server.url,
            "1s",
            "  - {fault: process-kill, target: {name: x}}\n",
        ),
    );
    assert_eq!(exec.start(again), Err(StartError::Duplicate));
    // Once the hub has everything, the files go.
    outbox.ack("run-crash", events.len() as u64);
    assert!(exec.inflight().is_empty());
    assert_eq!(std::fs::read_dir(state.join("runs")).unwrap().count(), 0);
}

#[tokio::test]
async fn the_dead_man_stops_runs_when_the_hub_is_gone_too_long() {
    let server = HttpServer::start(200).await;
    let target = TargetProc::spawn();
    let steps = format!(
        "  - {{fault: process-pause, target: {{name: {}}}, duration: 30s}}\n",
        target.name
    );
    let mut r = rig();
    let (link_tx, link_rx) = tokio::sync::watch::channel(None);
    let watchdog = tokio::spawn(deadman::watch(
        r.exec.clone(),
        link_rx,
        Dur::from_millis(300),
    ));
    r.exec
        .start(request("run-dm", &template(&server.url, "1s", &steps)))
        .unwrap();
    eventually(Duration::from_secs(5), || proc_state(target.pid()) == 'T').await;
    // The hub goes away.
    let t0 = Instant::now();
    link_tx.send_replace(Some(tokio::time::Instant::now()));
    r.exec.wait("run-dm").await;
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(290) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
    assert!(matches!(proc_state(target.pid()), 'S' | 'R'));
    let events = r.outbox.history("run-dm").unwrap();
    let fin = assert_well_formed(&events, &[5]);
    assert_eq!(fin.verdict, Verdict::Error);
    assert_eq!(
        fin.reason,
        "lost the hub for longer than the dead-man timeout (300ms); faults reverted"
    );
    assert!(kinds(&events).contains(&events::RUN_ABORTED));
    let msgs = drain(&mut r.to_hub);
    assert!(
        !msgs.iter().any(|m| matches!(m, Msg::Aborted(_))),
        "nobody asked for an abort"
    );
    watchdog.abort();
}
