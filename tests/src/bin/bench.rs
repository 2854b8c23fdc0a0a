//! `faultline-bench`: the numbers the README and issues quote, measured against real processes.
//!
//! - `startRun` → fault applied on the delegate, and `abortRun` → fault reverted: p50/p99 over
//!   `--runs` runs of a process-pause fault (applied = the target shows state `T` in /proc).
//! - The delegate's idle resident memory.
//! - The hub's resident memory with `--streams` delegate streams connected (load tool).
//!
//! Build everything first: `cargo build --release --workspace --bins`, then run
//! `target/release/faultline-bench`. Uses `FAULTLINE_TEST_PG` if set, else starts a private
//! PostgreSQL itself.
use anyhow::{Context, Result};
use faultline_e2e::{arg, pct};
use faultline_e2e::{loadgen, pause_template, proc_state, Target, World};
use std::time::{Duration, Instant};

fn rss_kib(pid: i32) -> u64 {
    faultline_e2e::proc_kib(pid, "VmRSS").unwrap_or(0)
}

async fn wait_proc(pid: i32, stopped: bool, within: Duration) -> Result<()> {
    let deadline = Instant::now() + within;
    while (proc_state(pid) == Some('T')) != stopped {
        anyhow::ensure!(
            Instant::now() < deadline,
            "process {pid} did not become stopped={stopped} within {within:?}"
        );
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let runs = arg("--runs", 200);
    let streams = arg("--streams", 1000);
    let pg = faultline_e2e::private_pg_unless_set().await?;

    let w = World::new().await?;
    let target = Target::start(w.dir.path()).await?;
    let d = w.delegate("bench", &[], &[]).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let delegate_rss = rss_kib(d.proc.pid());
    let yaml = pause_template("bench-pause", &target, "60s");
    let tid = w.api.create_template(&yaml).await?;
    let pid = target.pid();
    let (mut apply, mut revert) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
    for i in 0..runs {
        let t0 = Instant::now();
        let run = w.api.start_run(&tid, "bench").await?;
        wait_proc(pid, true, Duration::from_secs(10))
            .await
            .with_context(|| format!("run {i} apply"))?;
        apply.push(t0.elapsed().as_secs_f64() * 1000.0);
        let t1 = Instant::now();
        w.api
            .gql(
                "mutation($id: ID!) { abortRun(id: $id) { id } }",
                serde_json::json!({"id": run}),
            )
            .await?;
        wait_proc(pid, false, Duration::from_secs(10))
            .await
            .with_context(|| format!("run {i} revert"))?;
        revert.push(t1.elapsed().as_secs_f64() * 1000.0);
        w.api
            .wait_status(&run, &["ABORTED"], Duration::from_secs(10))
            .await?;
    }
    apply.sort_by(f64::total_cmp);
    revert.sort_by(f64::total_cmp);

    let hub_pid = w.hub.proc.pid();
    let hub_before = rss_kib(hub_pid);
    let t = Instant::now();
    let s = loadgen::open(
        &w.api,
        &w.hub.ca,
        "load",
        streams,
        100,
        Duration::from_secs(5),
    )
    .await?;
    let open_secs = t.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let hub_after = rss_kib(hub_pid);
    let (connected,): (i64,) = {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&w.db).await?;
        sqlx::query_as("SELECT count(*) FROM delegates WHERE connected_replica IS NOT NULL")
            .fetch_one(&mut c)
            .await?
    };
    s.close().await;

    println!("faultline-bench ({runs} runs, loopback, process-pause fault)");
    println!(
        "startRun -> fault applied:  p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
        pct(&apply, 0.5),
        pct(&apply, 0.99),
        apply[apply.len() - 1]
    );
    println!(
        "abortRun -> fault reverted: p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
        pct(&revert, 0.5),
        pct(&revert, 0.99),
        revert[revert.len() - 1]
    );
    println!("delegate idle RSS: {:.1} MiB", delegate_rss as f64 / 1024.0);
    println!(
        "hub RSS: {:.1} MiB idle, {:.1} MiB with {streams} delegate streams ({connected} connected; opened in {open_secs:.1} s; {:.1} KiB per stream)",
        hub_before as f64 / 1024.0,
        hub_after as f64 / 1024.0,
        (hub_after.saturating_sub(hub_before)) as f64 / streams.max(1) as f64
    );
    drop(w);
    // Stop our private Postgres cleanly (SIGTERM), so its server process does not outlive us.
    if let Some(mut pg) = pg {
        pg.0.stop(Duration::from_secs(30)).await?;
    }
    Ok(())
}
