//! Custom action steps and steady-state checks (issue 14), end to end with a real hub, real
//! delegates and real programs: an action runs a program or sends a request, `background` runs
//! it alongside the next step, an `undo` runs when the method ends, when the run is aborted and
//! after the delegate restarts; the operator's allow-list governs actions as it governs probes;
//! a template with no fault is a steady-state check with a verdict and no score.
use crate::assert_complete;
use faultline_e2e::{Delegate, Target, World, TERMINAL};
use serde_json::Value;
use std::{path::Path, sync::Arc, time::Duration};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
    sync::Mutex,
};

fn head(name: &str, target: &Target) -> String {
    format!(
        "apiVersion: faultline.dev/v1\nkind: Experiment\nmetadata: {{name: {name}}}\nhypothesis:\n  probes:\n    \
         - {{name: web, mode: edge, http: {{url: \"{}\"}}, timeout: 2s}}\n  recoverWithin: 10s\n",
        target.url()
    )
}

fn lines(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Kinds and steps of a run's action events, in order.
fn action_events(run: &Value) -> Vec<(String, i64)> {
    run["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"].as_str().unwrap().starts_with("action."))
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_string(),
                e["payload"]["step"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// An HTTP listener that answers 200 and keeps every request it got (head and body).
async fn hook() -> (u16, Arc<Mutex<Vec<String>>>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let g = g.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut n = 0;
                // Read until the body (Content-Length 5 in the test) has arrived, bounded.
                let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
                while n < buf.len() && tokio::time::Instant::now() < deadline {
                    match tokio::time::timeout(Duration::from_millis(300), s.read(&mut buf[n..]))
                        .await
                    {
                        Ok(Ok(0)) | Err(_) => break,
                        Ok(Ok(k)) => n += k,
                        Ok(Err(_)) => break,
                    }
                    if String::from_utf8_lossy(&buf[..n]).ends_with("hello") {
                        break;
                    }
                }
                g.lock()
                    .await
                    .push(String::from_utf8_lossy(&buf[..n]).into_owned());
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await;
            });
        }
    });
    (port, got)
}

#[tokio::test]
async fn actions_run_in_order_background_alongside_and_undos_when_the_method_ends() {
    let w = World::new().await.unwrap();
    let target = Target::start(w.dir.path()).await.unwrap();
    target.wait_up(Duration::from_secs(10)).await.unwrap();
    let _d = w
        .delegate("acts", &[], &["--allow", "command=/bin/sh"])
        .await
        .unwrap();
    let (port, got) = hook().await;
    let log = w.path("actions.log");
    let yaml = format!(
        "{}steps:\n  - name: slow\n    background: true\n    action:\n      command: {{shell: \"echo start >> {log}; sleep 1; echo end >> {log}\"}}\n    \
         undo:\n      command: {{shell: \"echo undone >> {log}\"}}\n  \
         - name: tell\n    action:\n      http: {{url: \"http://127.0.0.1:{port}/hook\", method: POST, body: hello, expectStatus: 200}}\n      timeout: 5s\n",
        head("actions", &target),
        log = log.display()
    );
    let tid = w.api.create_template(&yaml).await.unwrap();
    let run_id = w.api.start_run(&tid, "acts").await.unwrap();
    let run = w
        .api
        .wait_status(&run_id, TERMINAL, Duration::from_secs(40))
        .await
        .unwrap();
    assert_eq!(run["status"], "PASSED", "{run}");
    assert_complete(&run);
    // The background action was still sleeping when the request went out; the undo came last.
    assert_eq!(lines(&log), ["start", "end", "undone"]);
    let reqs = got.lock().await.clone();
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    assert!(
        reqs[0].starts_with("POST /hook HTTP/1.1") && reqs[0].ends_with("hello"),
        "{reqs:?}"
    );
    let kinds = action_events(&run);
    assert_eq!(
        kinds,
        [
            ("action.started".to_string(), 0),
            ("action.started".to_string(), 1),
            ("action.done".to_string(), 1),
            ("action.done".to_string(), 0),
            ("action.undone".to_string(), 0),
        ],
        "{run}"
    );
    let ev = run["events"].as_array().unwrap();
    let done: Vec<&Value> = ev.iter().filter(|e| e["kind"] == "action.done").collect();
    assert!(done.iter().all(|e| e["payload"]["ok"] == true), "{run}");
    assert_eq!(done[1]["payload"]["background"], true);
    // Actions are not faults: no score, and the verdict comes from the probes.
    assert!(run["resilienceScore"].is_null(), "{run}");
}

#[tokio::test]
async fn a_failed_action_ends_the_run_in_error_and_its_undo_still_runs() {
    let w = World::new().await.unwrap();
    let target = Target::start(w.dir.path()).await.unwrap();
    target.wait_up(Duration::from_secs(10)).await.unwrap();
    let _d = w
        .delegate("acts", &[], &["--allow", "command=/bin/sh"])
        .await
        .unwrap();
    let log = w.path("failed.log");
    let yaml = format!(
        "{}steps:\n  - action: {{command: {{shell: \"echo did >> {log}; exit 3\"}}}}\n    undo: {{command: {{shell: \"echo undone >> {log}\"}}}}\n  \
         - fault: process-kill\n    target: {{pidFile: {pf}}}\n",
        head("failing-action", &target),
        log = log.display(),
        pf = target.pid_file.display()
    );
    let pid = target.pid();
    let tid = w.api.create_template(&yaml).await.unwrap();
    let run_id = w.api.start_run(&tid, "acts").await.unwrap();
    let run = w
        .api
        .wait_status(&run_id, TERMINAL, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(run["status"], "ERROR", "{run}");
    let reason = run["reason"].as_str().unwrap();
    assert!(
        reason.contains("steps[0] (action) failed: /bin/sh: exit status: 3"),
        "{reason}"
    );
    assert_eq!(lines(&log), ["did", "undone"]);
    assert_eq!(
        target.pid(),
        pid,
        "the step after the failed action never ran"
    );
}

#[tokio::test]
async fn an_undo_runs_when_the_run_is_aborted_and_after_the_delegate_restarts() {
    let w = World::new().await.unwrap();
    let target = Target::start(w.dir.path()).await.unwrap();
    target.wait_up(Duration::from_secs(10)).await.unwrap();
    let allow = ["--allow", "command=/bin/sh", "--dead-man-timeout", "30s"];
    let d = w.delegate("acts", &[], &allow).await.unwrap();
    let log = w.path("undo.log");
    let yaml = format!(
        "{}steps:\n  - action: {{command: {{shell: \"echo did >> {log}\"}}}}\n    undo: {{command: {{shell: \"echo undone >> {log}\"}}}}\n  - pause: 60s\n",
        head("undo-on-abort", &target),
        log = log.display()
    );
    let tid = w.api.create_template(&yaml).await.unwrap();

    // Aborted mid-method: the undo runs at once.
    let run_id = w.api.start_run(&tid, "acts").await.unwrap();
    w.api
        .wait_event(&run_id, "pause.started", Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(lines(&log), ["did"]);
    w.api
        .gql(
            "mutation($id: ID!) { abortRun(id: $id) { status } }",
            serde_json::json!({"id": run_id}),
        )
        .await
        .unwrap();
    let run = w
        .api
        .wait_status(&run_id, TERMINAL, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(run["status"], "ABORTED", "{run}");
    assert_eq!(lines(&log), ["did", "undone"]);
    assert!(
        action_events(&run).contains(&("action.undone".into(), 0)),
        "{run}"
    );

    // Killed mid-method: nothing undoes it until the delegate starts again, which runs the
    // journalled undo before anything else.
    std::fs::remove_file(&log).unwrap();
    let mut d = d;
    let run_id = w.api.start_run(&tid, "acts").await.unwrap();
    w.api
        .wait_event(&run_id, "pause.started", Duration::from_secs(20))
        .await
        .unwrap();
    d.proc.signal(nix::sys::signal::Signal::SIGKILL);
    d.proc.stop(Duration::from_secs(5)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(lines(&log), ["did"], "a killed delegate cannot undo");
    let _d = Delegate::start(
        &w.hub,
        &w.hub.url,
        "spent",
        "acts",
        &[],
        &d.state_dir,
        &allow,
    )
    .await
    .unwrap();
    assert_eq!(
        lines(&log),
        ["did", "undone"],
        "the restarted delegate ran the undo before it connected"
    );
}

#[tokio::test]
async fn actions_obey_the_operators_allow_list() {
    let w = World::new().await.unwrap();
    let target = Target::start(w.dir.path()).await.unwrap();
    let _strict = w
        .delegate("strict", &[], &["--allow", "command=/bin/true"])
        .await
        .unwrap();
    let marker = w.path("never");
    let yaml = format!(
        "{}steps:\n  - action: {{command: {{run: [/bin/true]}}}}\n    undo: {{command: {{run: [/usr/bin/touch, {}]}}}}\n  \
         - action: {{http: {{url: \"http://169.254.169.254/latest/api/token\", method: PUT}}}}\n",
        head("sneaky-actions", &target),
        marker.display()
    );
    let tid = w.api.create_template(&yaml).await.unwrap();
    let e = w
        .api
        .try_gql(
            "mutation($t: ID!) { startRun(templateId: $t, delegate: \"strict\") { id } }",
            serde_json::json!({"t": tid}),
        )
        .await
        .unwrap()
        .expect_err("refused");
    assert_eq!(e.extensions["code"], "INVALID_TEMPLATE", "{e}");
    for want in [
        "steps[0].undo.command.run: program /usr/bin/touch may not run on this host",
        "--allow command=/usr/bin/touch",
        "steps[1].action.http.url: connection to 169.254.169.254:80",
    ] {
        assert!(
            e.message.contains(want),
            "missing {want:?} in {}",
            e.message
        );
    }
    assert!(!e.message.contains("steps[0].action"), "{}", e.message);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!marker.exists());
}

#[tokio::test]
async fn a_steady_state_check_has_a_verdict_and_no_score() {
    let w = World::new().await.unwrap();
    let target = Target::start(w.dir.path()).await.unwrap();
    target.wait_up(Duration::from_secs(10)).await.unwrap();
    let _d = w.delegate("plain", &[], &[]).await.unwrap();
    let yaml = format!("{}  baseline: 1s\n", head("steady-state", &target));
    let tid = w.api.create_template(&yaml).await.unwrap();
    let run_id = w.api.start_run(&tid, "plain").await.unwrap();
    let run = w
        .api
        .wait_status(&run_id, TERMINAL, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(run["status"], "PASSED", "{run}");
    assert_complete(&run);
    assert!(run["resilienceScore"].is_null(), "{run}");
    assert!(run["delegateScore"].is_null(), "{run}");
    assert!(run["recoveryMs"].is_null(), "{run}");
    // edge: once before, once at the end.
    assert_eq!(run["probeTally"]["total"], 2, "{run}");

    // The same check against a closed port fails, still without a score.
    let closed = faultline_e2e::free_port().unwrap();
    let yaml = yaml
        .replace(&target.url(), &format!("http://127.0.0.1:{closed}/"))
        .replace("name: steady-state", "name: steady-state-down");
    let tid = w.api.create_template(&yaml).await.unwrap();
    let run_id = w.api.start_run(&tid, "plain").await.unwrap();
    let run = w
        .api
        .wait_status(&run_id, TERMINAL, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(run["status"], "FAILED", "{run}");
    assert!(run["resilienceScore"].is_null(), "{run}");
}
