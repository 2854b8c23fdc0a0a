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
//! - `fleet [--delegates 10000] [--in-flight 100] [--rounds 10] [--runs-in-db 1000000]
//!   [--queries 200] [--steady-secs 30] [--hold-secs 5]`: `--delegates` streams, each on its own connection from
//!   its own loopback address, heartbeating every second. Prints the hub's RSS and CPU at steady
//!   state and the database writes liveness costs; then `startRun` → the run's assignment reaching
//!   its delegate, p50/p99, over `--in-flight` x `--rounds` runs started one by one so that about
//!   `--in-flight` are running at any time (each held `--hold-secs`), while the fleet stays
//!   connected; then seeds `--runs-in-db` finished runs and prints p50/p99 of the
//!   dashboard's delegate and run list queries (first pages, deep pages, filters).
//!
//! Build first: `cargo build --release --workspace --bins`, then
//! `target/release/faultline-bench-scale ingest`. Uses `FAULTLINE_TEST_PG` if set, else starts a
//! private PostgreSQL.
use anyhow::{bail, Context, Result};
use faultline_e2e::{arg, pct};
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
    faultline_e2e::proc_kib(pid, "VmHWM").unwrap_or(0) as f64 / 1024.0
}

/// One of issue 20's targets: what was asked, what was measured, and whether it was met.
struct Goal {
    target: &'static str,
    goal: &'static str,
    measured: String,
    met: bool,
}

fn print_goals(goals: &[Goal]) {
    println!("\n| target | goal | measured | met |\n|---|---|---|---|");
    for g in goals {
        println!(
            "| {} | {} | {} | {} |",
            g.target,
            g.goal,
            g.measured,
            if g.met { "yes" } else { "**no**" }
        );
    }
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

async fn ingest() -> Result<Vec<Goal>> {
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
    Ok(vec![
        Goal {
            target: "event ingest, 1,000 runs on 100 delegates",
            goal: ">= 100,000 events/s, each stored once",
            measured: format!(
                "{rate:.0} events/s ({:.0} % of the {limit:.0} rows/s limit), stored once",
                100.0 * rate / limit
            ),
            met: rate >= 100_000.0,
        },
        Goal {
            target: "hub memory during ingest",
            goal: "bounded",
            measured: format!("peak RSS {:.0} MiB", peak_rss_mib(w.hub.proc.pid())),
            met: peak_rss_mib(w.hub.proc.pid()) < 1024.0,
        },
    ])
}

/// Cumulative CPU seconds (user + system) of a process.
fn cpu_secs(pid: i32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command's closing parenthesis: state is 3rd, utime 14th, stime 15th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    (ticks(11) + ticks(12)) / hz
}

fn rss_mib(pid: i32) -> f64 {
    faultline_e2e::proc_kib(pid, "VmRSS").unwrap_or(0) as f64 / 1024.0
}

/// p50/p99/max of `samples` in ms, as printed, and the p99.
fn summary(mut samples: Vec<f64>) -> (String, f64) {
    samples.sort_by(f64::total_cmp);
    let p99 = pct(&samples, 0.99);
    let text = format!(
        "p50 {:.1} ms  p99 {p99:.1} ms  max {:.1} ms  (n={})",
        pct(&samples, 0.5),
        samples[samples.len() - 1],
        samples.len()
    );
    (text, p99)
}

/// A worker delegate: takes each run assigned to it, reports when the assignment arrived
/// (run id, instant), starts it and finishes it PASSED after `hold`.
async fn worker(
    mut d: loadgen::Emulated,
    arrived: tokio::sync::mpsc::UnboundedSender<(String, Instant)>,
    hold: std::time::Duration,
) -> Result<()> {
    loop {
        let Some(msg) = d.inbound.next().await else {
            return Ok(());
        };
        let Some(HMsg::Assign(a)) = msg?.msg else {
            continue;
        };
        let _ = arrived.send((a.run_id.clone(), Instant::now()));
        let tx = d.tx.clone();
        tokio::spawn(async move {
            let ev = |seq: u64, kind: &str, payload: serde_json::Value| pb::Event {
                run_id: a.run_id.clone(),
                seq,
                at_ms: now_ms(),
                kind: kind.into(),
                payload_json: payload.to_string(),
            };
            let send = |events: Vec<pb::Event>| pb::DelegateMessage {
                msg: Some(Msg::Events(pb::EventBatch { events })),
            };
            let _ = tx
                .send(pb::DelegateMessage {
                    msg: Some(Msg::RunAccepted(pb::RunAccepted {
                        run_id: a.run_id.clone(),
                    })),
                })
                .await;
            let started = ev(
                1,
                "run.started",
                serde_json::json!({"template": "bench", "version": 1}),
            );
            let _ = tx.send(send(vec![started])).await;
            tokio::time::sleep(hold).await;
            let finished = ev(
                2,
                "run.finished",
                serde_json::json!({"verdict": "PASSED", "score": 100.0, "reason": "bench",
                    "checksPassed": 0, "checksTotal": 0}),
            );
            let _ = tx.send(send(vec![finished])).await;
        });
    }
}

/// Transactions committed in this database, and `delegates` rows updated, so far.
async fn db_stats(c: &mut sqlx::PgConnection) -> Result<(i64, i64)> {
    Ok(sqlx::query_as(
        "SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()), \
                (SELECT n_tup_upd FROM pg_stat_user_tables WHERE relname = 'delegates')",
    )
    .fetch_one(c)
    .await?)
}

/// Times `n` sequential runs of a GraphQL query.
async fn time_query(
    api: &faultline_e2e::Api,
    n: usize,
    query: &str,
    vars: serde_json::Value,
) -> Result<(Vec<f64>, serde_json::Value)> {
    let mut samples = Vec::with_capacity(n);
    let mut last = serde_json::Value::Null;
    for _ in 0..n {
        let t = Instant::now();
        last = api.gql(query, vars.clone()).await?;
        samples.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    Ok((samples, last))
}

const DELEGATES_PAGE: &str =
    "query($project: String!, $first: Int!, $after: String, $search: String) {
  delegates(project: $project, first: $first, after: $after, search: $search) {
    id name labels version capabilities connected lastHeartbeat replica activeRuns cursor }
  delegateSummary(project: $project) { total connected } }";

const RUNS_PAGE: &str = "query($project: String!, $limit: Int, $templateId: ID, $status: [RunStatus!], $delegate: String, $before: ID) {
  runs(project: $project, limit: $limit, templateId: $templateId, status: $status, delegate: $delegate, before: $before) {
    id status templateVersion createdBy createdAt startedAt endedAt resilienceScore dryRun
    template { id name } delegate { id name } schedule { id name } probeTally { passed failed total } } }";

async fn fleet() -> Result<Vec<Goal>> {
    let delegates = arg("--delegates", 10_000);
    let in_flight = arg("--in-flight", 100);
    let rounds = arg("--rounds", 10);
    let runs_in_db = arg("--runs-in-db", 1_000_000);
    let queries = arg("--queries", 200);
    let steady = arg("--steady-secs", 30) as u64;
    let hold = std::time::Duration::from_secs(arg("--hold-secs", 5) as u64);
    println!(
        "faultline-bench-scale fleet: {delegates} delegate streams (1 s heartbeats), {in_flight} runs in flight ({} started), {runs_in_db} runs in the database",
        in_flight * rounds
    );
    let w = World::with_hub(HubOpts {
        // The harness's hub already asks for 1 s heartbeats.
        extra: vec!["--db-max-connections".into(), "40".into()],
        ..HubOpts::default()
    })
    .await?;
    let hub = w.hub.proc.pid();
    let me = std::process::id() as i32;
    let mut c = sqlx::PgConnection::connect(&w.db).await?;
    let idle_rss = rss_mib(hub);

    // The fleet.
    let t = Instant::now();
    let fleet = loadgen::open_fleet(
        &w.api,
        &w.hub.ca,
        "host",
        delegates,
        std::time::Duration::from_secs(1),
    )
    .await?;
    println!(
        "  {} streams open in {:.1} s (own connection and loopback address each)",
        fleet.opened,
        t.elapsed().as_secs_f64()
    );
    tokio::time::sleep(std::time::Duration::from_secs(10)).await;
    let (x0, u0) = db_stats(&mut c).await?;
    let (h0, b0, t0) = (cpu_secs(hub), cpu_secs(me), Instant::now());
    tokio::time::sleep(std::time::Duration::from_secs(steady)).await;
    let secs = t0.elapsed().as_secs_f64();
    let (hub_cpu, bench_cpu) = (
        (cpu_secs(hub) - h0) / secs * 100.0,
        (cpu_secs(me) - b0) / secs * 100.0,
    );
    let (x1, u1) = db_stats(&mut c).await?;
    let connected: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM delegates WHERE connected_replica IS NOT NULL AND last_heartbeat_at > now() - interval '3 seconds'",
    )
    .fetch_one(&mut c)
    .await?;
    let steady_rss = rss_mib(hub);
    println!(
        "  steady state over {secs:.0} s: hub RSS {steady_rss:.0} MiB (idle {idle_rss:.0} MiB), hub CPU {hub_cpu:.0} % of one core (bench process {bench_cpu:.0} %); {connected} delegates with a heartbeat in the last 3 s"
    );
    let (xacts, updates) = ((x1 - x0) as f64 / secs, (u1 - u0) as f64 / secs);
    println!(
        "  liveness: {xacts:.1} database transactions/s in all, {updates:.0} delegate rows updated/s (one statement per flush, not one per heartbeat)"
    );
    let mut goals = vec![
        Goal {
            target: "hub memory, delegates connected",
            goal: "< 1 GiB",
            measured: format!("{steady_rss:.0} MiB with {connected} of {delegates} beating"),
            met: steady_rss < 1024.0 && connected as usize == delegates,
        },
        Goal {
            target: "hub CPU at steady state",
            goal: "< 50 % of one core",
            measured: format!("{hub_cpu:.0} %"),
            met: hub_cpu < 50.0,
        },
        Goal {
            target: "liveness writes",
            goal: "batched, not one UPDATE per heartbeat",
            measured: format!("{xacts:.1} transactions/s for {updates:.0} heartbeats stored/s"),
            met: xacts * 20.0 < updates,
        },
    ];

    // startRun → assignment reaching its delegate, with the fleet connected and `in_flight` runs
    // in flight: one run started every `hold / in_flight` on `in_flight` workers, each run held
    // for `hold`, so about `in_flight` are running at any time.
    let target = Target::start(w.dir.path()).await?;
    let tid = w
        .api
        .create_template(&pause_template("bench-fleet", &target, "1h"))
        .await?;
    let (arrived_tx, mut arrived) = tokio::sync::mpsc::unbounded_channel();
    let ch = loadgen::channel(&w.api.url, &w.hub.ca).await?;
    let mut workers = tokio::task::JoinSet::new();
    for k in 0..in_flight {
        let d = loadgen::emulated(&w.api, ch.clone(), &format!("worker-{k}")).await?;
        workers.spawn(worker(d, arrived_tx.clone(), hold));
    }
    let total = in_flight * rounds;
    let mut every = tokio::time::interval(hold / in_flight as u32);
    let mut calls = tokio::task::JoinSet::new();
    let mut most_running = 0i64;
    for i in 0..total {
        every.tick().await;
        let (api, tid) = (w.api.clone(), tid.clone());
        calls.spawn(async move {
            let t0 = Instant::now();
            api.start_run(&tid, &format!("worker-{}", i % in_flight))
                .await
                .map(|id| (id, t0))
        });
        if i % in_flight == in_flight - 1 {
            let running: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM runs WHERE state IN ('DISPATCHED', 'RUNNING')",
            )
            .fetch_one(&mut c)
            .await?;
            most_running = most_running.max(running);
        }
    }
    let mut started = HashMap::new();
    while let Some(r) = calls.join_next().await {
        let (id, t0) = r??;
        started.insert(id, t0);
    }
    let mut latencies = Vec::with_capacity(total);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    while latencies.len() < total {
        let (id, at) = tokio::time::timeout_at(deadline, arrived.recv())
            .await
            .with_context(|| format!("{} of {total} runs reached their delegate", latencies.len()))?
            .context("workers ended")?;
        let t0 = started
            .get(&id)
            .context("an assignment for a run the bench did not start")?;
        latencies.push(at.duration_since(*t0).as_secs_f64() * 1000.0);
    }
    let deadline = Instant::now() + hold + std::time::Duration::from_secs(60);
    loop {
        let passed: i64 = sqlx::query_scalar("SELECT count(*) FROM runs WHERE state = 'PASSED'")
            .fetch_one(&mut c)
            .await?;
        if passed as usize >= total {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "{passed} of {total} runs PASSED");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let (text, p99) = summary(latencies);
    println!(
        "  startRun -> assignment at its delegate ({total} runs, up to {most_running} in flight, {delegates} connected): {text}"
    );
    goals.push(Goal {
        target: "startRun -> fault applied, 100 in flight",
        goal: "p99 < 100 ms",
        measured: format!(
            "p99 {p99:.1} ms to the assignment at the delegate, {most_running} in flight"
        ),
        met: p99 < 100.0,
    });

    // The fleet view over a large history: finished runs spread over the fleet and two years.
    let t = Instant::now();
    let seed: String = sqlx::query_scalar(
        "SELECT id::text FROM runs WHERE state = 'PASSED' ORDER BY created_at LIMIT 1",
    )
    .fetch_one(&mut c)
    .await?;
    let chunk = 100_000usize;
    let mut done = 0usize;
    while done < runs_in_db {
        let n = chunk.min(runs_in_db - done);
        sqlx::query(
            "WITH fleet AS (SELECT array_agg(id ORDER BY name) AS ids FROM delegates WHERE name LIKE 'host-%') \
             INSERT INTO runs (id, project_id, template_id, template_version, delegate_id, state, planned_ms, \
                               score, acked_seq, verdict_reason, created_by, created_at, dispatched_at, started_at, ended_at, \
                               checks_ok, checks_failed) \
             SELECT gen_random_uuid(), s.project_id, s.template_id, s.template_version, \
                    fleet.ids[1 + (g % cardinality(fleet.ids))], \
                    CASE WHEN g % 10 = 0 THEN 'FAILED' ELSE 'PASSED' END, s.planned_ms, \
                    CASE WHEN g % 10 = 0 THEN 40 ELSE 100 END, 2, 'seeded', 'bench', \
                    at, at, at + interval '1 second', at + interval '61 seconds', 60, g % 10 \
             FROM runs s, fleet, generate_series($2::bigint, $3::bigint) g, \
                  LATERAL (SELECT now() - interval '1 hour' - g * interval '60 seconds' AS at) a \
             WHERE s.id = $1::uuid",
        )
        .bind(&seed)
        .bind(done as i64)
        .bind((done + n - 1) as i64)
        .execute(&mut c)
        .await?;
        done += n;
    }
    sqlx::query("ANALYZE runs").execute(&mut c).await?;
    sqlx::query("ANALYZE delegates").execute(&mut c).await?;
    println!(
        "  seeded {runs_in_db} finished runs over {delegates} delegates in {:.0} s",
        t.elapsed().as_secs_f64()
    );

    let (d1, first) = time_query(
        &w.api,
        queries,
        DELEGATES_PAGE,
        serde_json::json!({"project": "default", "first": 100}),
    )
    .await?;
    anyhow::ensure!(
        first["delegates"].as_array().map(Vec::len) == Some(100)
            && first["delegateSummary"]["total"].as_i64() >= Some(delegates as i64),
        "the first page of delegates: {}",
        first["delegateSummary"]
    );
    let deep_cursor: String = sqlx::query_scalar(
        "SELECT id::text || ':' || name FROM delegates ORDER BY name, id OFFSET $1 LIMIT 1",
    )
    .bind((delegates / 2) as i64)
    .fetch_one(&mut c)
    .await?;
    let (d2, _) = time_query(
        &w.api,
        queries,
        DELEGATES_PAGE,
        serde_json::json!({"project": "default", "first": 100, "after": deep_cursor}),
    )
    .await?;
    let (d3, _) = time_query(
        &w.api,
        queries,
        DELEGATES_PAGE,
        serde_json::json!({"project": "default", "first": 100, "search": "host-77"}),
    )
    .await?;
    let list_goal = |what: &str, samples: Vec<f64>| {
        let (text, p99) = summary(samples);
        println!("  {what:<42} {text}");
        p99
    };
    let worst = [
        list_goal("delegates(project), first page of 100:", d1),
        list_goal("delegates(project), page at the middle:", d2),
        list_goal("delegates(project, search: \"host-77\"):", d3),
    ];
    let d_worst = worst.iter().cloned().fold(0.0, f64::max);
    let (r1, first) = time_query(
        &w.api,
        queries,
        RUNS_PAGE,
        serde_json::json!({"project": "default", "limit": 50}),
    )
    .await?;
    anyhow::ensure!(
        first["runs"].as_array().map(Vec::len) == Some(50),
        "the first page of runs"
    );
    let deep: String = sqlx::query_scalar(
        "SELECT id::text FROM runs ORDER BY created_at DESC, id DESC OFFSET $1 LIMIT 1",
    )
    .bind((runs_in_db / 2) as i64)
    .fetch_one(&mut c)
    .await?;
    let (r2, _) = time_query(
        &w.api,
        queries,
        RUNS_PAGE,
        serde_json::json!({"project": "default", "limit": 50, "before": deep}),
    )
    .await?;
    let (r3, _) = time_query(
        &w.api,
        queries,
        RUNS_PAGE,
        serde_json::json!({"project": "default", "limit": 50, "delegate": "host-4242"}),
    )
    .await?;
    let (r4, _) = time_query(
        &w.api,
        queries,
        RUNS_PAGE,
        serde_json::json!({"project": "default", "limit": 50, "status": ["FAILED"], "templateId": tid}),
    )
    .await?;
    let worst = [
        list_goal("runs(project), first page of 50:", r1),
        list_goal("runs(project, before:), at the middle:", r2),
        list_goal("runs(project, delegate: one of the fleet):", r3),
        list_goal("runs(project, template, status FAILED):", r4),
    ];
    let r_worst = worst.iter().cloned().fold(0.0, f64::max);
    goals.push(Goal {
        target: "fleet view: delegates(project)",
        goal: "p99 < 100 ms",
        measured: format!("worst p99 {d_worst:.1} ms ({delegates} delegates)"),
        met: d_worst < 100.0,
    });
    goals.push(Goal {
        target: "fleet view: runs(...)",
        goal: "p99 < 100 ms",
        measured: format!("worst p99 {r_worst:.1} ms ({runs_in_db} runs)"),
        met: r_worst < 100.0,
    });
    fleet.close().await;
    workers.abort_all();
    Ok(goals)
}

#[tokio::main]
async fn main() -> Result<()> {
    let _pg = faultline_e2e::private_pg_unless_set().await?;
    match std::env::args().nth(1).as_deref() {
        Some("ingest") => print_goals(&ingest().await?),
        Some("fleet") => print_goals(&fleet().await?),
        Some("all") => {
            let mut goals = ingest().await?;
            goals.extend(fleet().await?);
            print_goals(&goals);
        }
        _ => bail!("usage: faultline-bench-scale ingest [--delegates N] [--runs N] [--events-per-run N] [--batch N] [--window N]\n       faultline-bench-scale fleet [--delegates N] [--in-flight N] [--rounds N] [--runs-in-db N] [--queries N] [--steady-secs N]\n       faultline-bench-scale all   (both, default sizes, and one table of every target)"),
    }
    Ok(())
}
