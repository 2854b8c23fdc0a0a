//! The experiment language as the executor runs it: probe modes land in their phases, parallel
//! groups and pauses, recovery time against a target that recovers after a known delay,
//! guardrails, stopOnFailure, attempts, minScore, rollbacks and the latency statistics. Real
//! processes are paused; the probes hit a real HTTP server whose answers the test controls.
use crate::{
    executor::{payloads, rig, Rig},
    helpers::{assert_well_formed, kinds, proc_state, HttpServer, TargetProc},
};
use faultline_delegate::{executor::RunRequest, outbox::StoredEvent};
use faultline_experiment::events::{self, ProbeCheck, RunFinished, Verdict};
use std::{sync::atomic::Ordering, time::Duration};

fn request(run_id: &str, yaml: &str) -> RunRequest {
    let spec = faultline_experiment::parse_template(yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    RunRequest {
        project: String::new(),
        run_id: run_id.into(),
        template_name: "modes".into(),
        template_version: 1,
        spec,
        dry_run: false,
    }
}

async fn run(r: &Rig, run_id: &str, yaml: &str) -> (Vec<StoredEvent>, RunFinished) {
    let req = request(run_id, yaml);
    let weights = req.spec.weights();
    r.exec.start(req).unwrap();
    tokio::time::timeout(Duration::from_secs(20), r.exec.wait(run_id))
        .await
        .expect("the run ends by itself");
    let events = r.outbox.history(run_id).unwrap();
    let fin = assert_well_formed(&events, &weights);
    (events, fin)
}

fn checks_with_seq(events: &[StoredEvent]) -> Vec<(u64, i64, ProbeCheck)> {
    events
        .iter()
        .filter(|e| e.kind == events::PROBE_CHECK)
        .map(|e| {
            (
                e.seq,
                e.at_ms,
                serde_json::from_str(&e.payload_json).unwrap(),
            )
        })
        .collect()
}

fn seq_of(events: &[StoredEvent], kind: &str, nth: usize) -> (u64, i64) {
    let e = events
        .iter()
        .filter(|e| e.kind == kind)
        .nth(nth)
        .unwrap_or_else(|| panic!("no {kind} #{nth}: {:?}", kinds(events)));
    (e.seq, e.at_ms)
}

/// Flips the target's status to `during` once the first fault is applied and back to 200 `after`
/// the last fault event of `kind` was seen.
fn steer(r: &Rig, t: &HttpServer, run_id: &'static str, during: u16, back_after: Option<Duration>) {
    let (outbox, status) = (r.outbox.clone(), t.status.clone());
    tokio::spawn(async move {
        let mut flipped = false;
        for _ in 0..4000 {
            let ev = outbox.history(run_id).unwrap_or_default();
            let k = kinds(&ev);
            if !flipped && k.contains(&events::FAULT_APPLIED) {
                status.store(during, Ordering::SeqCst);
                flipped = true;
            }
            if let (true, Some(wait)) = (k.contains(&events::FAULT_REVERTED), back_after) {
                tokio::time::sleep(wait).await;
                status.store(200, Ordering::SeqCst);
                return;
            }
            if k.contains(&events::RUN_FINISHED) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
}

fn head(recover: &str, extra_hypothesis: &str) -> String {
    format!(
        "apiVersion: faultline.dev/v1\nkind: Experiment\nmetadata: {{name: modes}}\nhypothesis:\n  recoverWithin: {recover}\n{extra_hypothesis}  probes:\n"
    )
}

fn probe(name: &str, url: &str, mode: &str, extra: &str) -> String {
    format!(
        "    - {{name: {name}, http: {{url: \"{url}\"}}, mode: {mode}, interval: 50ms, timeout: 500ms{extra}}}\n"
    )
}

#[tokio::test]
async fn each_mode_checks_in_its_own_phase() {
    let t = HttpServer::start(200).await;
    let p = TargetProc::spawn();
    let mut y = head("2s", "");
    for (name, mode) in [
        ("sot", "sot"),
        ("eot", "eot"),
        ("edge", "edge"),
        ("cont", "continuous"),
        ("chaos", "onChaos"),
    ] {
        y += &probe(name, &t.url, mode, "");
    }
    y += &format!(
        "steps:\n  - {{fault: process-pause, target: {{name: {}}}, duration: 400ms}}\n  - pause: 300ms\n",
        p.name
    );
    let r = rig();
    let (events, fin) = run(&r, "run-modes", &y).await;
    assert_eq!(fin.verdict, Verdict::Passed, "{fin:?}");
    let (applied, applied_at) = seq_of(&events, events::FAULT_APPLIED, 0);
    let (reverted, reverted_at) = seq_of(&events, events::FAULT_REVERTED, 0);
    assert!(reverted_at - applied_at >= 400);
    let pause = seq_of(&events, events::PAUSE_STARTED, 0).0;
    let checks = checks_with_seq(&events);
    let of = |n: &str| -> Vec<(u64, i64, ProbeCheck)> {
        checks.iter().filter(|c| c.2.probe == n).cloned().collect()
    };
    // SOT: exactly one check, before the fault.
    let sot = of("sot");
    assert_eq!(sot.len(), 1);
    assert!(sot[0].0 < applied && sot[0].2.phase == events::Phase::Before);
    // EOT: only after the method (the pause included).
    let eot = of("eot");
    assert!(!eot.is_empty());
    assert!(eot
        .iter()
        .all(|c| c.0 > pause && c.2.phase == events::Phase::After));
    // Edge: one before, and after.
    let edge = of("edge");
    assert_eq!(edge.iter().filter(|c| c.0 < applied).count(), 1);
    assert!(edge
        .iter()
        .any(|c| c.0 > pause && c.2.phase == events::Phase::After));
    assert!(edge.iter().all(|c| c.0 < applied || c.0 > pause));
    // Continuous: before, during the fault, and after it (the pause after the method's only
    // fault is after: no fault is active and none is to come), on until the end of recovery
    // (here immediate: it kept passing through the pause).
    let cont = of("cont");
    for phase in [
        events::Phase::Before,
        events::Phase::During,
        events::Phase::After,
    ] {
        assert!(cont.iter().any(|c| c.2.phase == phase), "{phase:?}");
    }
    // A check keeps the phase it started in: one that started just before the revert may be
    // recorded after the pause began.
    let late: Vec<_> = cont.iter().filter(|c| c.0 > pause).collect();
    assert!(
        late.iter()
            .filter(|c| c.2.phase != events::Phase::After)
            .count()
            <= 1,
        "{late:?}"
    );
    // OnChaos: only while the fault is active, at its interval (400ms / 50ms ~ 8).
    let chaos = of("chaos");
    assert!(chaos.len() >= 4, "{}", chaos.len());
    // Each starts while the fault is active; one that started just before the revert may be
    // recorded just after it (seq is taken when a check ends).
    assert!(chaos.iter().all(|c| c.0 > applied), "{chaos:?}");
    assert!(
        chaos.iter().filter(|c| c.0 > reverted).count() <= 1,
        "{chaos:?}"
    );
    assert!(
        chaos.iter().all(|c| c.2.phase == events::Phase::During),
        "{chaos:?}"
    );
    assert!(chaos
        .iter()
        .all(|c| c.2.mode == "onChaos" && c.2.counts_for == vec![0]));
    assert!(matches!(proc_state(p.pid()), 'S' | 'R'));
}

#[tokio::test]
async fn a_parallel_group_counts_checks_for_every_active_fault_and_ends_with_its_last() {
    let t = HttpServer::start(200).await;
    let (a, b, c) = (
        TargetProc::spawn(),
        TargetProc::spawn(),
        TargetProc::spawn(),
    );
    let y = head("2s", "")
        + &probe("web", &t.url, "continuous", "")
        + &format!(
            "steps:\n  - {{fault: process-pause, target: {{name: {}}}, duration: 200ms, weight: 3}}\n  - parallel:\n      - {{fault: process-pause, target: {{name: {}}}, duration: 250ms, weight: 10}}\n      - {{fault: process-pause, target: {{name: {}}}, duration: 600ms, weight: 2}}\n",
            a.name, b.name, c.name
        );
    let r = rig();
    let (events, fin) = run(&r, "run-par", &y).await;
    assert_eq!(fin.verdict, Verdict::Passed, "{fin:?}");
    let applied: Vec<serde_json::Value> = payloads(&events, events::FAULT_APPLIED);
    let paths: Vec<&str> = applied
        .iter()
        .map(|a| a["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        ["steps[0]", "steps[1].parallel[0]", "steps[1].parallel[1]"]
    );
    let reverted: Vec<serde_json::Value> = payloads(&events, events::FAULT_REVERTED);
    let order: Vec<u64> = reverted
        .iter()
        .map(|r| r["step"].as_u64().unwrap())
        .collect();
    assert_eq!(order, [0, 1, 2], "the short fault of the group ends first");
    let (_, b_on) = seq_of(&events, events::FAULT_APPLIED, 1);
    let (_, c_off) = seq_of(&events, events::FAULT_REVERTED, 2);
    assert!(
        c_off - b_on >= 600,
        "the group lasts as long as its longest fault"
    );
    let counts: Vec<Vec<usize>> = checks_with_seq(&events)
        .into_iter()
        .map(|c| c.2.ordinals())
        .collect();
    assert!(counts.contains(&vec![0]), "{counts:?}");
    assert!(
        counts.contains(&vec![1, 2]),
        "both group faults active: {counts:?}"
    );
    assert!(
        counts.contains(&vec![2]),
        "only the long one left: {counts:?}"
    );
    // Recovery counts for the last group.
    let last: Vec<ProbeCheck> = payloads(&events, events::PROBE_CHECK);
    assert_eq!(last.last().unwrap().counts_for, vec![1, 2]);
    for p in [&a, &b, &c] {
        assert!(matches!(proc_state(p.pid()), 'S' | 'R'));
    }
}

#[tokio::test]
async fn recovery_time_is_measured_from_the_end_of_the_last_fault() {
    // The target keeps failing for 700ms after the fault is reverted.
    let t = HttpServer::start(200).await;
    let p = TargetProc::spawn();
    let y = head("3s", "")
        + &probe("web", &t.url, "eot", "")
        + &format!(
            "steps:\n  - {{fault: process-pause, target: {{name: {}}}, duration: 200ms}}\n",
            p.name
        );
    let r = rig();
    steer(&r, &t, "run-rec", 503, Some(Duration::from_millis(700)));
    let (events, fin) = run(&r, "run-rec", &y).await;
    assert_eq!(fin.verdict, Verdict::Passed, "{fin:?}");
    let ms = fin.recovery_ms.unwrap();
    assert!(
        (650..=950).contains(&ms),
        "recovery took {ms}ms, the target needed 700ms"
    );
    let after: Vec<ProbeCheck> = payloads(&events, events::PROBE_CHECK);
    assert!(
        after.iter().filter(|c| !c.ok).count() >= 5,
        "eot polls while failing"
    );
    assert!(after.last().unwrap().ok);

    // The same target with a shorter window fails the run.
    let y = y.replace("recoverWithin: 3s", "recoverWithin: 300ms");
    steer(&r, &t, "run-rec2", 503, Some(Duration::from_millis(700)));
    let (_, fin) = run(&r, "run-rec2", &y).await;
    assert_eq!(fin.verdict, Verdict::Failed);
    assert!(
        fin.reason
            .starts_with("did not recover within 300ms (after process-"),
        "{}",
        fin.reason
    );
    assert_eq!(fin.recovery_ms, None);
}

#[tokio::test]
async fn a_guardrail_aborts_reverts_and_still_runs_the_rollbacks() {
    let t = HttpServer::start(200).await;
    let p = TargetProc::spawn();
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("rolled-back");
    let y = head("2s", "")
        + &probe("web", &t.url, "continuous", "")
        + &format!(
            "steps:\n  - {{fault: process-pause, target: {{name: {}}}, duration: 20s}}\nabortWhen:\n  - {{probe: web, consecutiveFailures: 3}}\nrollbacks:\n  - command: {{run: [touch, \"{}\"]}}\n  - http: {{url: \"http://127.0.0.1:1/never\"}}\n    timeout: 1s\n",
            p.name,
            marker.display()
        );
    let r = rig();
    steer(&r, &t, "run-guard", 503, None);
    let started = std::time::Instant::now();
    let (events, fin) = run(&r, "run-guard", &y).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(fin.verdict, Verdict::Aborted, "{fin:?}");
    assert!(
        fin.reason
            .starts_with("guardrail: probe web failed 3 checks in a row"),
        "{}",
        fin.reason
    );
    let tripped: Vec<serde_json::Value> = payloads(&events, events::GUARDRAIL_TRIPPED);
    assert_eq!(tripped[0]["consecutiveFailures"], 3);
    assert!(kinds(&events).contains(&events::FAULT_REVERTED));
    assert!(
        matches!(proc_state(p.pid()), 'S' | 'R'),
        "the paused process runs again"
    );
    assert!(marker.exists(), "the command rollback ran");
    let rb: Vec<events::RollbackDone> = payloads(&events, events::ROLLBACK_DONE);
    assert_eq!(rb.len(), 2);
    assert!(rb[0].ok, "{rb:?}");
    assert!(!rb[1].ok && rb[1].detail.contains("127.0.0.1:1"), "{rb:?}");
    assert!(r.journal.entries().unwrap().is_empty());
}

#[tokio::test]
async fn stop_on_failure_ends_the_run_at_once() {
    let t = HttpServer::start(200).await;
    let p = TargetProc::spawn();
    let y = head("2s", "")
        + &probe("web", &t.url, "onChaos", ", stopOnFailure: true")
        + &format!(
            "steps:\n  - {{fault: process-pause, target: {{name: {}}}, duration: 20s}}\n",
            p.name
        );
    let r = rig();
    steer(&r, &t, "run-stop", 500, None);
    let started = std::time::Instant::now();
    let (_, fin) = run(&r, "run-stop", &y).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(fin.verdict, Verdict::Failed, "{fin:?}");
    assert!(
        fin.reason.contains("(stopOnFailure)") && fin.reason.contains("500"),
        "{}",
        fin.reason
    );
    assert!(matches!(proc_state(p.pid()), 'S' | 'R'));
}

#[tokio::test]
async fn a_failed_on_chaos_check_fails_the_run_but_a_continuous_one_only_lowers_the_score() {
    let t = HttpServer::start(200).await;
    let p = TargetProc::spawn();
    let steps = format!(
        "steps:\n  - {{fault: process-pause, target: {{name: {}}}, duration: 300ms}}\n",
        p.name
    );
    let r = rig();
    let y = head("2s", "") + &probe("web", &t.url, "onChaos", "") + &steps;
    steer(&r, &t, "run-onchaos", 503, Some(Duration::ZERO));
    let (_, fin) = run(&r, "run-onchaos", &y).await;
    assert_eq!(fin.verdict, Verdict::Failed, "{fin:?}");
    assert!(
        fin.reason
            .starts_with("the hypothesis did not hold during chaos: web: 503"),
        "{}",
        fin.reason
    );

    let y = head("2s", "") + &probe("web", &t.url, "continuous", "") + &steps;
    steer(&r, &t, "run-cont", 503, Some(Duration::ZERO));
    let (_, fin) = run(&r, "run-cont", &y).await;
    assert_eq!(fin.verdict, Verdict::Passed, "{fin:?}");
    assert!(fin.score.unwrap() < 100.0);

    // ... unless minScore says otherwise.
    let y = head("2s", "  minScore: 99\n") + &probe("web", &t.url, "continuous", "") + &steps;
    steer(&r, &t, "run-min", 503, Some(Duration::ZERO));
    let (_, fin) = run(&r, "run-min", &y).await;
    assert_eq!(fin.verdict, Verdict::Failed, "{fin:?}");
    assert!(
        fin.reason.contains("is below minScore 99"),
        "{}",
        fin.reason
    );
}

#[tokio::test]
async fn attempts_retry_a_failing_check_and_initial_delay_waits() {
    let t = HttpServer::start(200).await;
    let p = TargetProc::spawn();
    t.fail_next.store(2, Ordering::SeqCst);
    let y = head("2s", "")
        + &probe("gate", &t.url, "sot", ", attempts: 3")
        + &probe("late", &t.url, "eot", ", initialDelay: 400ms")
        + &format!(
            "steps:\n  - {{fault: process-pause, target: {{name: {}}}, duration: 100ms}}\n",
            p.name
        );
    let r = rig();
    let (events, fin) = run(&r, "run-attempts", &y).await;
    assert_eq!(fin.verdict, Verdict::Passed, "{fin:?}");
    let checks = checks_with_seq(&events);
    let gate = checks.iter().find(|c| c.2.probe == "gate").unwrap();
    assert!(gate.2.ok && gate.2.attempts == 3, "{gate:?}");
    assert!(
        gate.2.detail.ends_with("(attempt 3 of 3)"),
        "{}",
        gate.2.detail
    );
    let (_, reverted_at) = seq_of(&events, events::FAULT_REVERTED, 0);
    let late = checks.iter().find(|c| c.2.probe == "late").unwrap();
    assert!(
        late.1 - reverted_at >= 380,
        "first eot check {}ms after the revert",
        late.1 - reverted_at
    );
    assert!(fin.recovery_ms.unwrap() >= 380);
}

#[tokio::test]
async fn the_latency_shift_is_tested_for_significance() {
    let t = HttpServer::start(200).await;
    let p = TargetProc::spawn();
    let y = head("2s", "  baseline: 600ms\n")
        + &probe("web", &t.url, "continuous", "")
        + &format!(
            "steps:\n  - {{fault: process-pause, target: {{name: {}}}, duration: 900ms}}\n",
            p.name
        );
    let r = rig();
    // Slow answers while the fault is active, as a paused dependency would cause.
    let (outbox, delay) = (r.outbox.clone(), t.delay_ms.clone());
    tokio::spawn(async move {
        for _ in 0..4000 {
            let k: Vec<String> = outbox
                .history("run-stats")
                .unwrap_or_default()
                .into_iter()
                .map(|e| e.kind)
                .collect();
            if k.iter().any(|k| k == events::FAULT_REVERTED) {
                delay.store(0, Ordering::SeqCst);
                return;
            }
            if k.iter().any(|k| k == events::FAULT_APPLIED) {
                delay.store(60, Ordering::SeqCst);
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
    let (_, fin) = run(&r, "run-stats", &y).await;
    assert_eq!(fin.verdict, Verdict::Passed, "{fin:?}");
    let s = &fin.latency[0];
    assert_eq!(s.probe, "web");
    assert!(s.control_n >= 5 && s.chaos_n >= 5, "{s:?}");
    assert!(s.chaos_median_ms.unwrap() >= 55.0, "{s:?}");
    assert!(s.significant && s.p_value.unwrap() < 0.01, "{s:?}");
    assert!(s.summary.starts_with("latency rose from "), "{}", s.summary);
}
