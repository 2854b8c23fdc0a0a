//! Retention: a finished run's events and checks go after the project's retention; its summary
//! stays, and a run still going is untouched.
use anyhow::Result;
use faultline_e2e::{pause_template, HubOpts, Target, World};
use serde_json::json;
use std::time::{Duration, Instant};

const RUN: &str =
    "query($id: ID!) { run(id: $id) { status resilienceScore reason recoveryMs eventsPrunedAt \
    probeTally { passed failed total } events { seq } probeResults { ok } } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_events_are_deleted_in_batches_and_the_summary_stays() -> Result<()> {
    // Everything is kept an hour, but the default project's events only 2 s (its override).
    let w = World::with_hub(HubOpts {
        extra: [
            "--retain-events",
            "1h",
            "--retain-events-project",
            "default=2s",
            "--retain-interval",
            "500ms",
            "--retain-batch",
            "7",
        ]
        .map(String::from)
        .to_vec(),
        ..HubOpts::default()
    })
    .await?;
    let _d = w.delegate("keeper", &[], &[]).await?;
    let target = Target::start(w.dir.path()).await?;
    let short = w
        .api
        .create_template(&pause_template("short", &target, "1s"))
        .await?;
    let run = w.api.start_run(&short, "keeper").await?;
    w.api
        .wait_status(&run, &["PASSED", "FAILED"], Duration::from_secs(60))
        .await?;
    let before = w.api.gql(RUN, json!({"id": run})).await?["run"].clone();
    let events = before["events"].as_array().unwrap().len();
    assert!(events > 7, "more events than one batch: {events}");
    assert!(
        before["probeTally"]["total"].as_i64().unwrap() > 3,
        "{before}"
    );
    assert_eq!(
        before["probeTally"]["total"].as_i64().unwrap() as usize,
        before["probeResults"].as_array().unwrap().len(),
        "the stored tally counts the checks"
    );
    assert!(before["eventsPrunedAt"].is_null());

    // A long run starts while retention works; its events are never touched.
    let long = w
        .api
        .create_template(&pause_template("long", &target, "8s"))
        .await?;
    let going = w.api.start_run(&long, "keeper").await?;

    let deadline = Instant::now() + Duration::from_secs(20);
    let after = loop {
        let r = w.api.gql(RUN, json!({"id": run})).await?["run"].clone();
        if !r["eventsPrunedAt"].is_null() {
            break r;
        }
        anyhow::ensure!(Instant::now() < deadline, "not pruned within 20 s: {r}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(after["events"], json!([]), "events deleted");
    assert_eq!(after["probeResults"], json!([]), "checks deleted");
    for field in [
        "status",
        "resilienceScore",
        "reason",
        "recoveryMs",
        "probeTally",
    ] {
        assert_eq!(after[field], before[field], "{field} stays");
    }

    let r = w.api.gql(RUN, json!({"id": going})).await?["run"].clone();
    assert_eq!(r["status"], "RUNNING", "{r}");
    assert!(!r["events"].as_array().unwrap().is_empty());
    assert!(r["eventsPrunedAt"].is_null());
    // It ends normally, its events all stored, and is pruned in its turn.
    let done = w
        .api
        .wait_status(&going, &["PASSED", "FAILED"], Duration::from_secs(60))
        .await?;
    assert!(done["probeTally"]["total"].as_i64().unwrap() > 0, "{done}");
    Ok(())
}
