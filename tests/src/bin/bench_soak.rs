//! `faultline-bench-soak`: the endurance bench (issue 20). Keeps runs flowing through two hub
//! replicas behind one load-balanced address and `--delegates` real delegates, each pausing its
//! own real target, for `--minutes`, while a schedule kills a hub replica, restarts Postgres,
//! resets a delegate's connection, kills a delegate mid-fault and fills a delegate's state disk
//! (`faultline_e2e::soak`). Prints the figures and checks as Markdown and exits 1 if a check
//! failed.
//!
//! Needs root (the full disk is a tmpfs). Build first:
//! `cargo build --release -p faultline -p faultline-delegate -p faultline-e2e --bins`, then
//! `target/release/faultline-bench-soak --minutes 30`. Always starts a PostgreSQL of its own
//! (the schedule restarts it).
use clap::Parser;
use faultline_e2e::soak::{self, Limits, Opts};
use std::{path::PathBuf, process::ExitCode, time::Duration};

#[derive(Parser, Debug)]
#[command(about = "Soak: runs through two hub replicas and many delegates under disruptions")]
struct Args {
    /// How long runs flow and the schedule disrupts.
    #[arg(long, default_value_t = 30)]
    minutes: u64,
    /// Real delegate processes, each with its own target.
    #[arg(long, default_value_t = 50)]
    delegates: usize,
    /// Seconds between two disruptions (the schedule cycles through the five kinds).
    #[arg(long, default_value_t = 30)]
    every_secs: u64,
    /// Seconds the disk stays full (Postgres stays down at most 5 s).
    #[arg(long, default_value_t = 15)]
    hold_secs: u64,
    /// Seconds between two samples of every process's RSS and fds.
    #[arg(long, default_value_t = 10)]
    sample_secs: u64,
    /// Minutes left out of the memory slopes (from the start, or a process's restart).
    #[arg(long, default_value_t = 5)]
    warmup_minutes: u64,
    /// Largest hub RSS slope after warm-up, KiB/min.
    #[arg(long, default_value_t = 256.0)]
    hub_slope: f64,
    /// Largest delegate RSS slope after warm-up, KiB/min.
    #[arg(long, default_value_t = 64.0)]
    delegate_slope: f64,
    /// Where the soak's temporary directory goes (kept when a check fails).
    #[arg(long)]
    dir: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let a = Args::parse();
    let opts = Opts {
        duration: Duration::from_secs(a.minutes * 60),
        delegates: a.delegates,
        every: Duration::from_secs(a.every_secs),
        hold: Duration::from_secs(a.hold_secs),
        sample_every: Duration::from_secs(a.sample_secs),
        warmup: Duration::from_secs(a.warmup_minutes * 60),
        fault: Duration::from_secs(3),
        probe_every: Duration::from_millis(500),
        limits: Limits {
            hub_rss_slope: a.hub_slope,
            delegate_rss_slope: a.delegate_slope,
            hub_fd_growth: 25,
            delegate_fd_growth: 4,
            pg_conn_growth: 10,
        },
        dir: a.dir,
    };
    eprintln!("soak: {opts:?}");
    match soak::run(opts).await {
        Ok(report) => {
            println!("{}", report.table());
            println!("timeline:");
            for l in &report.timeline {
                println!("  {l}");
            }
            if let Some(k) = &report.kept {
                println!("files kept in {}", k.display());
            }
            if report.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
