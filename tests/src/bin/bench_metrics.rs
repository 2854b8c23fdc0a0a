//! `faultline-bench-metrics`: what recording metrics costs on the hub's hot paths, in one run.
//! The same hub binary is started `--rounds` times each way, alternating (metrics on, then
//! `--no-metrics`, ...), each on a fresh database, and measured for:
//! - **startRun → fault applied**: a real delegate pauses a real process (`--runs`, default 50);
//!   the time from the `startRun` request to the process being stopped, as `faultline-bench`;
//! - **event ingest**: one emulated delegate (a gRPC stream from this process) is assigned a run
//!   and streams `--events` (default 50,000) `probe.check` events in batches of 500 with at most
//!   8 batches unacknowledged; events per second from the first batch to the last ack, every
//!   event checked stored (count in Postgres).
//!
//! Prints one line per round and the medians per mode. Build first:
//! `cargo build --release --workspace --bins`, then `target/release/faultline-bench-metrics`.
//! Uses `FAULTLINE_TEST_PG` if set, else starts a private PostgreSQL.
use anyhow::{Context, Result};
use faultline_e2e::{arg, pct};
use faultline_e2e::{loadgen, pause_template, proc_state, HubOpts, Target, World};
use faultline_proto::v1::{self as pb, delegate_message::Msg, hub_message::Msg as HMsg};
use futures::StreamExt;
use sqlx::Connection;
use std::time::{Duration, Instant};

/// The median (the mean of the middle two for an even count), the lowest and the highest.
fn spread(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    (median, v[0], v[n - 1])
}

/// startRun → the target process stopped, `runs` times; returns the sorted latencies in ms.
async fn start_latency(w: &World, runs: usize) -> Result<Vec<f64>> {
    let target = Target::start(w.dir.path()).await?;
    let _d = w.delegate("bench", &[], &[]).await?;
    let tid = w
        .api
        .create_template(&pause_template("bench-pause", &target, "60s"))
        .await?;
    let pid = target.pid();
    let mut out = Vec::with_capacity(runs);
    for i in 0..runs {
        let t0 = Instant::now();
        let run = w.api.start_run(&tid, "bench").await?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while proc_state(pid) != Some('T') {
            anyhow::ensure!(Instant::now() < deadline, "run {i}: not applied in 10s");
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        out.push(t0.elapsed().as_secs_f64() * 1000.0);
        w.api
            .gql(
                "mutation($id: ID!) { abortRun(id: $id) { id } }",
                serde_json::json!({"id": run}),
            )
            .await?;
        w.api
            .wait_status(&run, &["ABORTED"], Duration::from_secs(10))
            .await?;
    }
    out.sort_by(f64::total_cmp);
    Ok(out)
}

/// One emulated delegate streams `events` probe checks for a run assigned to it; returns events
/// per second from the first batch sent to the last one acknowledged.
async fn ingest(w: &World, events: usize) -> Result<f64> {
    let ch = loadgen::channel(&w.api.url, &w.hub.ca).await?;
    let loadgen::Emulated { tx, mut inbound } = loadgen::emulated(&w.api, ch, "ingest").await?;
    let dir = w.dir.path().join("ingest-target");
    std::fs::create_dir_all(&dir)?;
    let target = Target::start(&dir).await?;
    let tid = w
        .api
        .create_template(&pause_template("bench-ingest", &target, "10m"))
        .await?;
    let run = w.api.start_run(&tid, "ingest").await?;
    // The assignment; then accept it and start the run.
    loop {
        match inbound.next().await.context("stream ended")??.msg {
            Some(HMsg::Assign(a)) if a.run_id == run => break,
            _ => continue,
        }
    }
    tx.send(pb::DelegateMessage {
        msg: Some(Msg::RunAccepted(pb::RunAccepted {
            run_id: run.clone(),
        })),
    })
    .await?;
    let now_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
    };
    let event = |seq: u64, kind: &str, payload: serde_json::Value| pb::Event {
        run_id: run.clone(),
        seq,
        at_ms: now_ms(),
        kind: kind.into(),
        payload_json: payload.to_string(),
    };
    const BATCH: usize = 500;
    const IN_FLIGHT: u64 = 8;
    let total = events as u64 + 1;
    let t0 = Instant::now();
    let (mut sent, mut acked) = (0u64, 0u64);
    while acked < total {
        while sent < total && sent < acked + IN_FLIGHT * BATCH as u64 {
            let mut batch = Vec::with_capacity(BATCH);
            while batch.len() < BATCH && sent < total {
                sent += 1;
                batch.push(if sent == 1 {
                    event(1, "run.started", serde_json::json!({}))
                } else {
                    event(
                        sent,
                        "probe.check",
                        serde_json::json!({"probe": "web-ok", "phase": "before", "step": 0,
                            "ok": sent % 10 != 0, "latencyMs": 1.5, "detail": "200 OK",
                            "mode": "continuous", "attempts": 1}),
                    )
                });
            }
            tx.send(pb::DelegateMessage {
                msg: Some(Msg::Events(pb::EventBatch { events: batch })),
            })
            .await?;
        }
        match inbound.next().await.context("stream ended")??.msg {
            Some(HMsg::Ack(a)) if a.run_id == run => acked = acked.max(a.seq),
            _ => {}
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let mut c = sqlx::PgConnection::connect(&w.db).await?;
    let (stored,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM probe_checks WHERE run_id = $1::uuid")
            .bind(&run)
            .fetch_one(&mut c)
            .await?;
    anyhow::ensure!(
        stored as usize == events,
        "{stored} of {events} checks stored"
    );
    Ok(events as f64 / secs)
}

#[tokio::main]
async fn main() -> Result<()> {
    let runs = arg("--runs", 50);
    let events = arg("--events", 50_000);
    let rounds = arg("--rounds", 5).max(1);
    let _pg = faultline_e2e::private_pg_unless_set().await?;
    let mut by_mode: [(Vec<f64>, Vec<f64>, Vec<f64>); 2] = Default::default();
    println!("faultline-bench-metrics ({runs} runs, {events} events, {rounds} rounds per mode)");
    for round in 0..rounds * 2 {
        let on = round % 2 == 0;
        let extra = if on {
            vec![]
        } else {
            vec!["--no-metrics".into()]
        };
        let w = World::with_hub(HubOpts {
            extra,
            ..HubOpts::default()
        })
        .await?;
        let rate = ingest(&w, events).await?;
        let lat = start_latency(&w, runs).await?;
        let (p50, p99) = (pct(&lat, 0.5), pct(&lat, 0.99));
        println!(
            "{:<12} ingest {:>8.0} events/s   startRun -> applied p50 {:.1} ms p99 {:.1} ms",
            if on { "metrics on" } else { "metrics off" },
            rate,
            p50,
            p99
        );
        let m = &mut by_mode[usize::from(!on)];
        m.0.push(rate);
        m.1.push(p50);
        m.2.push(p99);
    }
    for (i, label) in ["metrics on", "metrics off"].iter().enumerate() {
        let m = by_mode[i].clone();
        let (rate, p50, p99) = (spread(m.0), spread(m.1), spread(m.2));
        println!(
            "median {label:<12} ingest {:>8.0} events/s ({:.0}-{:.0})   startRun -> applied p50 {:.1} ms ({:.1}-{:.1}) p99 {:.1} ms ({:.1}-{:.1})",
            rate.0, rate.1, rate.2, p50.0, p50.1, p50.2, p99.0, p99.1, p99.2
        );
    }
    Ok(())
}
