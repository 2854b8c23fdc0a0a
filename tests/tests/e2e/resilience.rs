//! Nothing is lost: hub restarts mid-run, several replicas, delegates that connect late.
use crate::assert_complete;
use faultline_e2e::{
    pause_template, proc_state, template, Delegate, Hub, HubOpts, Target, World, TERMINAL,
};
use std::time::Duration;

#[tokio::test]
async fn hub_restart_mid_run_loses_nothing() {
    let mut w = World::new().await.unwrap();
    let target = Target::start(w.dir.path()).await.unwrap();
    let _d = w.delegate("edge-1", &[], &[]).await.unwrap();
    let tid = w
        .api
        .create_template(&pause_template("pause-4s", &target, "4s"))
        .await
        .unwrap();
    let pid = target.pid();
    let run_id = w.api.start_run(&tid, "edge-1").await.unwrap();
    w.api
        .wait_event(&run_id, "fault.applied", Duration::from_secs(20))
        .await
        .unwrap();

    // Kill the hub hard while the fault is active, keep it down a while, start it again.
    w.hub.proc.signal(nix::sys::signal::Signal::SIGKILL);
    let _ = w.hub.proc.child.wait().await;
    assert_eq!(
        proc_state(pid),
        Some('T'),
        "the fault stays active while the hub is away"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let addr = w.hub.addr.clone();
    w.hub = Hub::start(
        &w.db,
        &w.hub.data_dir.clone(),
        HubOpts {
            listen: addr,
            ..Default::default()
        },
    )
    .await
    .unwrap();

    let run = w
        .api
        .wait_status(&run_id, TERMINAL, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(run["status"], "PASSED", "{run}");
    assert_complete(&run);
    let kinds: Vec<&str> = run["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "fault.applied").count(),
        1,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "fault.reverted").count(),
        1,
        "{kinds:?}"
    );
    assert_ne!(proc_state(pid), Some('T'));
}

#[tokio::test]
async fn run_started_on_one_replica_reaches_delegate_on_another() {
    let w = World::new().await.unwrap();
    let b = Hub::start(&w.db, &w.path("hub-b"), HubOpts::default())
        .await
        .unwrap();
    assert!(
        b.admin_token.is_none(),
        "only the first replica bootstraps the administrator"
    );
    let target = Target::start(w.dir.path()).await.unwrap();
    let token = w.api.delegate_token().await.unwrap();
    let _d = Delegate::start(
        &b,
        &b.url,
        &token,
        "on-b",
        &[],
        &w.path("delegate-on-b"),
        &[],
    )
    .await
    .unwrap();
    let tid = w
        .api
        .create_template(&pause_template("pause-short", &target, "1s"))
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let run_id = w.api.start_run(&tid, "on-b").await.unwrap();
    let run = w
        .api
        .wait_status(&run_id, TERMINAL, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(run["status"], "PASSED", "{run}");
    assert_complete(&run);
    // B's replica holds the stream; A's API sees the result.
    let b_api = b.client(&w.token).unwrap();
    let seen_by_b = b_api.run(&run_id).await.unwrap();
    assert_eq!(seen_by_b["status"], "PASSED");
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[tokio::test]
async fn run_for_offline_delegate_waits_until_it_connects() {
    let w = World::new().await.unwrap();
    let target = Target::start(w.dir.path()).await.unwrap();
    let mut d = w.delegate("late", &[], &[]).await.unwrap();
    assert!(
        d.proc.stop(Duration::from_secs(10)).await.unwrap(),
        "delegate exits cleanly on SIGTERM"
    );
    let tid = w
        .api
        .create_template(&pause_template("pause-late", &target, "1s"))
        .await
        .unwrap();
    let run_id = w.api.start_run(&tid, "late").await.unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(w.api.run(&run_id).await.unwrap()["status"], "PENDING");

    // Same state dir: the delegate reuses its credential; the token is not needed again.
    let _d = Delegate::start(
        &w.hub,
        &w.hub.url,
        "spent-token",
        "late",
        &[],
        &d.state_dir,
        &[],
    )
    .await
    .unwrap();
    let run = w
        .api
        .wait_status(&run_id, TERMINAL, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(run["status"], "PASSED", "{run}");
    assert_complete(&run);
}

#[tokio::test]
async fn pending_run_times_out_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let db = faultline_e2e::fresh_database().await.unwrap();
    let hub = Hub::start(
        &db,
        &dir.path().join("hub"),
        HubOpts {
            extra: vec!["--pending-timeout".into(), "2s".into()],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let api = hub.client(hub.admin_token.as_deref().unwrap()).unwrap();
    let token = api.delegate_token().await.unwrap();
    let mut d = Delegate::start(
        &hub,
        &hub.url,
        &token,
        "gone",
        &[],
        &dir.path().join("d"),
        &[],
    )
    .await
    .unwrap();
    d.proc.stop(Duration::from_secs(10)).await.unwrap();
    let tid = api
        .create_template(&template(
            "never",
            "http://127.0.0.1:9/",
            "process-kill",
            "{name: nothing}",
            "{}",
            "1s",
        ))
        .await
        .unwrap();
    let run_id = api.start_run(&tid, "gone").await.unwrap();
    let run = api
        .wait_status(&run_id, TERMINAL, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(run["status"], "ERROR");
    assert!(
        run["reason"]
            .as_str()
            .unwrap()
            .contains("no delegate took the run"),
        "{run}"
    );
    // The run stays pinned to the version it was started with.
    let v2 = template(
        "never",
        "http://127.0.0.1:9/",
        "process-kill",
        "{name: nothing}",
        "{}",
        "2s",
    );
    api.gql(
        "mutation($id: ID!, $y: String!) { updateTemplate(id: $id, yaml: $y) { version } }",
        serde_json::json!({"id": tid, "y": v2}),
    )
    .await
    .unwrap();
    let d = api
        .gql(
            "query($id: ID!) { run(id: $id) { templateVersion template { version yaml } } }",
            serde_json::json!({"id": run_id}),
        )
        .await
        .unwrap();
    assert_eq!(d["run"]["templateVersion"], 1);
    assert_eq!(d["run"]["template"]["version"], 1);
    assert!(d["run"]["template"]["yaml"]
        .as_str()
        .unwrap()
        .contains("duration: 1s"));
}

/// A delegate killed hard mid-run: the hub resolves the run (ERROR, delegate lost) after its
/// dead-man timeout, and the restarted delegate reverts the journalled fault and replays the
/// run's final events. No fault outlives its run; no run stays RUNNING.
#[tokio::test]
async fn delegate_killed_mid_run_is_resolved_and_its_fault_reverted_on_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = faultline_e2e::fresh_database().await.unwrap();
    let opts = HubOpts {
        extra: vec!["--dead-man-timeout".into(), "4s".into()],
        ..Default::default()
    };
    let hub = Hub::start(&db, &dir.path().join("hub"), opts)
        .await
        .unwrap();
    let api = hub.client(hub.admin_token.as_deref().unwrap()).unwrap();
    let target = Target::start(dir.path()).await.unwrap();
    let token = api.delegate_token().await.unwrap();
    let state = dir.path().join("d");
    let d = Delegate::start(
        &hub,
        &hub.url,
        &token,
        "doomed",
        &[],
        &state,
        &["--dead-man-timeout", "2s"],
    )
    .await
    .unwrap();
    let tid = api
        .create_template(&pause_template("pause-long", &target, "60s"))
        .await
        .unwrap();
    let pid = target.pid();
    let run_id = api.start_run(&tid, "doomed").await.unwrap();
    api.wait_event(&run_id, "fault.applied", Duration::from_secs(20))
        .await
        .unwrap();

    d.proc.signal(nix::sys::signal::Signal::SIGKILL);
    let run = api
        .wait_status(&run_id, TERMINAL, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(run["status"], "ERROR", "{run}");
    assert!(
        run["reason"].as_str().unwrap().contains("delegate lost"),
        "{run}"
    );
    assert_eq!(
        proc_state(pid),
        Some('T'),
        "a SIGKILLed delegate cannot revert until it restarts"
    );

    let _d = Delegate::start(&hub, &hub.url, "spent", "doomed", &[], &state, &[])
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while proc_state(pid) == Some('T') {
        assert!(
            std::time::Instant::now() < deadline,
            "the restarted delegate must revert the journalled pause"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Its final events arrive and are stored after the fact, completing the record.
    let run = api
        .wait_event(&run_id, "run.finished", Duration::from_secs(15))
        .await
        .unwrap();
    assert_complete(&run);
    assert_eq!(run["status"], "ERROR");
}
