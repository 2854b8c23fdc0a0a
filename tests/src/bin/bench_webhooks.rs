//! `faultline-bench-webhooks`: how long an event takes to reach a webhook. Two hub replicas
//! share one database; a real receiver listens on loopback; `--events` times (default 200) the
//! project is halted and the halt lifted, each halt enqueueing one `project.halted` event (in the
//! halt's transaction) for a signed JSON webhook. Prints the delay from the event's time (stored
//! by Postgres inside that transaction) to the request arriving at the receiver, p50 / p99 / max,
//! and checks that every event arrived exactly once and every delivery is recorded delivered.
//!
//! Build first: `cargo build --workspace --bins`, then run
//! `target/debug/faultline-bench-webhooks`. Uses `FAULTLINE_TEST_PG` if set, else starts a
//! private PostgreSQL.
use anyhow::{ensure, Context, Result};
use faultline_e2e::{arg, pct};
use faultline_e2e::{receiver::Receiver, Hub, HubOpts};
use serde_json::json;
use sqlx::Connection;
use std::{
    collections::HashMap,
    time::{Duration, UNIX_EPOCH},
};

#[tokio::main]
async fn main() -> Result<()> {
    let n = arg("--events", 200);
    let pg = faultline_e2e::private_pg_unless_set().await?;
    let dir = tempfile::Builder::new()
        .prefix("faultline-bench-webhooks-")
        .tempdir()?;
    let db = faultline_e2e::fresh_database().await?;
    let opts = || HubOpts {
        extra: vec!["--webhook-allow".into(), "127.0.0.0/8".into()],
        ..Default::default()
    };
    let a = Hub::start(&db, &dir.path().join("hub-a"), opts()).await?;
    let b = Hub::start(&db, &dir.path().join("hub-b"), opts()).await?;
    let api = a.client(a.admin_token.as_deref().context("first hub's admin")?)?;
    let rx = Receiver::start().await?;
    api.gql(
        "mutation($url: String!) { createWebhook(url: $url, events: [PROJECT_HALTED]) { webhook { id } } }",
        json!({"url": rx.url("/bench")}),
    )
    .await?;
    for i in 0..n {
        api.gql(
            "mutation($r: String!) { haltAll(reason: $r) { halted } }",
            json!({"r": format!("bench {i}")}),
        )
        .await?;
        api.gql("mutation { liftHalt { halted } }", json!({}))
            .await?;
    }
    let got = rx.wait_for(n, Duration::from_secs(60)).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got_all = rx.received();

    let mut c = sqlx::PgConnection::connect(&db).await?;
    let events: Vec<(String, f64)> = sqlx::query_as(
        "SELECT id::text, EXTRACT(EPOCH FROM at)::float8 FROM webhook_events WHERE kind = 'project.halted'",
    )
    .fetch_all(&mut c)
    .await?;
    let at: HashMap<String, f64> = events.into_iter().collect();
    let (delivered, replicas): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM webhook_deliveries WHERE state = 'delivered'), \
                (SELECT count(DISTINCT replica) FROM webhook_attempts)",
    )
    .fetch_one(&mut c)
    .await?;
    ensure!(
        got_all.len() == n && at.len() == n && delivered as usize == n,
        "{} requests, {} events, {delivered} delivered for {n} halts",
        got_all.len(),
        at.len()
    );
    let mut delay: Vec<f64> = got
        .iter()
        .map(|r| {
            let sent = at[r.header("x-faultline-event-id")];
            let recv = r.wall.duration_since(UNIX_EPOCH).unwrap().as_secs_f64();
            (recv - sent) * 1000.0
        })
        .collect();
    let distinct: std::collections::HashSet<&str> = got_all
        .iter()
        .map(|r| r.header("x-faultline-event-id"))
        .collect();
    ensure!(distinct.len() == n, "an event arrived twice");
    delay.sort_by(f64::total_cmp);
    println!("faultline-bench-webhooks ({n} events, 2 hub replicas, 1 receiver on loopback)");
    println!("events: {n}, each received once; attempts by {replicas} replica(s)");
    println!(
        "event -> received: p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
        pct(&delay, 0.5),
        pct(&delay, 0.99),
        delay[delay.len() - 1]
    );
    drop((a, b, rx));
    if let Some(mut pg) = pg {
        pg.0.stop(Duration::from_secs(30)).await?;
    }
    Ok(())
}
