//! A run from startRun to the last stored event, and abort.
use crate::{assert_complete, expected_score};
use faultline_e2e::{pause_template, proc_state, template, Target, World, TERMINAL};
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
    let run = w
        .api
        .wait_status(&run_id, TERMINAL, Duration::from_secs(60))
        .await
        .unwrap();

    assert_eq!(run["status"], "PASSED", "{run}");
    assert_eq!(run["delegate"]["name"], "edge-1");
    // The process was really killed, and its supervisor brought a new one.
    assert!(
        proc_state(before).is_none(),
        "the original target process {before} still exists"
    );
    assert_ne!(target.pid(), before);
    assert!(*target.restarts.lock().unwrap() >= 1);
    // The probe saw the outage during the fault and the recovery after it.
    let checks = run["probeResults"].as_array().unwrap();
    assert!(
        checks
            .iter()
            .any(|c| c["phase"] == "before" && c["ok"] == true),
        "{run}"
    );
    assert!(
        checks
            .iter()
            .any(|c| c["phase"] == "during" && c["ok"] == false),
        "no failed check during the fault: {run}"
    );
    assert_eq!(
        checks.last().unwrap()["ok"],
        true,
        "the last check must show recovery: {run}"
    );
    // Recovery counts from the kill; the supervisor needs >= 300 ms to bring the target back.
    let recovery = run["recoveryMs"].as_i64().unwrap();
    assert!(
        (250..15_000).contains(&recovery),
        "recovery {recovery} ms: {run}"
    );
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
    let yaml = pause_template("pause-long", &target, "60s");
    let tid = w.api.create_template(&yaml).await.unwrap();
    let pid = target.pid();
    let run_id = w.api.start_run(&tid, "edge-1").await.unwrap();
    w.api
        .wait_event(&run_id, "fault.applied", Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(
        proc_state(pid),
        Some('T'),
        "the target should be stopped while the fault is active"
    );

    let q = "mutation($id: ID!) { abortRun(id: $id) { status } }";
    let first = w
        .api
        .gql(q, serde_json::json!({"id": run_id}))
        .await
        .unwrap();
    assert!(
        ["ABORTING", "ABORTED"].contains(&first["abortRun"]["status"].as_str().unwrap()),
        "{first}"
    );
    let run = w
        .api
        .wait_status(&run_id, &["ABORTED"], Duration::from_secs(10))
        .await
        .unwrap();
    assert_ne!(
        proc_state(pid),
        Some('T'),
        "the pause must be reverted after abort"
    );
    let again = w
        .api
        .gql(q, serde_json::json!({"id": run_id}))
        .await
        .unwrap();
    assert_eq!(
        again["abortRun"]["status"], "ABORTED",
        "a second abort changes nothing"
    );
    assert!(
        run["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "run.aborted"),
        "{run}"
    );
    // Aborting an unknown run is a clear error.
    let err = w
        .api
        .try_gql(
            q,
            serde_json::json!({"id": uuid::Uuid::new_v4().to_string()}),
        )
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err.extensions["code"], "NOT_FOUND", "{err}");
}

/// `runEvents` over WebSocket (graphql-transport-ws) delivers every event in order, then completes.
#[tokio::test]
async fn run_events_subscription_streams_every_event() {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let w = World::new().await.unwrap();
    let target = Target::start(w.dir.path()).await.unwrap();
    let _d = w.delegate("edge-1", &[], &[]).await.unwrap();
    let tid = w
        .api
        .create_template(&pause_template("sub-pause", &target, "1s"))
        .await
        .unwrap();
    let run_id = w.api.start_run(&tid, "edge-1").await.unwrap();

    let mut ws = crate::graphql_ws(&w.hub).await;
    let send = |v: serde_json::Value| Message::Text(v.to_string().into());
    ws.send(send(serde_json::json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {}", w.token)}}))).await.unwrap();
    ws.send(send(serde_json::json!({"id": "1", "type": "subscribe", "payload": {
        "query": "subscription($r: ID!) { runEvents(runId: $r) { seq kind } }", "variables": {"r": run_id}}})))
        .await
        .unwrap();
    let mut seqs = Vec::new();
    let mut kinds = Vec::new();
    let collect = async {
        while let Some(Ok(m)) = ws.next().await {
            let Message::Text(t) = m else { continue };
            let v: serde_json::Value = serde_json::from_str(&t).unwrap();
            match v["type"].as_str() {
                Some("next") => {
                    let e = &v["payload"]["data"]["runEvents"];
                    seqs.push(e["seq"].as_i64().unwrap());
                    kinds.push(e["kind"].as_str().unwrap().to_string());
                }
                Some("complete") => return,
                Some("error") => panic!("subscription error: {v}"),
                _ => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), collect)
        .await
        .expect("subscription completes when the run ends");
    let run = w.api.run(&run_id).await.unwrap();
    let stored: Vec<i64> = run["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(
        seqs, stored,
        "the subscription delivered exactly the stored events, in order"
    );
    assert_eq!(kinds.first().map(String::as_str), Some("run.started"));
    assert_eq!(kinds.last().map(String::as_str), Some("run.finished"));
}

/// The default mode: no DATABASE_URL, the hub runs its own Postgres (as user `postgres` when
/// root), keeps it across restarts, and stops it on SIGTERM.
#[tokio::test]
async fn embedded_postgres_serves_survives_restart_and_stops_with_the_hub() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = dir.path().join("hub");
    let mut hub = faultline_e2e::Hub::start("", &data, Default::default())
        .await
        .unwrap();
    let token = hub
        .admin_token
        .clone()
        .expect("first start prints the admin password");
    let api = hub.client(&token).unwrap();
    let ready = api
        .http
        .get(format!("{}/readyz", hub.url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status().as_u16(), 200);
    api.delegate_token().await.unwrap();
    assert!(data.join("postgres/PG_VERSION").exists());
    assert!(
        hub.proc.stop(Duration::from_secs(40)).await.unwrap(),
        "hub exits 0 on SIGTERM"
    );
    assert!(
        !data.join("postgres/postmaster.pid").exists(),
        "postgres stopped with the hub"
    );

    let mut hub = faultline_e2e::Hub::start("", &data, Default::default())
        .await
        .unwrap();
    assert!(
        hub.admin_token.is_none(),
        "the admin password is printed only once"
    );
    let api = hub.client(&token).unwrap();
    assert!(
        api.gql("{ templates { id } }", serde_json::json!({}))
            .await
            .is_ok(),
        "same database, same token"
    );
    assert!(hub.proc.stop(Duration::from_secs(40)).await.unwrap());
}
