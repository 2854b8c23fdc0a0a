//! A run from startRun to the last stored event, and abort.
use crate::{assert_complete, expected_score};
use faultline_e2e::{proc_state, template, Target, World, TERMINAL};
use std::time::Duration;

#[tokio::test]
async fn process_kill_run_end_to_end() {
    let w = World::new().await.unwrap();
    let target = Target::start(w.dir.path()).await.unwrap();
    let _d = w.delegate("edge-1", &["env=test"], &[]).await.unwrap();
    let yaml = template(
        "web-survives-kill",
        &target.url(),
        "process-kill",
        &format!("{{pidFile: {}}}", target.pid_file.display()),
        "{signal: KILL}",
        "2s",
    );
    let tid = w.api.create_template(&yaml).await.unwrap();
    let before = target.pid();
    let run_id = w.api.start_run(&tid, "env=test").await.unwrap();
    let run = w.api.wait_status(&run_id, TERMINAL, Duration::from_secs(60)).await.unwrap();

    assert_eq!(run["status"], "PASSED", "{run}");
    assert_eq!(run["delegate"]["name"], "edge-1");
    // The process was really killed, and its supervisor brought a new one.
    assert!(proc_state(before).is_none(), "the original target process {before} still exists");
    assert_ne!(target.pid(), before);
    assert!(*target.restarts.lock().unwrap() >= 1);
    // The probe saw the outage during the fault and the recovery after it.
    let checks = run["probeResults"].as_array().unwrap();
    assert!(checks.iter().any(|c| c["phase"] == "before" && c["ok"] == true), "{run}");
    assert!(checks.iter().any(|c| c["phase"] == "during" && c["ok"] == false), "no failed check during the fault: {run}");
    assert_eq!(checks.last().unwrap()["ok"], true, "the last check must show recovery: {run}");
    assert!(run["recoveryMs"].as_i64().is_some(), "{run}");
    assert_complete(&run);
    // The score is what the tallies say, and hub and delegate agree on it.
    let score = run["resilienceScore"].as_f64().unwrap();
    assert_eq!(score, expected_score(&run), "{run}");
    assert_eq!(run["delegateScore"].as_f64(), Some(score));
    assert!(score < 100.0 && score > 0.0, "{run}");
}

#[tokio::test]
async fn abort_reverts_at_once_and_is_idempotent() {
    let w = World::new().await.unwrap();
    let target = Target::start(w.dir.path()).await.unwrap();
    let _d = w.delegate("edge-1", &[], &[]).await.unwrap();
    let yaml = template(
        "pause-long",
        &target.url(),
        "process-pause",
        &format!("{{pidFile: {}}}", target.pid_file.display()),
        "{}",
        "60s",
    );
    let tid = w.api.create_template(&yaml).await.unwrap();
    let pid = target.pid();
    let run_id = w.api.start_run(&tid, "edge-1").await.unwrap();
    w.api.wait_event(&run_id, "fault.applied", Duration::from_secs(20)).await.unwrap();
    assert_eq!(proc_state(pid), Some('T'), "the target should be stopped while the fault is active");

    let q = "mutation($id: ID!) { abortRun(id: $id) { status } }";
    let first = w.api.gql(q, serde_json::json!({"id": run_id})).await.unwrap();
    assert!(["ABORTING", "ABORTED"].contains(&first["abortRun"]["status"].as_str().unwrap()), "{first}");
    let run = w.api.wait_status(&run_id, &["ABORTED"], Duration::from_secs(10)).await.unwrap();
    assert_ne!(proc_state(pid), Some('T'), "the pause must be reverted after abort");
    let again = w.api.gql(q, serde_json::json!({"id": run_id})).await.unwrap();
    assert_eq!(again["abortRun"]["status"], "ABORTED", "a second abort changes nothing");
    assert!(run["events"].as_array().unwrap().iter().any(|e| e["kind"] == "run.aborted"), "{run}");
    // Aborting an unknown run is a clear error.
    let err = w.api.try_gql(q, serde_json::json!({"id": uuid::Uuid::new_v4().to_string()})).await.unwrap().unwrap_err();
    assert_eq!(err.extensions["code"], "NOT_FOUND", "{err}");
}
