//! The safety switches of issue 4 end to end: halt-all (emergency stop), dry runs, and the
//! dead-man switch when the hub freezes with its connections still open.
use faultline_e2e::{pause_template, proc_state, Target, World, TERMINAL};
use serde_json::json;
use std::time::{Duration, Instant};

const HALT: &str = "mutation($r: String!) { haltAll(project: \"default\", reason: $r) { project halted haltedBy reason abortedRuns delegates } }";
const LIFT: &str = "mutation { liftHalt(project: \"default\") { halted } }";

/// Polls until the process is no longer stopped (state T).
async fn until_resumed(pid: i32, within: Duration, what: &str) {
    let deadline = Instant::now() + within;
    while proc_state(pid) == Some('T') {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Starts a run that pauses `target` for 60 s on `delegate`; returns (template id, run id) once
/// the pause is applied.
async fn paused(w: &World, target: &Target, delegate: &str) -> (String, String) {
    let name = format!("pause-on-{delegate}");
    let tid = w
        .api
        .create_template(&pause_template(&name, target, "60s"))
        .await
        .unwrap();
    let run = w.api.start_run(&tid, delegate).await.unwrap();
    w.api
        .wait_event(&run, "fault.applied", Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(proc_state(target.pid()), Some('T'));
    (tid, run)
}

/// Halt-all aborts every run of the project on every delegate, reverts their faults, refuses new
/// runs with PROJECT_HALTED until an owner lifts it, and is audited.
#[tokio::test]
async fn halt_all_stops_every_run_and_blocks_new_ones_until_lifted() {
    let w = World::new().await.unwrap();
    let (t1, t2) = (
        Target::start(w.dir.path()).await.unwrap(),
        Target::start(w.dir.path()).await.unwrap(),
    );
    let _d1 = w.delegate("halt-a", &[], &[]).await.unwrap();
    let _d2 = w.delegate("halt-b", &[], &[]).await.unwrap();
    let (tid1, r1) = paused(&w, &t1, "halt-a").await;
    let (_, r2) = paused(&w, &t2, "halt-b").await;

    let halted = w
        .api
        .gql(HALT, json!({"r": "incident 42: stop all chaos"}))
        .await
        .unwrap();
    let h = &halted["haltAll"];
    assert_eq!(h["halted"], true, "{halted}");
    assert_eq!(h["abortedRuns"], 2, "{halted}");
    assert_eq!(h["delegates"], 2, "{halted}");
    assert_eq!(h["reason"], "incident 42: stop all chaos");
    until_resumed(
        t1.pid(),
        Duration::from_secs(5),
        "halt must revert on delegate a",
    )
    .await;
    until_resumed(
        t2.pid(),
        Duration::from_secs(5),
        "halt must revert on delegate b",
    )
    .await;
    for r in [&r1, &r2] {
        let run = w
            .api
            .wait_status(r, &["ABORTED"], Duration::from_secs(10))
            .await
            .unwrap();
        let aborted = run["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["kind"] == "run.aborted")
            .cloned()
            .unwrap_or_else(|| panic!("no run.aborted: {run}"));
        assert!(
            aborted["payload"]["reason"]
                .as_str()
                .unwrap()
                .contains("incident 42"),
            "{aborted}"
        );
    }

    // Nothing starts while halted, with a reason that says who and how to lift it.
    let err = w
        .api
        .try_gql(
            "mutation($t: ID!) { startRun(templateId: $t, delegate: \"halt-a\") { id } }",
            json!({"t": tid1}),
        )
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err.extensions["code"], "PROJECT_HALTED", "{err}");
    assert!(err.message.contains("incident 42"), "{err}");
    assert!(err.message.contains("liftHalt"), "{err}");
    let q = w
        .api
        .gql(
            "{ halt(project: \"default\") { halted haltedBy } }",
            json!({}),
        )
        .await
        .unwrap();
    assert_eq!(q["halt"]["halted"], true, "{q}");

    // Lifted: runs start again.
    let lifted = w.api.gql(LIFT, json!({})).await.unwrap();
    assert_eq!(lifted["liftHalt"]["halted"], false, "{lifted}");
    let r3 = w.api.start_run(&tid1, "halt-a").await.unwrap();
    w.api
        .wait_event(&r3, "fault.applied", Duration::from_secs(20))
        .await
        .unwrap();

    // Both the halt and the lift are in the audit log.
    let pool = sqlx::PgPool::connect(&w.db).await.unwrap();
    let actions: Vec<(String, String)> = sqlx::query_as(
        "SELECT action, outcome FROM audit_log WHERE action LIKE 'project.%' ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        actions,
        vec![
            ("project.halt".to_string(), "ok".to_string()),
            ("project.lift_halt".to_string(), "ok".to_string())
        ]
    );
}

/// A delegate cut off (frozen) while its project was halted hears the halt when it is back,
/// and reverts what it still had applied.
#[tokio::test]
async fn a_delegate_cut_off_during_a_halt_hears_it_when_back() {
    let w = World::new().await.unwrap();
    let target = Target::start(w.dir.path()).await.unwrap();
    let d = w
        .delegate("late", &[], &["--dead-man-timeout", "60s"])
        .await
        .unwrap();
    let (_, run) = paused(&w, &target, "late").await;
    // Cut the delegate off from the hub without stopping it: it keeps the fault (its dead-man
    // timeout is long), like a delegate behind a partition.
    d.proc.signal(nix::sys::signal::Signal::SIGSTOP);
    w.api
        .gql(HALT, json!({"r": "partitioned delegate test"}))
        .await
        .unwrap();
    assert_eq!(
        proc_state(target.pid()),
        Some('T'),
        "the delegate is frozen"
    );
    d.proc.signal(nix::sys::signal::Signal::SIGCONT);
    until_resumed(
        target.pid(),
        Duration::from_secs(20),
        "the delegate must revert once it hears the halt",
    )
    .await;
    let r = w
        .api
        .wait_status(&run, TERMINAL, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(r["status"], "ABORTED", "{r}");
}

/// A dry run resolves every fault and lists its targets, applies nothing and runs no probe;
/// one whose target cannot be resolved fails with the reason.
#[tokio::test]
async fn dry_run_lists_targets_and_applies_nothing() {
    let w = World::new().await.unwrap();
    let target = Target::start(w.dir.path()).await.unwrap();
    let _d = w.delegate("dry", &[], &[]).await.unwrap();
    let tid = w
        .api
        .create_template(&pause_template("dry-pause", &target, "5s"))
        .await
        .unwrap();
    let start = "mutation($t: ID!) { startRun(templateId: $t, delegate: \"dry\", dryRun: true) { id dryRun } }";
    let d = w.api.gql(start, json!({"t": tid})).await.unwrap();
    assert_eq!(d["startRun"]["dryRun"], true, "{d}");
    let id = d["startRun"]["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    let run = loop {
        assert_ne!(
            proc_state(target.pid()),
            Some('T'),
            "a dry run must not pause anything"
        );
        let r = w.api.run(&id).await.unwrap();
        if TERMINAL.contains(&r["status"].as_str().unwrap()) {
            break r;
        }
        assert!(Instant::now() < deadline, "dry run did not finish: {r}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(run["status"], "PASSED", "{run}");
    assert_eq!(
        run["reason"], "dry run: 1 fault resolved, nothing applied",
        "{run}"
    );
    assert_eq!(
        run["probeTally"]["total"], 0,
        "no probe runs in a dry run: {run}"
    );
    let kinds: Vec<&str> = run["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["run.started", "fault.planned", "run.finished"],
        "{run}"
    );
    let planned = &run["events"][1]["payload"];
    assert!(
        planned["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("pid {}", target.pid())),
        "the plan names the target: {planned}"
    );

    // A target that does not exist: FAILED, and the reason names the step and the cause.
    let bad = faultline_e2e::template(
        "dry-bad",
        &target.url(),
        "process-pause",
        "{name: no-such-proc}",
        "{}",
        "5s",
    );
    let tid = w.api.create_template(&bad).await.unwrap();
    let d = w.api.gql(start, json!({"t": tid})).await.unwrap();
    let id = d["startRun"]["id"].as_str().unwrap().to_string();
    let run = w
        .api
        .wait_status(&id, TERMINAL, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(run["status"], "FAILED", "{run}");
    assert_eq!(
        run["reason"], "dry run: steps[0] (process-pause): no process named no-such-proc",
        "{run}"
    );
}

/// A hub that freezes (SIGSTOP: its connections stay open, nothing answers) is detected by the
/// delegate's heartbeat echo; after its dead-man timeout the delegate reverts every fault.
#[tokio::test]
async fn a_frozen_hub_trips_the_delegates_dead_man_switch() {
    // The test hub's heartbeat interval is 1 s.
    let w = World::new().await.unwrap();
    let target = Target::start(w.dir.path()).await.unwrap();
    let _d = w
        .delegate("cut-off", &[], &["--dead-man-timeout", "2s"])
        .await
        .unwrap();
    let (_, run) = paused(&w, &target, "cut-off").await;

    w.hub.proc.signal(nix::sys::signal::Signal::SIGSTOP);
    let frozen = Instant::now();
    // Silence is noticed after 3 heartbeat intervals (3 s); the 2 s dead-man timeout counts
    // from when the hub was last heard, so it has passed by then.
    until_resumed(
        target.pid(),
        Duration::from_secs(10),
        "the dead-man switch must revert while the hub is frozen",
    )
    .await;
    let took = frozen.elapsed();
    w.hub.proc.signal(nix::sys::signal::Signal::SIGCONT);
    assert!(
        took >= Duration::from_secs(2),
        "reverted too early ({took:?}): the dead-man timeout was not honoured"
    );
    let r = w
        .api
        .wait_event(&run, "run.finished", Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(r["status"], "ERROR", "{r}");
    assert!(r["reason"].as_str().unwrap().contains("dead-man"), "{r}");
}
