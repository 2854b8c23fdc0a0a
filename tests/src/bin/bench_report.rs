//! `faultline-bench-report`: how long the run report (`GET /runs/{id}/report`,
//! docs/run-report.md) takes for a big run. A run of `--checks` probe checks (default 10,000:
//! two probes every 100 ms for about 8 minutes, two fault windows, failures while the first
//! is applied) is inserted directly into a fresh database (its events, its checks marked
//! and its verdict, as ingest would have stored them), then its report is fetched `--renders`
//! times (default 20) as HTML and as PDF from a real hub over HTTPS. Prints, per format, p50
//! and max of the request (as the client sees it) and of the hub's own split from
//! `Server-Timing` (reading the run from Postgres; building and rendering it), and the size.
//!
//! Build first: `cargo build --workspace --bins`, then run
//! `target/debug/faultline-bench-report --checks 10000 --renders 20` (`--save DIR` keeps the
//! last report of each format there). Uses `FAULTLINE_TEST_PG` if set, else starts a private
//! PostgreSQL.
use anyhow::{ensure, Context, Result};
use chrono::{DateTime, Duration as Span, Utc};
use faultline_e2e::World;
use faultline_e2e::{arg, pct};
use serde_json::{json, Value};
use sqlx::Connection;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// `--save DIR`: where to keep the last report of each format, to look at.
fn save_dir() -> Option<std::path::PathBuf> {
    let args: Vec<String> = std::env::args().collect();
    let i = args.iter().position(|a| a == "--save")?;
    args.get(i + 1).map(Into::into)
}

/// A small deterministic generator (xorshift64*): the same run every time.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

const TEMPLATE: &str = "apiVersion: faultline.dev/v1\nkind: Experiment\nmetadata:\n  name: bench-report\n  \
    description: a big run for the report benchmark\nhypothesis:\n  baseline: 60s\n  recoverWithin: 30s\n  probes:\n    \
    - name: web\n      http: {url: \"http://127.0.0.1:9/\", expect: {status: 200}}\n      interval: 100ms\n    \
    - name: api\n      tcp: {address: \"127.0.0.1:9\"}\n      interval: 100ms\nsteps:\n  \
    - fault: process-pause\n    target: {pidFile: /tmp/none.pid}\n    duration: 120s\n  - pause: 60s\n  \
    - fault: network-latency\n    target: {interface: lo}\n    params: {latency: 200ms}\n    duration: 120s\n";

/// A check as stored: seq, probe, phase, when it ended, ok, latency, detail.
type Check = (i64, String, String, DateTime<Utc>, bool, f64, String);

/// Inserts a finished run of `n` checks into the database; returns its id.
async fn insert_run(db: &str, template: Uuid, n: usize) -> Result<Uuid> {
    let mut c = sqlx::PgConnection::connect(db).await?;
    let project: Uuid = sqlx::query_scalar("SELECT project_id FROM templates WHERE id = $1")
        .bind(template)
        .fetch_one(&mut c)
        .await?;
    let delegate = Uuid::new_v4();
    sqlx::query("INSERT INTO delegates (id, project_id, name, credential_hash) VALUES ($1, $2, 'bench-delegate', $3)")
        .bind(delegate)
        .bind(project)
        .bind(delegate.to_string())
        .execute(&mut c)
        .await?;
    let run = Uuid::new_v4();
    let t0: DateTime<Utc> = Utc::now() - Span::minutes(30);
    let at = |ms: i64| t0 + Span::milliseconds(ms);
    // Two probes every 100 ms: n checks take n × 50 ms.
    let span_ms = n as i64 * 50;
    let (pause, delay) = ((60_000, 180_000), (240_000, 360_000));
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut seqs, mut ats, mut kinds, mut payloads) = (vec![], vec![], vec![], vec![]);
    let mut checks: Vec<Check> = vec![];
    let mut push = |seq: &mut i64, ms: i64, kind: &str, payload: Value| {
        *seq += 1;
        seqs.push(*seq);
        ats.push(at(ms));
        kinds.push(kind.to_string());
        payloads.push(payload);
    };
    let mut seq = 0;
    push(
        &mut seq,
        0,
        "run.started",
        json!({"template": "bench-report", "version": 1}),
    );
    let method = [
        (
            pause.0,
            "fault.applied",
            json!({"step": 0, "path": "steps[0]", "fault": "process-pause", "detail": "SIGSTOP to pid 4242"}),
        ),
        (
            pause.1,
            "fault.reverted",
            json!({"step": 0, "path": "steps[0]", "fault": "process-pause", "detail": "sent SIGCONT to pid 4242"}),
        ),
        (
            pause.1,
            "pause.started",
            json!({"stage": 1, "durationMs": 60000}),
        ),
        (
            delay.0,
            "fault.applied",
            json!({"step": 1, "path": "steps[2]", "fault": "network-latency", "detail": "200ms on lo"}),
        ),
        (
            delay.1,
            "fault.reverted",
            json!({"step": 1, "path": "steps[2]", "fault": "network-latency", "detail": "removed"}),
        ),
        (
            delay.1 + 1500,
            "run.recovered",
            json!({"recoveryMs": 1500, "from": {"event": "fault.reverted", "path": "steps[2]", "what": "network-latency", "atMs": delay.1}}),
        ),
    ];
    let mut next = method.iter().peekable();
    for i in 0..n {
        let started = i as i64 * 50;
        while let Some((ms, kind, p)) = next.peek() {
            if *ms > started {
                break;
            }
            push(&mut seq, *ms, kind, p.clone());
            next.next();
        }
        let probe = if i % 2 == 0 { "web" } else { "api" };
        let in_ = |w: (i64, i64)| (w.0..w.1).contains(&started);
        let phase = if started < pause.0 {
            "before"
        } else if in_(pause) || in_(delay) {
            "during"
        } else if started < delay.0 {
            "between"
        } else {
            "after"
        };
        let base = 8.0 + 6.0 * rng.next();
        let (ok, latency) = if in_(pause) && probe == "web" && rng.next() < 0.3 {
            (false, 2000.0)
        } else if in_(delay) {
            (true, base + 200.0 + 20.0 * rng.next())
        } else {
            (true, base)
        };
        let detail = if ok { "200 OK" } else { "timed out after 2s" };
        let step = if started >= delay.0 { 1 } else { 0 };
        push(
            &mut seq,
            started + latency as i64,
            "probe.check",
            json!({"probe": probe, "phase": phase, "step": step, "mode": "continuous", "attempts": 1,
                   "ok": ok, "latencyMs": latency, "detail": detail, "startedMs": at(started).timestamp_millis()}),
        );
        checks.push((
            seq,
            probe.into(),
            phase.into(),
            at(started + latency as i64),
            ok,
            latency,
            detail.into(),
        ));
    }
    for (ms, kind, p) in next {
        push(&mut seq, *ms, kind, p.clone());
    }
    let passed = checks.iter().filter(|c| c.4).count();
    let score = passed as f64 * 100.0 / checks.len().max(1) as f64;
    let shift = |probe: &str| {
        let pick = |phase: &str| -> Vec<f64> {
            checks
                .iter()
                .filter(|c| c.1 == probe && c.2 == phase)
                .map(|c| if c.4 { c.5 } else { f64::INFINITY })
                .collect()
        };
        faultline_experiment::stats::latency_shift(probe, &pick("before"), &pick("during"))
    };
    let latency = json!([shift("api"), shift("web")]);
    push(
        &mut seq,
        span_ms + 100,
        "run.finished",
        json!({"verdict": "PASSED", "score": score, "reason": "every probe recovered", "checksPassed": passed,
               "checksTotal": checks.len(), "recoveryMs": 1500, "latency": latency}),
    );

    let mut tx = c.begin().await?;
    sqlx::query(
        "INSERT INTO runs (id, project_id, template_id, template_version, delegate_id, state, planned_ms, score, delegate_score, \
           recovery_ms, recovery_from, verdict_reason, latency, created_by, created_at, started_at, ended_at) \
         VALUES ($1, $2, $3, 1, $4, 'PASSED', $5, $6, $6, 1500, $7, 'every probe recovered', $8, 'user:bench@example.com', $9, $9, $10)",
    )
    .bind(run)
    .bind(project)
    .bind(template)
    .bind(delegate)
    .bind(span_ms)
    .bind(score)
    .bind(json!({"event": "fault.reverted", "path": "steps[2]", "what": "network-latency", "atMs": delay.1}))
    .bind(&latency)
    .bind(t0)
    .bind(at(span_ms + 100))
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO run_events (run_id, seq, at, kind, payload) \
         SELECT $1, * FROM UNNEST($2::bigint[], $3::timestamptz[], $4::text[], $5::jsonb[])",
    )
    .bind(run)
    .bind(&seqs)
    .bind(&ats)
    .bind(&kinds)
    .bind(&payloads)
    .execute(&mut *tx)
    .await?;
    // A check is its event, marked (migration 0013): the payloads above are complete.
    sqlx::query(
        "UPDATE run_events SET check_ok = (payload->>'ok')::bool WHERE run_id = $1 AND kind = 'probe.check'",
    )
    .bind(run)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    println!(
        "run {run}: {} checks ({} failed), {} events, {:.0} s",
        checks.len(),
        checks.len() - passed,
        seqs.len(),
        span_ms as f64 / 1000.0
    );
    Ok(run)
}

/// `dur` of one entry of a `Server-Timing` header, in ms.
fn timing(header: &str, name: &str) -> Option<f64> {
    header
        .split(',')
        .map(str::trim)
        .find(|e| e.starts_with(&format!("{name};")))
        .and_then(|e| e.split("dur=").nth(1))
        .and_then(|d| d.parse().ok())
}

#[tokio::main]
async fn main() -> Result<()> {
    let n = arg("--checks", 10_000);
    let renders = arg("--renders", 20).max(1);
    let pg = faultline_e2e::private_pg_unless_set().await?;
    let w = World::new().await?;
    let template: Uuid = w.api.create_template(TEMPLATE).await?.parse()?;
    let run = insert_run(&w.db, template, n).await?;
    println!(
        "faultline-bench-report ({n} checks, {renders} renders per format, one hub on loopback)"
    );
    for format in ["html", "pdf"] {
        let url = format!("{}/runs/{run}/report?format={format}", w.hub.url);
        let (mut total, mut load, mut render) = (vec![], vec![], vec![]);
        let mut size = 0;
        // Two more first, not counted: Postgres and the hub warm up.
        for i in 0..renders + 2 {
            let t = Instant::now();
            let resp = w.api.http.get(&url).bearer_auth(&w.token).send().await?;
            let status = resp.status();
            let st = resp
                .headers()
                .get("server-timing")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let body = resp.bytes().await?;
            let took = t.elapsed().as_secs_f64() * 1e3;
            ensure!(
                status == 200,
                "HTTP {status}: {}",
                String::from_utf8_lossy(&body)
            );
            if i < 2 {
                continue;
            }
            if format == "html" {
                let page = std::str::from_utf8(&body)?;
                ensure!(page.contains("data-testid=\"fault-band\""), "the plot");
            } else {
                ensure!(body.starts_with(b"%PDF-"), "a PDF");
            }
            size = body.len();
            if let Some(dir) = save_dir() {
                std::fs::create_dir_all(&dir)?;
                std::fs::write(dir.join(format!("report.{format}")), &body)?;
            }
            total.push(took);
            load.push(timing(&st, "load").context("Server-Timing load")?);
            render.push(timing(&st, "render").context("Server-Timing render")?);
        }
        for v in [&mut total, &mut load, &mut render] {
            v.sort_by(f64::total_cmp);
        }
        println!(
            "{format:>4}: request p50 {:6.1} ms  max {:6.1} ms | load p50 {:6.1} ms  max {:6.1} ms | render p50 {:6.1} ms  max {:6.1} ms | {} KiB",
            pct(&total, 0.5),
            total[total.len() - 1],
            pct(&load, 0.5),
            load[load.len() - 1],
            pct(&render, 0.5),
            render[render.len() - 1],
            size / 1024
        );
    }
    drop(w);
    if let Some(mut pg) = pg {
        pg.0.stop(Duration::from_secs(30)).await?;
    }
    Ok(())
}
