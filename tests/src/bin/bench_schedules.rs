//! `faultline-bench-schedules`: how late schedules fire. Two hub replicas share one database;
//! `--schedules` schedules fire every second (6-field cron) for `--seconds` seconds, each
//! starting a steady-state run on one real delegate. Prints the delay from each fire time to
//! its run being stored as PENDING (the fire's record, written after the run in the same
//! transaction), p50 / p99 / max, and checks that every fire time fired exactly once.
//!
//! Build first: `cargo build --release --workspace --bins`, then run
//! `target/release/faultline-bench-schedules`. Uses `FAULTLINE_TEST_PG` if set, else starts a
//! private PostgreSQL.
use anyhow::{ensure, Result};
use faultline_e2e::{arg, pct};
use faultline_e2e::{Hub, HubOpts, Target, World};
use serde_json::json;
use sqlx::Connection;
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<()> {
    let n = arg("--schedules", 10);
    let secs = arg("--seconds", 20);
    let pg = faultline_e2e::private_pg_unless_set().await?;
    let w = World::new().await?;
    let b = Hub::start(&w.db, &w.path("hub-b"), HubOpts::default()).await?;
    let target = Target::start(w.dir.path()).await?;
    target.wait_up(Duration::from_secs(10)).await?;
    let _d = w.delegate("bench", &[], &[]).await?;
    let yaml = format!(
        "apiVersion: faultline.dev/v1\nkind: Experiment\nmetadata: {{name: tick}}\nhypothesis:\n  probes:\n    \
         - {{name: web, mode: edge, http: {{url: \"{}\"}}, timeout: 2s}}\n",
        target.url()
    );
    let tid = w.api.create_template(&yaml).await?;
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let d = w
            .api
            .gql(
                "mutation($t: ID!, $name: String!) { createSchedule(templateId: $t, name: $name, cron: \"* * * * * *\", delegate: \"bench\", concurrency: ALLOW) { id } }",
                json!({"t": tid, "name": format!("tick-{i}")}),
            )
            .await?;
        ids.push(
            d["createSchedule"]["id"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
    }
    tokio::time::sleep(Duration::from_secs(secs as u64)).await;
    for id in &ids {
        w.api
            .gql(
                "mutation($id: ID!) { pauseSchedule(id: $id) { id } }",
                json!({"id": id}),
            )
            .await?;
    }

    let mut c = sqlx::PgConnection::connect(&w.db).await?;
    let rows: Vec<(String, f64, String)> = sqlx::query_as(
        "SELECT schedule_id::text, EXTRACT(EPOCH FROM (fired_at - due_at))::float8 * 1000, outcome \
         FROM schedule_fires ORDER BY schedule_id, due_at",
    )
    .fetch_all(&mut c)
    .await?;
    let (dupes,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM (SELECT run_id FROM schedule_fires WHERE run_id IS NOT NULL GROUP BY run_id HAVING count(*) > 1) x",
    )
    .fetch_one(&mut c)
    .await?;
    let (gaps,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM (SELECT due_at - lag(due_at) OVER (PARTITION BY schedule_id ORDER BY due_at) AS step \
         FROM schedule_fires) x WHERE step <> interval '1 second'",
    )
    .fetch_one(&mut c)
    .await?;
    let (runs,): (i64,) = sqlx::query_as("SELECT count(*) FROM runs WHERE schedule_id IS NOT NULL")
        .fetch_one(&mut c)
        .await?;
    let started = rows.iter().filter(|r| r.2 == "started").count();
    ensure!(
        started == rows.len(),
        "every fire should have started a run: {rows:?}"
    );
    ensure!(
        dupes == 0 && gaps == 0,
        "{dupes} duplicate runs, {gaps} gaps"
    );
    ensure!(
        runs as usize == rows.len(),
        "{runs} runs for {} fires",
        rows.len()
    );
    let mut delay: Vec<f64> = rows.iter().map(|r| r.1).collect();
    delay.sort_by(f64::total_cmp);
    println!(
        "faultline-bench-schedules ({n} schedules every second for {secs} s, 2 hub replicas, 1 delegate)"
    );
    println!(
        "fires: {} (all started, one run each, no gap, no duplicate)",
        rows.len()
    );
    println!(
        "fire time -> run PENDING: p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
        pct(&delay, 0.5),
        pct(&delay, 0.99),
        delay[delay.len() - 1]
    );
    drop(b);
    drop(w);
    if let Some(mut pg) = pg {
        pg.0.stop(Duration::from_secs(30)).await?;
    }
    Ok(())
}
