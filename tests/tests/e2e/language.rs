//! The experiment language end to end: a multi-stage template (baseline, sot gate, fault,
//! pause, parallel group) on a real delegate against real services, scored the same by hub and
//! delegate; and startRun refusing what the chosen delegate cannot run.
use crate::assert_complete;
use faultline_e2e::{loadgen, Target, World, TERMINAL};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn a_multi_stage_run_is_scored_the_same_by_hub_and_delegate() {
    let w = World::new().await.unwrap();
    let (a, b) = (
        Target::start(w.dir.path()).await.unwrap(),
        Target::start(w.dir.path()).await.unwrap(),
    );
    let _d = w
        .delegate("edge-lang", &[], &["--allow", "command=true"])
        .await
        .unwrap();
    let yaml = format!(
        r#"apiVersion: faultline.dev/v1
kind: Experiment
metadata: {{name: multi-stage}}
hypothesis:
  baseline: 1s
  recoverWithin: 15s
  probes:
    - name: web
      http: {{url: "{a}", expect: {{status: "2xx", bodyContains: "Directory listing"}}}}
      mode: continuous
      interval: 100ms
      timeout: 300ms
    - name: gate
      http: {{url: "{b}"}}
      mode: sot
steps:
  - fault: process-pause
    target: {{pidFile: {pa}}}
    duration: 800ms
    weight: 8
  - pause: 300ms
  - parallel:
      - fault: process-pause
        target: {{pidFile: {pa}}}
        duration: 400ms
        weight: 2
      - fault: process-pause
        target: {{pidFile: {pb}}}
        duration: 800ms
rollbacks:
  - command: {{run: ["true"]}}
"#,
        a = a.url(),
        b = b.url(),
        pa = a.pid_file.display(),
        pb = b.pid_file.display(),
    );
    let tid = w.api.create_template(&yaml).await.unwrap();
    let run_id = w.api.start_run(&tid, "edge-lang").await.unwrap();
    let run = w
        .api
        .wait_status(&run_id, TERMINAL, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(run["status"], "PASSED", "{run}");
    assert_complete(&run);
    assert_eq!(run["resilienceScore"], run["delegateScore"], "{run}");
    let score = run["resilienceScore"].as_f64().unwrap();
    assert!(score > 0.0 && score < 100.0, "{score}");

    let d = w
        .api
        .gql(
            "query($id: ID!) { run(id: $id) { probeResults { probe phase countsFor mode attempts ok } \
               latency { probe controlSamples chaosSamples significant summary } } }",
            json!({"id": run_id}),
        )
        .await
        .unwrap();
    let checks = d["run"]["probeResults"].as_array().unwrap();
    let gate: Vec<_> = checks.iter().filter(|c| c["probe"] == "gate").collect();
    assert_eq!(gate.len(), 1, "sot checks once");
    assert_eq!(gate[0]["mode"], "sot");
    assert!(
        checks.iter().any(|c| c["countsFor"] == json!([1, 2])),
        "checks during the parallel group count for both of its faults"
    );
    assert!(checks
        .iter()
        .any(|c| c["countsFor"] == json!([0]) && c["ok"] == false));
    let kinds: Vec<&str> = run["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.iter().filter(|k| **k == "fault.applied").count(), 3);
    assert_eq!(kinds.iter().filter(|k| **k == "fault.reverted").count(), 3);
    assert!(kinds.contains(&"pause.started") && kinds.contains(&"rollback.done"));
    let lat = &d["run"]["latency"][0];
    assert_eq!(lat["probe"], "web");
    assert!(lat["controlSamples"].as_i64().unwrap() >= 5, "{lat}");
    assert!(!lat["summary"].as_str().unwrap().is_empty());
    for t in [&a, &b] {
        assert!(matches!(
            faultline_e2e::proc_state(t.pid()),
            Some('S' | 'R')
        ));
    }
}

#[tokio::test]
async fn start_run_refuses_kinds_the_delegate_does_not_advertise() {
    let w = World::new().await.unwrap();
    let target = Target::start(w.dir.path()).await.unwrap();
    // A delegate that registers without advertising any fault or probe kind.
    let streams = loadgen::open(&w.api, &w.hub.ca, "bare", 1, 1, Duration::from_secs(5))
        .await
        .unwrap();
    let tid = w
        .api
        .create_template(&faultline_e2e::pause_template("needs-pause", &target, "1s"))
        .await
        .unwrap();
    let err = w
        .api
        .try_gql(
            "mutation($t: ID!) { startRun(templateId: $t, delegate: \"bare-0\") { id } }",
            json!({"t": tid}),
        )
        .await
        .unwrap()
        .expect_err("refused");
    assert_eq!(err.extensions["code"], "INVALID_TEMPLATE", "{err}");
    let errors = err.extensions["errors"].as_array().unwrap();
    let fault = errors
        .iter()
        .find(|e| e["field"] == "steps[0].fault")
        .unwrap_or_else(|| panic!("{err}"));
    assert!(fault["message"]
        .as_str()
        .unwrap()
        .contains("bare-0 does not support fault process-pause"));
    assert_eq!(
        (fault["line"].as_u64(), fault["column"].as_u64()),
        (Some(13), Some(5)),
        "{fault}"
    );
    assert!(fault["hint"]
        .as_str()
        .unwrap()
        .starts_with("it supports: nothing"));
    assert!(
        errors
            .iter()
            .any(|e| e["field"] == "hypothesis.probes[0].http"),
        "{err}"
    );
    let runs = w.api.gql("{ runs { id } }", json!({})).await.unwrap();
    assert_eq!(runs["runs"], json!([]), "nothing was queued");
    streams.close().await;
}
