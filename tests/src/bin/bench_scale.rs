//! `faultline-bench-scale`: the control plane's scale targets (issue 20), measured on this
//! machine with a release build. One subcommand per target:
//!
//! - `ingest [--delegates 100] [--runs 1000] [--events-per-run 1000] [--batch 500] [--window 4]`:
//!   emulated delegates (gRPC streams from this process, each registered and accepting its runs
//!   like a real one) stream `probe.check` events for `--runs` runs at once, interleaving their
//!   runs in each batch as a delegate's outbox does, with at most `--window` batches
//!   unacknowledged per delegate. Prints events stored per second (first batch sent to last
//!   ack), the hub's peak RSS, and checks that every event is stored exactly once (count, sum of
//!   seqs and a checksum of the latencies in Postgres) and that every run ended PASSED. Then it
//!   measures this Postgres's limit for the same shape, a server-side `INSERT … SELECT` of 1 M
//!   events into a copy of `run_events`, and prints the ratio.
//!
//! Build first: `cargo build --release --workspace --bins`, then
//! `target/release/faultline-bench-scale ingest`. Uses `FAULTLINE_TEST_PG` if set, else starts a
//! private PostgreSQL.
use anyhow::{bail, Context, Result};
use faultline_e2e::arg;
use faultline_e2e::{loadgen, pause_template, HubOpts, Target, World};
use faultline_proto::v1::{self as pb, delegate_message::Msg, hub_message::Msg as HMsg};
use futures::StreamExt;
use sqlx::Connection;
use std::{collections::HashMap, sync::Arc, time::Instant};

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The latency of check `seq` of a run: deterministic, so the database's sum can be checked.
fn latency(seq: u64) -> f64 {
    (seq % 97) as f64 * 0.5 + 1.0
}

/// The hub's peak resident memory (VmHWM), in MiB.
fn peak_rss_mib(pid: i32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

struct Shape {
    events_per_run: u64,
    batch: usize,
    window: usize,
}

/// One emulated delegate: accepts `runs` assignments, waits for `go`, then streams every event
/// of its runs and returns once all are acknowledged.
async fn emulate(
    mut d: loadgen::Emulated,
    runs: usize,
    shape: Arc<Shape>,
    assigned: Arc<tokio::sync::Barrier>,
    mut go: tokio::sync::watch::Receiver<bool>,
) -> Result<()> {
    let mut ids: Vec<String> = Vec::with_capacity(runs);
    while ids.len() < runs {
        match d.inbound.next().await.context("stream ended")??.msg {
            Some(HMsg::Assign(a)) => {
                d.tx.send(pb::DelegateMessage {
                    msg: Some(Msg::RunAccepted(pb::RunAccepted {
                        run_id: a.run_id.clone(),
                    })),
                })
                .await?;
                ids.push(a.run_id);
            }
            _ => continue,
        }
    }
    assigned.wait().await;
    go.wait_for(|g| *g).await?;
    let last = shape.events_per_run + 2; // run.started, the checks, run.finished
    let event = |run: &str, seq: u64| {
        let (kind, payload) = if seq == 1 {
            (
                "run.started",
                serde_json::json!({"template": "bench", "version": 1}),
            )
        } else if seq == last {
            (
                "run.finished",
                serde_json::json!({"verdict": "PASSED", "score": 100.0, "reason": "bench",
                    "checksPassed": shape.events_per_run, "checksTotal": shape.events_per_run}),
            )
        } else {
            (
                "probe.check",
                serde_json::json!({"probe": "web-ok", "phase": "before", "step": 0, "ok": true,
                    "latencyMs": latency(seq), "detail": "200 OK", "mode": "continuous",
                    "attempts": 1, "countsFor": [0]}),
            )
        };
        pb::Event {
            run_id: run.to_string(),
            seq,
            at_ms: now_ms(),
            kind: kind.into(),
            payload_json: payload.to_string(),
        }
    };
    // Next seq to send and highest acknowledged, per run.
    let mut next: Vec<u64> = vec![1; runs];
    let mut acked: HashMap<String, u64> = ids.iter().map(|r| (r.clone(), 0)).collect();
    let total = last * runs as u64;
    let (mut sent, mut done) = (0u64, 0u64);
    let per_run = (shape.batch / runs).max(1);
    while done < total {
        while sent < total && sent < done + (shape.window * shape.batch) as u64 {
            let mut batch = Vec::with_capacity(shape.batch);
            for (i, run) in ids.iter().enumerate() {
                for _ in 0..per_run {
                    if next[i] > last || batch.len() >= shape.batch {
                        break;
                    }
                    batch.push(event(run, next[i]));
                    next[i] += 1;
                }
            }
            sent += batch.len() as u64;
            d.tx.send(pb::DelegateMessage {
                msg: Some(Msg::Events(pb::EventBatch { events: batch })),
            })
            .await?;
        }
        match d.inbound.next().await.context("stream ended")??.msg {
            Some(HMsg::Ack(a)) => {
                if let Some(seen) = acked.get_mut(&a.run_id) {
                    if a.seq > *seen {
                        done += a.seq - *seen;
                        *seen = a.seq;
                    }
                }
            }
            Some(HMsg::Heartbeat(_)) | Some(HMsg::Welcome(_)) | None => {}
            Some(other) => bail!("unexpected message while streaming: {other:?}"),
        }
    }
    Ok(())
}

async fn ingest() -> Result<()> {
    let delegates = arg("--delegates", 100);
    let runs = arg("--runs", 1000);
    let shape = Arc::new(Shape {
        events_per_run: arg("--events-per-run", 1000) as u64,
        batch: arg("--batch", 500),
        window: arg("--window", 4),
    });
    anyhow::ensure!(
        runs.is_multiple_of(delegates),
        "--runs must be a multiple of --delegates"
    );
    let per = runs / delegates;
    let total = (shape.events_per_run + 2) * runs as u64;
    println!(
        "faultline-bench-scale ingest: {runs} runs on {delegates} delegates, {} checks per run ({total} events), batches of {} with {} in flight per delegate",
        shape.events_per_run, shape.batch, shape.window
    );
    let w = World::with_hub(HubOpts {
        extra: vec!["--db-max-connections".into(), "40".into()],
        ..HubOpts::default()
    })
    .await?;
    let target = Target::start(w.dir.path()).await?;
    let tid = w
        .api
        .create_template(&pause_template("bench-ingest", &target, "1h"))
        .await?;
    let assigned = Arc::new(tokio::sync::Barrier::new(delegates + 1));
    let (go_tx, go) = tokio::sync::watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    let mut channels = Vec::new();
    for i in 0..delegates {
        if i % 10 == 0 {
            channels.push(loadgen::channel(&w.api.url, &w.hub.ca).await?);
        }
        let d = loadgen::emulated(&w.api, channels[i / 10].clone(), &format!("ingest-{i}")).await?;
        tasks.spawn(emulate(d, per, shape.clone(), assigned.clone(), go.clone()));
    }
    let started = Instant::now();
    for r in 0..runs {
        w.api
            .start_run(&tid, &format!("ingest-{}", r % delegates))
            .await?;
    }
    tokio::select! {
        _ = assigned.wait() => {}
        Some(r) = tasks.join_next() => { r??; bail!("a delegate ended before its runs were assigned") }
    }
    println!(
        "  {runs} runs started and accepted in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let t0 = Instant::now();
    go_tx.send(true)?;
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    let secs = t0.elapsed().as_secs_f64();
    let rate = total as f64 / secs;
    println!(
        "  ingest: {total} events in {secs:.1} s = {rate:.0} events/s; hub peak RSS {:.0} MiB",
        peak_rss_mib(w.hub.proc.pid())
    );

    // Exactly once: count, seqs and the checks' latencies in the database.
    let mut c = sqlx::PgConnection::connect(&w.db).await?;
    let (count, seq_sum): (i64, i64) =
        sqlx::query_as("SELECT count(*), sum(seq)::bigint FROM run_events")
            .fetch_one(&mut c)
            .await?;
    let last = shape.events_per_run + 2;
    anyhow::ensure!(count as u64 == total, "{count} of {total} events stored");
    anyhow::ensure!(
        seq_sum as u64 == runs as u64 * last * (last + 1) / 2,
        "the stored seqs do not add up: {seq_sum}"
    );
    let (checks, lat_sum): (i64, f64) =
        sqlx::query_as("SELECT count(*), COALESCE(sum(latency_ms), 0) FROM probe_checks")
            .fetch_one(&mut c)
            .await?;
    let want: f64 = (2..last).map(latency).sum::<f64>() * runs as f64;
    anyhow::ensure!(
        checks as u64 == shape.events_per_run * runs as u64 && (lat_sum - want).abs() < 1e-6 * want,
        "checks {checks}, latency sum {lat_sum} (want {want})"
    );
    let (passed,): (i64,) = sqlx::query_as("SELECT count(*) FROM runs WHERE state = 'PASSED'")
        .fetch_one(&mut c)
        .await?;
    anyhow::ensure!(passed as usize == runs, "{passed} of {runs} runs PASSED");
    println!("  stored exactly once: {count} events, {checks} checks (count, seq sum and latency checksum match); {passed} runs PASSED");

    // This Postgres's limit for the shape: a server-side INSERT … SELECT of 1 M events.
    sqlx::query("CREATE TABLE bench_events (LIKE run_events INCLUDING ALL)")
        .execute(&mut c)
        .await?;
    let t = Instant::now();
    let n: u64 = 1_000_000;
    sqlx::query(
        "INSERT INTO bench_events (run_id, seq, at, kind, payload) \
         SELECT r.id, g, now(), 'probe.check', jsonb_build_object('probe', 'web-ok', 'phase', 'before', 'step', 0, \
                'ok', true, 'latencyMs', g % 97, 'detail', '200 OK', 'mode', 'continuous', 'attempts', 1) \
         FROM (SELECT id FROM runs LIMIT 1) r, generate_series(1, $1) g",
    )
    .bind(n as i64)
    .execute(&mut c)
    .await?;
    let limit = n as f64 / t.elapsed().as_secs_f64();
    println!(
        "  limit: a server-side INSERT … SELECT of 1M events stores {limit:.0} rows/s; ingest reached {:.0} % of it",
        100.0 * rate / limit
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let _pg = faultline_e2e::private_pg_unless_set().await?;
    match std::env::args().nth(1).as_deref() {
        Some("ingest") => ingest().await,
        _ => bail!("usage: faultline-bench-scale ingest [--delegates N] [--runs N] [--events-per-run N] [--batch N] [--window N]"),
    }
}
