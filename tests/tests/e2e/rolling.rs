//! A graceful rolling restart: two replicas on one Postgres behind one address (the harness's
//! TCP load balancer, TLS passing through, both replicas presenting one certificate), real
//! delegates running real pause faults all along. Each replica in turn gets SIGTERM and is
//! started again on its port and data directory. No run and no event may be lost, and every
//! delegate must stream to the other replica within the heartbeat timeout.
//!
//! Without a balancer: delegates given every replica's address (`--hub A,B`) survive a replica
//! killed outright (SIGKILL, no `GoingAway`) in the middle of their runs.
use anyhow::{Context, Result};
use faultline_e2e::{
    lb::Balancer,
    pause_template, proc_state,
    soak::{keep_running, run_rows},
    Api, Delegate, Hub, HubOpts, Target, TERMINAL,
};
use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

/// The harness's `--heartbeat-interval`; a delegate or replica counts the other side lost after
/// three silent intervals.
const HEARTBEAT: Duration = Duration::from_secs(1);
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(3);
const DELEGATES: usize = 4;

fn replica(id: &str) -> HubOpts {
    HubOpts {
        extra: vec!["--replica-id".into(), id.into()],
        ..Default::default()
    }
}

async fn streams_on(pool: &sqlx::PgPool, replica: &str) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM delegates WHERE connected_replica = $1 AND session_id IS NOT NULL",
    )
    .bind(replica)
    .fetch_one(pool)
    .await?)
}

/// Which of the two replicas holds more streams (the first on a tie).
async fn busier(pool: &sqlx::PgPool, ids: [&str; 2]) -> Result<usize> {
    Ok(usize::from(
        streams_on(pool, ids[0]).await? < streams_on(pool, ids[1]).await?,
    ))
}

/// How long after `since` every delegate streamed to `replica`; fails past three heartbeat
/// timeouts.
async fn all_on(pool: &sqlx::PgPool, replica: &str, since: Instant) -> Result<Duration> {
    loop {
        if streams_on(pool, replica).await? == DELEGATES as i64 {
            return Ok(since.elapsed());
        }
        assert!(
            since.elapsed() < HEARTBEAT_TIMEOUT * 3,
            "delegates still not on {replica} after {:?}",
            since.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The runs once every one has ended with all its events, or as they are after 45 s.
async fn settled_runs(pool: &sqlx::PgPool) -> Result<Vec<faultline_e2e::soak::RunRow>> {
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let rows = run_rows(pool).await?;
        let settled = rows
            .iter()
            .all(|r| TERMINAL.contains(&r.state.as_str()) && r.complete());
        if settled || Instant::now() > deadline {
            return Ok(rows);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_each_replica_in_turn_drops_no_run_and_no_event() -> Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("faultline-rolling-")
        .tempdir()?;
    let db = faultline_e2e::fresh_database().await?;
    let a = Hub::start(&db, &dir.path().join("hub-a"), replica("roll-a")).await?;
    let b = a
        .replica(&dir.path().join("hub-b"), replica("roll-b"))
        .await?;
    let lb = Balancer::start(0, vec![a.addr.parse()?, b.addr.parse()?]).await?;
    let token = a.admin_token.clone().context("admin token")?;
    // Every client, the test's GraphQL calls too, knows only the balancer's address.
    let api = Api::new(&lb.url(), &a.ca, &token)?;
    let pool = sqlx::PgPool::connect(&db).await?;

    let mut targets = Vec::new();
    let mut delegates = Vec::new();
    let mut templates = Vec::new();
    for i in 0..DELEGATES {
        let name = format!("roll-{i}");
        let target = Target::start(dir.path()).await?;
        let t = api.delegate_token().await?;
        let state = dir.path().join(format!("d-{i}"));
        delegates.push(Delegate::start(&a, &lb.url(), &t, &name, &[], &state, &[]).await?);
        templates.push(
            api.create_template(&pause_template(&name, &target, "2s"))
                .await?,
        );
        targets.push(target);
    }
    let mut hubs = [a, b];
    let ids = ["roll-a", "roll-b"];

    let stop = Arc::new(AtomicBool::new(false));
    let (started, retried) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let loops: Vec<_> = templates
        .iter()
        .enumerate()
        .map(|(i, t)| {
            tokio::spawn(keep_running(
                api.clone(),
                pool.clone(),
                t.clone(),
                format!("roll-{i}"),
                stop.clone(),
                started.clone(),
                retried.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(4)).await;

    // The replica holding more streams goes first; afterwards the other holds them all.
    let first = busier(&pool, ids).await?;
    for i in [first, 1 - first] {
        let (this, other) = (ids[i], ids[1 - i]);
        let held = streams_on(&pool, this).await?;
        assert!(
            held >= (DELEGATES / 2) as i64,
            "{this} holds {held} of {DELEGATES} streams before its restart"
        );
        let sigterm = Instant::now();
        hubs[i].proc.signal(nix::sys::signal::Signal::SIGTERM);
        // Every delegate streams to the other replica, well within the heartbeat timeout: the
        // stopping replica tells each one to go away, and the balancer sends it to the other.
        let moved = all_on(&pool, other, sigterm).await?;
        eprintln!(
            "{this}: SIGTERM → all {DELEGATES} delegates on {other} in {moved:?} ({held} moved)"
        );
        assert!(
            moved < HEARTBEAT_TIMEOUT,
            "{held} delegates took {moved:?} to move from {this} to {other}; the heartbeat timeout is {HEARTBEAT_TIMEOUT:?} ({HEARTBEAT:?} × 3)"
        );
        let status = tokio::time::timeout(Duration::from_secs(10), hubs[i].proc.child.wait())
            .await
            .context("the replica did not exit within 10 s of SIGTERM")??;
        assert!(status.success(), "{this} exited cleanly: {status}");
        assert_eq!(
            streams_on(&pool, this).await?,
            0,
            "the stopped replica left no stream marked as its own"
        );
        hubs[i].restart(replica(this).extra).await?;
        tokio::time::sleep(Duration::from_secs(4)).await;
    }

    stop.store(true, Ordering::Relaxed);
    for l in loops {
        l.await?;
    }
    let rows = settled_runs(&pool).await?;
    assert!(
        rows.len() >= DELEGATES * 3,
        "runs kept flowing: {} runs",
        rows.len()
    );
    for r in &rows {
        assert!(
            matches!(r.state.as_str(), "PASSED" | "FAILED"),
            "every run ends on its verdict, none lost or stuck: {r:?}"
        );
        assert!(
            r.complete(),
            "seqs 1..N with no gap, all acknowledged, ending run.finished: {r:?}"
        );
        assert_eq!(
            (r.applied, r.reverted, r.finished),
            (1, 1, 1),
            "one fault applied and reverted, one run.finished: {r:?}"
        );
    }
    for t in &targets {
        assert_ne!(proc_state(t.pid()), Some('T'), "no fault left applied");
    }
    // The delegates heard the replicas go away (their logs are files unless TEST_LOG is set).
    if std::env::var_os("TEST_LOG").is_none() {
        let told = delegates
            .iter()
            .filter(|d| {
                std::fs::read_to_string(&d.proc.log)
                    .unwrap_or_default()
                    .contains("the hub replica is going away")
            })
            .count();
        assert_eq!(
            told, DELEGATES,
            "every delegate was told to reconnect at least once"
        );
    }
    eprintln!(
        "{} runs, {} startRun calls retried during the restarts",
        rows.len(),
        retried.load(Ordering::Relaxed)
    );
    Ok(())
}

/// No balancer: each delegate knows both replicas' addresses. The replica holding the streams is
/// SIGKILLed while every delegate is in the middle of a pause fault; the delegates reach the other
/// replica on their own within the heartbeat timeout, and every run ends on its verdict with all
/// its events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delegates_that_know_every_replica_survive_one_killed_without_a_balancer() -> Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("faultline-multihub-")
        .tempdir()?;
    let db = faultline_e2e::fresh_database().await?;
    let a = Hub::start(&db, &dir.path().join("hub-a"), replica("multi-a")).await?;
    let b = a
        .replica(&dir.path().join("hub-b"), replica("multi-b"))
        .await?;
    let token = a.admin_token.clone().context("admin token")?;
    let apis = [
        Api::new(&a.url, &a.ca, &token)?,
        Api::new(&b.url, &b.ca, &token)?,
    ];
    let pool = sqlx::PgPool::connect(&db).await?;
    let both = format!("{},{}", a.url, b.url);

    let mut targets = Vec::new();
    let mut delegates = Vec::new();
    let mut templates = Vec::new();
    for i in 0..DELEGATES {
        let name = format!("multi-{i}");
        let target = Target::start(dir.path()).await?;
        let t = apis[0].delegate_token().await?;
        let state = dir.path().join(format!("d-{i}"));
        delegates.push(Delegate::start(&a, &both, &t, &name, &[], &state, &[]).await?);
        templates.push(
            apis[0]
                .create_template(&pause_template(&name, &target, "6s"))
                .await?,
        );
        targets.push(target);
    }
    let hubs = [a, b];
    let ids = ["multi-a", "multi-b"];
    // The delegates start at a random address: kill the replica holding more streams.
    let k = busier(&pool, ids).await?;
    let (killed, other) = (ids[k], ids[1 - k]);
    let api = &apis[1 - k];
    let mut runs = Vec::new();
    for (i, t) in templates.iter().enumerate() {
        runs.push(api.start_run(t, &format!("multi-{i}")).await?);
    }
    // Every fault applied (the targets are stopped) before the kill.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !targets.iter().all(|t| proc_state(t.pid()) == Some('T')) {
        assert!(
            Instant::now() < deadline,
            "the pause faults were not all applied"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let held = streams_on(&pool, killed).await?;
    assert!(held >= 1, "{killed} holds {held} of {DELEGATES} streams");
    let kill = Instant::now();
    hubs[k].proc.signal(nix::sys::signal::Signal::SIGKILL);
    // A killed replica cannot clear its rows, but the other replica's count is what matters.
    let moved = all_on(&pool, other, kill).await?;
    eprintln!(
        "{killed} SIGKILLed → all {DELEGATES} delegates on {other} in {moved:?} ({held} moved)"
    );
    assert!(
        moved < HEARTBEAT_TIMEOUT,
        "{held} delegates took {moved:?} to reach {other}; the heartbeat timeout is {HEARTBEAT_TIMEOUT:?}"
    );

    let rows = settled_runs(&pool).await?;
    assert_eq!(rows.len(), runs.len());
    for r in &rows {
        assert!(
            matches!(r.state.as_str(), "PASSED" | "FAILED"),
            "the run ends on its verdict, not lost or stuck: {r:?}"
        );
        assert!(
            r.complete(),
            "seqs 1..N, all acknowledged, ending run.finished: {r:?}"
        );
        assert_eq!((r.applied, r.reverted, r.finished), (1, 1, 1), "{r:?}");
    }
    for t in &targets {
        assert_ne!(proc_state(t.pid()), Some('T'), "no fault left applied");
    }
    drop(delegates);
    Ok(())
}
