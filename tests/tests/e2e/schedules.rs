//! Schedules (issue 16), end to end with real hubs, a real Postgres and real delegates: fires
//! happen exactly once across two replicas (also when one dies), `forbid` skips and `queue`
//! waits while a run is unfinished, fires that cannot start are recorded with the reason and
//! show in the runs list, pause / resume, fires missed while no hub ran, and the API's checks.
//! Behaviour over DST changes is tested on the clock itself (server/src/schedules.rs): no test
//! can wait for a real one.
use faultline_e2e::{pause_template, Hub, HubOpts, Target, World, TERMINAL};
use serde_json::{json, Value};
use std::{
    collections::BTreeSet,
    time::{Duration, Instant},
};

/// A steady-state check: one edge probe on the target, no fault (well under a second).
fn quick(name: &str, target: &Target) -> String {
    format!(
        "apiVersion: faultline.dev/v1\nkind: Experiment\nmetadata: {{name: {name}}}\nhypothesis:\n  probes:\n    \
         - {{name: web, mode: edge, http: {{url: \"{}\"}}, timeout: 2s}}\n",
        target.url()
    )
}

const FIRES: &str = "query($id: ID!) { schedule(id: $id) { enabled nextFireAt nextFires(n: 3) \
    fires(limit: 300) { dueAt lastDueAt missedCount firedAt outcome reason runId run { id status reason delegate { name } scheduleId } } } }";

async fn create(w: &World, vars: Value) -> Value {
    w.api
        .gql(
            "mutation($t: ID!, $cron: String!, $tz: String!, $d: String, $c: ScheduleConcurrency!, $name: String) { \
               createSchedule(templateId: $t, cron: $cron, timezone: $tz, delegate: $d, concurrency: $c, name: $name) { id name enabled nextFireAt } }",
            vars,
        )
        .await
        .unwrap()["createSchedule"]
        .clone()
}

async fn fires(w: &World, id: &str) -> Vec<Value> {
    let d = w.api.gql(FIRES, json!({"id": id})).await.unwrap();
    let mut f = d["schedule"]["fires"].as_array().unwrap().clone();
    f.reverse(); // oldest first
    f
}

async fn pause(w: &World, id: &str) -> Value {
    w.api
        .gql(
            "mutation($id: ID!) { pauseSchedule(id: $id) { enabled nextFireAt } }",
            json!({"id": id}),
        )
        .await
        .unwrap()["pauseSchedule"]
        .clone()
}

fn due(f: &Value) -> chrono::DateTime<chrono::Utc> {
    f["dueAt"].as_str().unwrap().parse().unwrap()
}

/// Waits until `pred` holds for the schedule's fires (oldest first).
async fn wait_fires(
    w: &World,
    id: &str,
    within: Duration,
    what: &str,
    pred: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + within;
    loop {
        let f = fires(w, id).await;
        if pred(&f) {
            return f;
        }
        assert!(
            Instant::now() < deadline,
            "no {what} within {within:?}: {f:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn two_replicas_fire_every_second_exactly_once_even_when_one_dies() {
    let w = World::new().await.unwrap();
    let mut b = Hub::start(&w.db, &w.path("hub-b"), HubOpts::default())
        .await
        .unwrap();
    let target = Target::start(w.dir.path()).await.unwrap();
    target.wait_up(Duration::from_secs(10)).await.unwrap();
    let _d = w.delegate("ticker", &[], &[]).await.unwrap();
    let tid = w
        .api
        .create_template(&quick("every-second", &target))
        .await
        .unwrap();
    let s = create(
        &w,
        json!({"t": tid, "cron": "* * * * * *", "tz": "UTC", "d": "ticker", "c": "ALLOW"}),
    )
    .await;
    let id = s["id"].as_str().unwrap().to_string();
    assert_eq!(s["enabled"], true, "{s}");
    let created = chrono::Utc::now();

    // Both replicas fire for 10 s, then replica B dies hard (mid-fire or not), then A alone.
    tokio::time::sleep(Duration::from_secs(10)).await;
    b.proc.signal(nix::sys::signal::Signal::SIGKILL);
    let _ = b.proc.child.wait().await;
    tokio::time::sleep(Duration::from_secs(12)).await;
    let paused_at = chrono::Utc::now();
    assert_eq!(pause(&w, &id).await["enabled"], false);
    tokio::time::sleep(Duration::from_millis(500)).await;

    let f = fires(&w, &id).await;
    assert!(f.len() >= 20, "{} fires: {f:#?}", f.len());
    // Every whole second from the first fire to the last, once each: no duplicate, no gap.
    let dues: Vec<_> = f.iter().map(due).collect();
    let first = dues[0];
    let last = *dues.last().unwrap();
    let want: Vec<_> = (0..=(last - first).num_seconds())
        .map(|i| first + chrono::Duration::seconds(i))
        .collect();
    assert_eq!(dues, want, "fire times must be every second, each once");
    assert!(
        first <= created + chrono::Duration::seconds(2),
        "first fire {first} long after the schedule was created at {created}"
    );
    assert!(
        last >= paused_at - chrono::Duration::seconds(2),
        "last fire {last} long before the pause at {paused_at}"
    );
    for x in &f {
        assert_eq!(x["outcome"], "STARTED", "{x}");
        assert_eq!(x["run"]["scheduleId"], id.as_str(), "{x}");
    }
    let run_ids: BTreeSet<&str> = f.iter().map(|x| x["runId"].as_str().unwrap()).collect();
    assert_eq!(run_ids.len(), f.len(), "one run per fire");
    // The runs list agrees: as many runs of this schedule as fire times.
    let runs = w
        .api
        .gql(
            "query($s: ID!) { runs(scheduleId: $s, limit: 1000) { id status createdBy } }",
            json!({"s": id}),
        )
        .await
        .unwrap();
    let runs = runs["runs"].as_array().unwrap();
    assert_eq!(runs.len(), f.len(), "{runs:#?}");
    assert!(runs
        .iter()
        .all(|r| r["createdBy"].as_str().unwrap().starts_with("schedule:")));
    // They ran (on the delegate, through whichever replica): wait for all to end, then check.
    let deadline = Instant::now() + Duration::from_secs(60);
    for r in runs {
        let left = deadline.saturating_duration_since(Instant::now());
        let run = w
            .api
            .wait_status(r["id"].as_str().unwrap(), TERMINAL, left)
            .await
            .unwrap();
        assert_eq!(run["status"], "PASSED", "{run}");
    }
}

#[tokio::test]
async fn forbid_skips_and_queue_waits_while_a_run_is_unfinished() {
    let w = World::new().await.unwrap();
    let target = Target::start(w.dir.path()).await.unwrap();
    target.wait_up(Duration::from_secs(10)).await.unwrap();
    let _d = w.delegate("slow", &[], &[]).await.unwrap();
    // Runs of about 3 s (a 3 s pause of the target), fired every second.
    let tid = w
        .api
        .create_template(&pause_template("long-run", &target, "3s"))
        .await
        .unwrap();
    let forbid = create(
        &w,
        json!({"t": tid, "cron": "* * * * * *", "tz": "UTC", "d": "slow", "c": "FORBID", "name": "forbid"}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let f = wait_fires(&w, &forbid, Duration::from_secs(30), "skipped fires", |f| {
        f.iter().filter(|x| x["outcome"] == "SKIPPED").count() >= 3
    })
    .await;
    pause(&w, &forbid).await;
    let skipped = f.iter().find(|x| x["outcome"] == "SKIPPED").unwrap();
    let reason = skipped["reason"].as_str().unwrap();
    assert!(
        reason.contains("still") && reason.contains("forbid"),
        "{reason}"
    );
    assert!(skipped["runId"].is_null(), "{skipped}");
    let started = f.iter().filter(|x| x["outcome"] == "STARTED").count();
    assert!(started >= 1, "{f:#?}");
    // Never two of its runs unfinished at once: each started run's window precedes the next.
    let runs = w
        .api
        .gql(
            "query($s: ID!) { runs(scheduleId: $s, limit: 100) { id createdAt endedAt } }",
            json!({"s": forbid}),
        )
        .await
        .unwrap()["runs"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(runs.len(), started);
    for pair in runs.windows(2) {
        // Newest first: the older run ended before the newer was created.
        let (newer, older) = (&pair[0], &pair[1]);
        assert!(
            older["endedAt"].as_str().unwrap() <= newer["createdAt"].as_str().unwrap(),
            "{older} overlaps {newer}"
        );
    }
    // Wait for forbid's last run to end so the two schedules do not share the target's pause.
    for r in &runs {
        w.api
            .wait_status(r["id"].as_str().unwrap(), TERMINAL, Duration::from_secs(30))
            .await
            .unwrap();
    }

    // queue: a fire during the run waits (QUEUED), later ones are skipped, and the waiting one
    // starts when the run ends.
    let queue = create(
        &w,
        json!({"t": tid, "cron": "* * * * * *", "tz": "UTC", "d": "slow", "c": "QUEUE", "name": "queue"}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let f = wait_fires(
        &w,
        &queue,
        Duration::from_secs(30),
        "a queued fire that started",
        |f| {
            // The second run started from a fire that waited: its fire was handled well after
            // its due time.
            f.iter().filter(|x| x["outcome"] == "STARTED").count() >= 2
        },
    )
    .await;
    pause(&w, &queue).await;
    let waited = f
        .iter()
        .filter(|x| x["outcome"] == "STARTED")
        .nth(1)
        .unwrap();
    let waited_for = chrono::DateTime::parse_from_rfc3339(waited["firedAt"].as_str().unwrap())
        .unwrap()
        .with_timezone(&chrono::Utc)
        - due(waited);
    assert!(
        waited_for > chrono::Duration::milliseconds(1500),
        "the second run should have waited for the first: {waited}\n{f:#?}"
    );
    let skipped = f
        .iter()
        .find(|x| x["outcome"] == "SKIPPED")
        .expect("fires while one waits are skipped");
    assert!(
        skipped["reason"]
            .as_str()
            .unwrap()
            .contains("already waits"),
        "{skipped}"
    );
}

#[tokio::test]
async fn fires_that_cannot_start_are_recorded_with_the_reason_and_listed_as_runs() {
    let w = World::new().await.unwrap();
    let target = Target::start(w.dir.path()).await.unwrap();
    let tid = w
        .api
        .create_template(&quick("nobody-home", &target))
        .await
        .unwrap();
    let id = create(
        &w,
        json!({"t": tid, "cron": "* * * * * *", "tz": "Europe/Berlin", "d": "env=nowhere", "c": "FORBID"}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let f = wait_fires(&w, &id, Duration::from_secs(15), "2 failed fires", |f| {
        f.iter().filter(|x| x["outcome"] == "FAILED").count() >= 2
    })
    .await;
    pause(&w, &id).await;
    let failed = f.iter().find(|x| x["outcome"] == "FAILED").unwrap();
    let reason = failed["reason"].as_str().unwrap();
    assert!(reason.contains("env=nowhere"), "{reason}");
    // forbid does not hold back fires after a failure: the failed run has ended.
    assert_eq!(failed["run"]["status"], "ERROR", "{failed}");
    assert!(failed["run"]["delegate"].is_null(), "{failed}");
    assert_eq!(failed["run"]["reason"].as_str().unwrap(), reason);
    // The runs list shows them too.
    let errors = w
        .api
        .gql(
            "query { runs(status: [ERROR]) { id scheduleId schedule { name } reason } }",
            json!({}),
        )
        .await
        .unwrap();
    let errors = errors["runs"].as_array().unwrap();
    assert!(
        errors.iter().any(|r| r["scheduleId"] == id.as_str()
            && r["reason"].as_str().unwrap().contains("env=nowhere")),
        "{errors:#?}"
    );

    // A halted project: the fire fails naming the halt.
    let _d = w.delegate("home", &[], &[]).await.unwrap();
    w.api
        .gql(
            "mutation { haltAll(reason: \"game day over\") { halted } }",
            json!({}),
        )
        .await
        .unwrap();
    let id = create(
        &w,
        json!({"t": tid, "cron": "* * * * * *", "tz": "UTC", "d": "home", "c": "ALLOW", "name": "halted"}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let f = wait_fires(&w, &id, Duration::from_secs(15), "a failed fire", |f| {
        f.iter().any(|x| x["outcome"] == "FAILED")
    })
    .await;
    pause(&w, &id).await;
    let failed = f.iter().find(|x| x["outcome"] == "FAILED").unwrap();
    assert!(
        failed["reason"].as_str().unwrap().contains("game day over"),
        "{failed}"
    );
    assert_eq!(failed["run"]["delegate"]["name"], "home", "{failed}");
}

#[tokio::test]
async fn pause_stops_fires_and_resume_continues_from_the_next_one() {
    let w = World::new().await.unwrap();
    let target = Target::start(w.dir.path()).await.unwrap();
    target.wait_up(Duration::from_secs(10)).await.unwrap();
    let _d = w.delegate("p", &[], &[]).await.unwrap();
    let tid = w
        .api
        .create_template(&quick("pausing", &target))
        .await
        .unwrap();
    let id = create(
        &w,
        json!({"t": tid, "cron": "* * * * * *", "tz": "UTC", "d": "p", "c": "ALLOW"}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_fires(&w, &id, Duration::from_secs(10), "2 fires", |f| {
        f.len() >= 2
    })
    .await;
    let p = pause(&w, &id).await;
    assert!(p["nextFireAt"].is_null(), "{p}");
    let before = fires(&w, &id).await.len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(fires(&w, &id).await.len(), before, "no fire while paused");

    let resumed_at = chrono::Utc::now();
    let r = w
        .api
        .gql(
            "mutation($id: ID!) { resumeSchedule(id: $id) { enabled nextFireAt } }",
            json!({"id": id}),
        )
        .await
        .unwrap();
    assert_eq!(r["resumeSchedule"]["enabled"], true);
    let f = wait_fires(
        &w,
        &id,
        Duration::from_secs(10),
        "fires after resume",
        |f| f.len() >= before + 2,
    )
    .await;
    pause(&w, &id).await;
    // Continued from the next fire after the resume: the 3 s paused were not made up.
    let after: Vec<_> = f[before..].iter().map(due).collect();
    assert!(
        after[0] > resumed_at - chrono::Duration::milliseconds(1000),
        "first fire after resume {} is before the resume at {resumed_at}",
        after[0]
    );
    assert!(f.iter().all(|x| x["outcome"] == "STARTED"), "{f:#?}");
}

#[tokio::test]
async fn fires_missed_while_no_hub_ran_follow_the_catch_up_window() {
    let dir = tempfile::Builder::new()
        .prefix("faultline-e2e-")
        .tempdir()
        .unwrap();
    let db = faultline_e2e::fresh_database().await.unwrap();
    let opts = || HubOpts {
        extra: vec!["--schedule-catch-up".into(), "2s".into()],
        ..Default::default()
    };
    let data = dir.path().join("hub");
    let mut hub = Hub::start(&db, &data, opts()).await.unwrap();
    let token = hub.admin_token.clone().unwrap();
    let api = hub.client(&token).unwrap();
    let target = Target::start(dir.path()).await.unwrap();
    let tid = api
        .create_template(&quick("missed", &target))
        .await
        .unwrap();
    // Every 2 s, to no delegate (fires fail, which is enough to see them).
    let d = api
        .gql(
            "mutation($t: ID!) { createSchedule(templateId: $t, cron: \"*/2 * * * * *\", delegate: \"none\", concurrency: ALLOW) { id } }",
            json!({"t": tid}),
        )
        .await
        .unwrap();
    let id = d["createSchedule"]["id"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_secs(3)).await;

    // The only hub goes down for 9 s.
    hub.proc.signal(nix::sys::signal::Signal::SIGKILL);
    let _ = hub.proc.child.wait().await;
    let down = chrono::Utc::now();
    tokio::time::sleep(Duration::from_secs(9)).await;
    let addr = hub.addr.clone();
    let up = chrono::Utc::now();
    hub = Hub::start(
        &db,
        &data,
        HubOpts {
            listen: addr,
            ..opts()
        },
    )
    .await
    .unwrap();
    let api = hub.client(&token).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let f = loop {
        let d = api.gql(FIRES, json!({"id": id})).await.unwrap();
        let mut f = d["schedule"]["fires"].as_array().unwrap().clone();
        f.reverse();
        let after_up: Vec<&Value> = f.iter().filter(|x| due(x) > up).collect();
        if f.iter().any(|x| x["outcome"] == "MISSED") && !after_up.is_empty() {
            break f;
        }
        assert!(Instant::now() < deadline, "{f:#?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let _ = hub.proc.stop(Duration::from_secs(5)).await;
    let missed: Vec<&Value> = f.iter().filter(|x| x["outcome"] == "MISSED").collect();
    assert_eq!(missed.len(), 1, "one record for the gap: {f:#?}");
    let m = missed[0];
    // Down ~9 s and more (the hub's start) with a fire every 2 s: at least 3 fire times
    // passed, and all but possibly the latest are older than the 2 s window.
    let count = m["missedCount"].as_i64().unwrap();
    assert!((3..=8).contains(&count), "{m}");
    assert!(due(m) >= down - chrono::Duration::seconds(2), "{m}");
    assert!(m["reason"].as_str().unwrap().contains("no hub"), "{m}");
    // Every fire time is accounted for exactly once: handled ones plus the missed count.
    let handled: Vec<_> = f
        .iter()
        .filter(|x| x["outcome"] != "MISSED")
        .map(due)
        .collect();
    let first = due(&f[0]);
    let last = due(f.last().unwrap());
    let expected = (last - first).num_seconds() / 2 + 1;
    assert_eq!(handled.len() as i64 + count, expected, "{f:#?}");
}

#[tokio::test]
async fn the_api_checks_its_input_roles_and_audits() {
    let w = World::new().await.unwrap();
    let target = Target::start(w.dir.path()).await.unwrap();
    let tid = w
        .api
        .create_template(&quick("checked", &target))
        .await
        .unwrap();
    let q = "mutation($t: ID!, $cron: String!, $tz: String!, $j: String, $v: Int) { \
               createSchedule(templateId: $t, cron: $cron, timezone: $tz, jitter: $j, version: $v) { id } }";
    for (cron, tz, jitter, version, field, says) in [
        ("61 * * * *", "UTC", None, None, "cron", "61"),
        ("* * *", "UTC", None, None, "cron", "3 fields"),
        ("0 0 30 2 *", "UTC", None, None, "cron", "never fires"),
        (
            "0 * * * *",
            "Europe/Atlantis",
            None,
            None,
            "timezone",
            "IANA",
        ),
        (
            "0 * * * *",
            "UTC",
            Some("a while"),
            None,
            "jitter",
            "a while",
        ),
        ("0 * * * *", "UTC", None, Some(7), "version", "no version 7"),
    ] {
        let e = w
            .api
            .try_gql(
                q,
                json!({"t": tid, "cron": cron, "tz": tz, "j": jitter, "v": version}),
            )
            .await
            .unwrap()
            .expect_err(cron);
        assert_eq!(e.extensions["field"], field, "{cron} {tz}: {e}");
        assert!(e.message.contains(says), "{cron} {tz}: {e}");
    }

    // The preview the dashboard's cron helper uses.
    let p = w
        .api
        .gql(
            "query { cronPreview(cron: \"30 2 * * *\", timezone: \"Europe/Berlin\", n: 3) { description timezone nextFires } }",
            json!({}),
        )
        .await
        .unwrap();
    assert_eq!(p["cronPreview"]["nextFires"].as_array().unwrap().len(), 3);
    assert_eq!(p["cronPreview"]["timezone"], "Europe/Berlin");

    // An editor creates, updates, pauses, resumes and deletes; a viewer only reads.
    let s = w
        .api
        .gql(
            "mutation($t: ID!) { createSchedule(templateId: $t, cron: \"@hourly\", name: \"nightly-ish\", enabled: false) { id enabled nextFireAt nextFires(n: 2) } }",
            json!({"t": tid}),
        )
        .await
        .unwrap()["createSchedule"]
        .clone();
    let id = s["id"].as_str().unwrap().to_string();
    assert_eq!(s["enabled"], false);
    assert!(s["nextFireAt"].is_null());
    assert_eq!(s["nextFires"].as_array().unwrap().len(), 2, "{s}");
    let u = w
        .api
        .gql(
            "mutation($id: ID!) { updateSchedule(id: $id, cron: \"0 9 * * MON-FRI\", timezone: \"America/New_York\", concurrency: QUEUE, jitter: \"30s\") { cron timezone concurrency jitterMs description } }",
            json!({"id": id}),
        )
        .await
        .unwrap();
    assert_eq!(u["updateSchedule"]["concurrency"], "QUEUE");
    assert_eq!(u["updateSchedule"]["jitterMs"], 30_000);
    let dup = w
        .api
        .try_gql(
            "mutation($t: ID!) { createSchedule(templateId: $t, cron: \"@daily\", name: \"nightly-ish\") { id } }",
            json!({"t": tid}),
        )
        .await
        .unwrap()
        .expect_err("duplicate name");
    assert_eq!(dup.extensions["field"], "name", "{dup}");

    let viewer = w
        .api
        .gql(
            "mutation { createApiToken(project: \"default\", name: \"reader\", role: VIEWER) { secret } }",
            json!({}),
        )
        .await
        .unwrap()["createApiToken"]["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let v = w.hub.client(&viewer).unwrap();
    let listed = v
        .gql("query { schedules { id name } }", json!({}))
        .await
        .unwrap();
    assert_eq!(listed["schedules"].as_array().unwrap().len(), 1);
    let e = v
        .try_gql(
            "mutation($id: ID!) { pauseSchedule(id: $id) { id } }",
            json!({"id": id}),
        )
        .await
        .unwrap()
        .expect_err("viewers cannot pause");
    assert_eq!(e.extensions["code"], "FORBIDDEN", "{e}");

    w.api
        .gql(
            "mutation($id: ID!) { deleteSchedule(id: $id) }",
            json!({"id": id}),
        )
        .await
        .unwrap();
    let audit = w
        .api
        .gql(
            "query { auditLog(first: 100) { entries { action target outcome } } }",
            json!({}),
        )
        .await
        .unwrap();
    let actions: Vec<(&str, &str)> = audit["auditLog"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"].as_str().unwrap().starts_with("schedule."))
        .map(|a| {
            (
                a["action"].as_str().unwrap(),
                a["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    for want in ["schedule.create", "schedule.update", "schedule.delete"] {
        assert!(
            actions.iter().any(|(a, o)| *a == want && *o == "ok"),
            "{want}: {actions:?}"
        );
    }
    assert!(
        actions
            .iter()
            .any(|(a, o)| *a == "schedule.create" && o.starts_with("error")),
        "refused creates are audited too: {actions:?}"
    );
}
