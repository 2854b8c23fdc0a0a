//! The hub's database goes away for 30 s in the middle of a run and comes back: a real
//! PostgreSQL of its own (not the shared test server), stopped and started again on the same
//! data directory and port.
use anyhow::{Context, Result};
use faultline_e2e::{bin, free_port, pause_template, proc_state, Hub, HubOpts, Proc, Target};
use std::{
    path::Path,
    time::{Duration, Instant},
};
use tokio::process::Command;

/// A private PostgreSQL on `dir`, listening on `port`; returns its process and admin URL.
async fn postgres(dir: &Path, port: u16) -> Result<(Proc, String)> {
    let mut cmd = Command::new(bin("faultline"));
    cmd.args([
        "postgres",
        "--max-connections",
        "50",
        "--port",
        &port.to_string(),
        "--data-dir",
    ])
    .arg(dir)
    .env("FAULTLINE_PG_NOSYNC", "1");
    let n = std::fs::read_dir(dir)?.count();
    let mut p = Proc::spawn(cmd, dir.with_extension(format!("{n}.log")), "pg").await?;
    let url = p
        .wait_line("postgres ready ", Duration::from_secs(60))
        .await?;
    Ok((p, url))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_of_30s_keeps_faults_running_and_loses_no_event() -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new()
        .prefix("faultline-outage-")
        .tempdir()?;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
    let pg_dir = dir.path().join("pg");
    std::fs::create_dir_all(&pg_dir)?;
    std::fs::set_permissions(&pg_dir, std::fs::Permissions::from_mode(0o755))?;
    let port = free_port()?;
    let (mut pg, admin) = postgres(&pg_dir, port).await?;
    {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&admin).await?;
        sqlx::query("CREATE DATABASE outage")
            .execute(&mut c)
            .await?;
    }
    let db = faultline_e2e::with_database(&admin, "outage");
    let hub = Hub::start(&db, &dir.path().join("hub"), HubOpts::default()).await?;
    let api = hub.client(hub.admin_token.as_deref().context("admin token")?)?;
    let token = api.delegate_token().await?;
    let _delegate = faultline_e2e::Delegate::start(
        &hub,
        &hub.url,
        &token,
        "d1",
        &[],
        &dir.path().join("delegate"),
        &[],
    )
    .await?;
    let target = Target::start(dir.path()).await?;
    let tid = api
        .create_template(&pause_template("outage", &target, "25s"))
        .await?;
    let run = api.start_run(&tid, "d1").await?;
    api.wait_event(&run, "fault.applied", Duration::from_secs(20))
        .await?;

    // The database stops (a fast shutdown: the hub's connections are cut).
    let down = Instant::now();
    assert!(pg.stop(Duration::from_secs(30)).await?, "postgres stopped");

    let ready = api.http.get(format!("{}/readyz", hub.url)).send().await?;
    assert_eq!(ready.status().as_u16(), 503, "/readyz reports the database");
    assert_eq!(ready.text().await?, "database unreachable");

    // GraphQL answers at once with a clear, retryable error, not a hang or an INTERNAL.
    let asked = Instant::now();
    let err = api
        .try_gql(
            "query($id: ID!) { run(id: $id) { state } }",
            serde_json::json!({"id": run}),
        )
        .await?
        .expect_err("no database, no answer");
    assert_eq!(err.extensions["code"], "UNAVAILABLE", "{err:?}");
    assert!(
        err.message.contains("database is unavailable"),
        "{}",
        err.message
    );
    assert!(
        asked.elapsed() < Duration::from_secs(12),
        "answered within the acquire timeout (took {:?})",
        asked.elapsed()
    );

    // The delegate keeps its fault: the target stays paused while the hub has no database.
    while down.elapsed() < Duration::from_secs(15) {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(
        proc_state(target.pid()),
        Some('T'),
        "the fault is still applied 15 s into the outage"
    );
    // ... and ends it on time on its own (25 s), buffering the run's last events.
    while down.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_ne!(
        proc_state(target.pid()),
        Some('T'),
        "reverted at the end of its duration"
    );

    // The database returns after 30 s; everything drains.
    let (_pg, _) = postgres(&pg_dir, port).await?;
    let ready_at = Instant::now();
    loop {
        let r = api.http.get(format!("{}/readyz", hub.url)).send().await?;
        if r.status().as_u16() == 200 {
            break;
        }
        anyhow::ensure!(
            ready_at.elapsed() < Duration::from_secs(20),
            "/readyz stayed 503"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let done = api
        .wait_status(
            &run,
            &["PASSED", "FAILED", "ERROR", "ABORTED"],
            Duration::from_secs(60),
        )
        .await?;
    assert!(
        matches!(done["status"].as_str(), Some("PASSED" | "FAILED")),
        "the run ends on its verdict, not lost: {done}"
    );

    // Every event stored exactly once, in order, up to run.finished; every check stored.
    let pool = sqlx::PgPool::connect(&db).await?;
    let id: uuid::Uuid = run.parse()?;
    let (count, max, acked): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), COALESCE(max(e.seq), 0), min(r.acked_seq) FROM run_events e JOIN runs r ON r.id = e.run_id WHERE e.run_id = $1",
    )
    .bind(id)
    .fetch_one(&pool)
    .await?;
    assert_eq!(count, max, "no gap: seqs 1..={max}");
    assert_eq!(acked, max, "every event acknowledged");
    let (last,): (String,) =
        sqlx::query_as("SELECT kind FROM run_events WHERE run_id = $1 ORDER BY seq DESC LIMIT 1")
            .bind(id)
            .fetch_one(&pool)
            .await?;
    assert_eq!(last, "run.finished");
    let (checks, check_events): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM probe_checks WHERE run_id = $1), \
                (SELECT count(*) FROM run_events WHERE run_id = $1 AND kind = 'probe.check')",
    )
    .bind(id)
    .fetch_one(&pool)
    .await?;
    assert!(checks > 20, "{checks} checks");
    assert_eq!(
        checks, check_events,
        "one stored check per probe.check event"
    );

    // The delegate is connected again, on a fresh heartbeat.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let d = api
            .gql("{ delegates { name connected } }", serde_json::json!({}))
            .await?;
        if d["delegates"][0]["connected"] == true {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "delegate not connected again: {d}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    Ok(())
}
