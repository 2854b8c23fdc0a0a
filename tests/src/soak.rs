//! The soak (issue 20, "scale and endurance"): runs keep flowing through two hub replicas behind
//! one address ([`crate::lb::Balancer`]) and many real `faultline-delegate` processes, each
//! pausing its own real target, while a schedule disrupts one part after another:
//!
//! - [`Disruption::HubKill`]: SIGKILL replica A, start it again on its port and data directory;
//! - [`Disruption::PostgresRestart`]: stop the soak's own PostgreSQL, start it again;
//! - [`Disruption::ConnectionDrop`]: reset one delegate's connection in the balancer;
//! - [`Disruption::DelegateKill`]: SIGKILL a delegate while its fault is applied, start it again
//!   (its journal must revert the fault);
//! - [`Disruption::DiskFull`]: fill one delegate's state disk (a small tmpfs) to within a few KB,
//!   hold it, free it.
//!
//! Meanwhile every process's RSS and open fds, and Postgres's connections, are sampled. At the end
//! [`Report`] holds the figures and the checks: every run terminal, every run's events 1..N with
//! no gap, all acknowledged, no fault applied twice or left applied, memory flat after warm-up
//! (least-squares slope), fds and connections not growing.
//!
//! Replica B is never killed on purpose: it carries every stream while A is away and lives for
//! the whole soak, so its memory series is the long one. Used by `faultline-bench-soak` and the
//! e2e test `soak::two_minutes`.
use crate::{
    bin, free_port, lb, proc_state, with_database, Api, Delegate, Hub, HubOpts, Proc, Target,
    TERMINAL,
};
use anyhow::{Context, Result};
use serde_json::json;
use sqlx::PgPool;
use std::{
    collections::{BTreeMap, HashMap},
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};
use tokio::process::Command;

/// One kind of trouble the schedule causes; the schedule cycles through [`Disruption::ALL`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Disruption {
    HubKill,
    PostgresRestart,
    ConnectionDrop,
    DelegateKill,
    DiskFull,
}

impl Disruption {
    pub const ALL: [Disruption; 5] = [
        Disruption::HubKill,
        Disruption::ConnectionDrop,
        Disruption::DelegateKill,
        Disruption::PostgresRestart,
        Disruption::DiskFull,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Disruption::HubKill => "hub replica SIGKILL + restart",
            Disruption::PostgresRestart => "Postgres restart",
            Disruption::ConnectionDrop => "delegate connection reset",
            Disruption::DelegateKill => "delegate SIGKILL mid-fault + restart",
            Disruption::DiskFull => "delegate state disk full",
        }
    }
}

/// What "flat" and "not growing" mean, per process kind.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest RSS slope after warm-up, KiB per minute.
    pub hub_rss_slope: f64,
    pub delegate_rss_slope: f64,
    /// Largest rise of open fds from the first to the last quarter after warm-up.
    pub hub_fd_growth: i64,
    pub delegate_fd_growth: i64,
    /// Largest rise of the database's connections, same quarters.
    pub pg_conn_growth: i64,
}

#[derive(Clone, Debug)]
pub struct Opts {
    /// How long runs flow and the schedule disrupts.
    pub duration: Duration,
    pub delegates: usize,
    /// Time between two disruptions.
    pub every: Duration,
    /// How long the disk stays full, and Postgres down.
    pub hold: Duration,
    pub sample_every: Duration,
    /// Samples before this (from the start, or a process's restart) are left out of the slopes.
    pub warmup: Duration,
    /// Each run pauses its target for this long.
    pub fault: Duration,
    /// Each run's probe interval.
    pub probe_every: Duration,
    pub limits: Limits,
    /// Where the soak's files go (a temporary directory under it); kept when a check fails.
    pub dir: Option<PathBuf>,
}

impl Opts {
    /// The CI version: two minutes, every kind of disruption at least once.
    pub fn two_minutes(delegates: usize) -> Opts {
        Opts {
            duration: Duration::from_secs(120),
            delegates,
            every: Duration::from_secs(20),
            hold: Duration::from_secs(8),
            sample_every: Duration::from_secs(3),
            warmup: Duration::from_secs(40),
            fault: Duration::from_secs(3),
            probe_every: Duration::from_millis(500),
            // Two minutes of a debug build cannot tell a slow leak from warm-up: these bounds
            // catch gross leaks only; the long soak (faultline-bench-soak) measures the rest.
            limits: Limits {
                hub_rss_slope: 8192.0,
                delegate_rss_slope: 2048.0,
                hub_fd_growth: 40,
                delegate_fd_growth: 8,
                pg_conn_growth: 20,
            },
            dir: None,
        }
    }
}

/// One check's outcome.
#[derive(Clone, Debug)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

#[derive(Debug, Default)]
pub struct Report {
    /// `(what, value)` rows of the figures table, in order.
    pub figures: Vec<(String, String)>,
    pub checks: Vec<Check>,
    /// What the schedule did, with its measurements, one line each.
    pub timeline: Vec<String>,
    /// Disruptions done, by kind.
    pub done: BTreeMap<Disruption, usize>,
    /// Seconds from a hub replica's SIGKILL until every delegate streamed to the other one.
    pub failover_secs: Vec<f64>,
    /// Where the files are, when they were kept.
    pub kept: Option<PathBuf>,
    /// Disk-full disruptions the delegate noticed (an event held in memory or a run refused).
    pub disk_full_felt: usize,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }

    fn check(&mut self, name: &str, ok: bool, detail: impl Into<String>) {
        self.checks.push(Check {
            name: name.into(),
            ok,
            detail: detail.into(),
        });
    }

    fn figure(&mut self, what: impl Into<String>, value: impl Into<String>) {
        self.figures.push((what.into(), value.into()));
    }

    /// The figures and checks as Markdown tables.
    pub fn table(&self) -> String {
        let mut out = String::from("| figure | value |\n|---|---|\n");
        for (k, v) in &self.figures {
            out.push_str(&format!("| {k} | {v} |\n"));
        }
        out.push_str("\n| check | result | detail |\n|---|---|---|\n");
        for c in &self.checks {
            let r = if c.ok { "ok" } else { "FAILED" };
            out.push_str(&format!("| {} | {r} | {} |\n", c.name, c.detail));
        }
        out
    }
}

/// The soak's own PostgreSQL, restartable on its directory and port.
struct Pg {
    proc: Option<Proc>,
    dir: PathBuf,
    port: u16,
    admin: String,
}

impl Pg {
    async fn start(dir: PathBuf, port: u16) -> Result<Pg> {
        let mut pg = Pg {
            proc: None,
            dir,
            port,
            admin: String::new(),
        };
        pg.up().await?;
        Ok(pg)
    }

    async fn up(&mut self) -> Result<()> {
        let mut cmd = Command::new(bin("faultline"));
        cmd.args(["postgres", "--max-connections", "200", "--port"])
            .arg(self.port.to_string())
            .arg("--data-dir")
            .arg(&self.dir)
            .env("FAULTLINE_PG_NOSYNC", "1");
        let n = std::fs::read_dir(self.dir.parent().unwrap_or(&self.dir))?.count();
        let mut p = Proc::spawn(cmd, self.dir.with_extension(format!("{n}.log")), "pg").await?;
        self.admin = p
            .wait_line("postgres ready ", Duration::from_secs(60))
            .await?;
        self.proc = Some(p);
        Ok(())
    }

    async fn down(&mut self) -> Result<()> {
        if let Some(mut p) = self.proc.take() {
            anyhow::ensure!(
                p.stop(Duration::from_secs(30)).await?,
                "postgres did not stop cleanly"
            );
        }
        Ok(())
    }
}

/// Appends to `f` until the disk refuses, in `chunk`s and then in 512-byte pieces.
fn fill_up(f: &mut std::fs::File, chunk: usize) {
    use std::io::Write;
    let big = vec![1u8; chunk];
    while f.write_all(&big).is_ok() {}
    while f.write_all(&big[..512.min(chunk)]).is_ok() {}
}

/// A tmpfs mounted for one delegate's state directory; unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size_mib: u32) -> Result<Tmpfs> {
        std::fs::create_dir_all(at)?;
        let st = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_mib}m,mode=0700")])
            .arg("tmpfs")
            .arg(at)
            .status()
            .context("run mount")?;
        anyhow::ensure!(
            st.success(),
            "mount -t tmpfs on {} failed (the soak needs root)",
            at.display()
        );
        Ok(Tmpfs(at.to_path_buf()))
    }

    /// Bytes free for an unprivileged writer.
    fn free(&self) -> Result<u64> {
        let s = nix::sys::statvfs::statvfs(&self.0)?;
        Ok(s.blocks_available() as u64 * s.fragment_size() as u64)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// One delegate with its own target and template.
struct Node {
    name: String,
    delegate: Delegate,
    target: Target,
    template: String,
    /// Set for the node whose state disk gets filled.
    disk: Option<Tmpfs>,
}

/// A process the sampler watches: its slot ("hub-a", "delegate-7") and its current pid.
type Watched = Arc<Mutex<BTreeMap<String, i32>>>;

#[derive(Clone, Copy, Debug)]
struct Sample {
    at: f64,
    pid: i32,
    rss_kib: u64,
    fds: u64,
}

fn rss_kib(pid: i32) -> Option<u64> {
    crate::proc_kib(pid, "VmRSS")
}

fn fd_count(pid: i32) -> Option<u64> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64)
}

/// Shortest series (seconds after warm-up) whose memory slope is checked.
const MIN_SPAN_SECS: f64 = 60.0;

/// Least-squares slope of `y` over `x`.
pub fn slope(points: &[(f64, f64)]) -> Option<f64> {
    if points.len() < 3 {
        return None;
    }
    let n = points.len() as f64;
    let (mx, my) = points
        .iter()
        .fold((0.0, 0.0), |(a, b), (x, y)| (a + x / n, b + y / n));
    let (num, den) = points.iter().fold((0.0, 0.0), |(a, b), (x, y)| {
        (a + (x - mx) * (y - my), b + (x - mx) * (x - mx))
    });
    (den > 0.0).then(|| num / den)
}

/// The latest incarnation's samples after its warm-up.
fn settled(samples: &[Sample], warmup: f64) -> Vec<Sample> {
    let Some(last) = samples.last() else {
        return Vec::new();
    };
    let mine: Vec<Sample> = samples
        .iter()
        .copied()
        .filter(|s| s.pid == last.pid)
        .collect();
    let born = mine.first().map_or(0.0, |s| s.at);
    mine.into_iter().filter(|s| s.at >= born + warmup).collect()
}

/// Rise of a series from its first quarter (highest value) to its last quarter (lowest value):
/// positive only when even the lows at the end exceed the highs at the start.
fn growth(values: &[i64]) -> Option<i64> {
    let q = values.len() / 4;
    if q == 0 {
        return None;
    }
    let first = values[..q].iter().max()?;
    let last = values[values.len() - q..].iter().min()?;
    Some(last - first)
}

fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

/// The soak's template: pause `target` for `fault`, probing it over HTTP every `every`.
fn template(name: &str, target: &Target, fault: Duration, every: Duration) -> String {
    format!(
        "apiVersion: faultline.dev/v1\nkind: Experiment\nmetadata:\n  name: {name}\nhypothesis:\n  probes:\n    - name: web-ok\n      \
         http: {{url: \"{}\", expect: {{status: 200}}}}\n      interval: {}ms\n      timeout: 500ms\n  recoverWithin: 15s\n\
         steps:\n  - fault: process-pause\n    target: {{pidFile: {}}}\n    params: {{}}\n    duration: {}ms\n",
        target.url(),
        every.as_millis(),
        target.pid_file.display(),
        fault.as_millis()
    )
}

struct Soak {
    opts: Opts,
    dir: tempfile::TempDir,
    pg: Pg,
    pool: PgPool,
    hubs: Vec<Hub>,
    lb: lb::Balancer,
    api: Api,
    nodes: Vec<Node>,
    watched: Watched,
    report: Report,
    began: Instant,
}

/// Runs the soak; `Err` only when it could not be set up or driven, failed checks are in the
/// report.
pub async fn run(opts: Opts) -> Result<Report> {
    let mut soak = Soak::setup(opts).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let started = Arc::new(AtomicU64::new(0));
    let start_errors = Arc::new(AtomicU64::new(0));
    let samples: Arc<Mutex<BTreeMap<String, Vec<Sample>>>> = Arc::default();
    let conns: Arc<Mutex<Vec<(f64, i64)>>> = Arc::default();
    let sampler = tokio::spawn(sample(
        soak.watched.clone(),
        soak.pool.clone(),
        samples.clone(),
        conns.clone(),
        soak.opts.sample_every,
        soak.began,
        stop.clone(),
    ));
    let mut loops = Vec::new();
    for node in &soak.nodes {
        loops.push(tokio::spawn(keep_running(
            soak.api.clone(),
            soak.pool.clone(),
            node.template.clone(),
            node.name.clone(),
            stop.clone(),
            started.clone(),
            start_errors.clone(),
        )));
    }
    let outcome = soak.schedule().await;
    stop.store(true, Ordering::Relaxed);
    for l in loops {
        let _ = l.await;
    }
    let _ = sampler.await;
    if let Err(e) = outcome {
        soak.report.check("schedule", false, format!("{e:#}"));
    }
    soak.report
        .figure("runs started", started.load(Ordering::Relaxed).to_string());
    soak.report.figure(
        "startRun calls retried (hub or database away)",
        start_errors.load(Ordering::Relaxed).to_string(),
    );
    let samples = std::mem::take(&mut *samples.lock().unwrap());
    let conns = std::mem::take(&mut *conns.lock().unwrap());
    soak.finish(&samples, &conns).await?;
    soak.teardown().await
}

impl Soak {
    async fn setup(opts: Opts) -> Result<Soak> {
        use std::os::unix::fs::PermissionsExt;
        let mut b = tempfile::Builder::new();
        b.prefix("faultline-soak-");
        let dir = match &opts.dir {
            Some(d) => b.tempdir_in(d)?,
            None => b.tempdir()?,
        };
        // The postgres user must reach its data directory.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
        let pg_dir = dir.path().join("pg");
        std::fs::create_dir_all(&pg_dir)?;
        std::fs::set_permissions(&pg_dir, std::fs::Permissions::from_mode(0o755))?;
        let pg = Pg::start(pg_dir, free_port()?).await?;
        {
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect(&pg.admin).await?;
            sqlx::query("CREATE DATABASE soak").execute(&mut c).await?;
        }
        let db = with_database(&pg.admin, "soak");
        let flags = |replica: &str| HubOpts {
            extra: hub_flags(replica),
            ..Default::default()
        };
        let a = Hub::start(&db, &dir.path().join("hub-a"), flags("soak-a")).await?;
        let b = a
            .replica(&dir.path().join("hub-b"), flags("soak-b"))
            .await?;
        let lb = lb::Balancer::start(0, vec![a.addr.parse()?, b.addr.parse()?]).await?;
        let token = a.admin_token.clone().context("admin token")?;
        let api = Api::new(&lb.url(), &a.ca, &token)?;
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(3)
            .acquire_timeout(Duration::from_secs(5))
            .connect(&db)
            .await?;
        let watched: Watched = Arc::default();
        watched.lock().unwrap().insert("hub-a".into(), a.proc.pid());
        watched.lock().unwrap().insert("hub-b".into(), b.proc.pid());
        let mut nodes = Vec::new();
        for i in 0..opts.delegates {
            let name = format!("soak-{i:02}");
            let target = Target::start(dir.path()).await?;
            let state = dir.path().join(format!("d-{i:02}"));
            // The first delegate's state directory is a small disk of its own, to fill.
            let disk = if i == 0 {
                Some(Tmpfs::mount(&state, 16)?)
            } else {
                None
            };
            let t = api.delegate_token().await?;
            let delegate = Delegate::start(&a, &lb.url(), &t, &name, &[], &state, &[]).await?;
            watched
                .lock()
                .unwrap()
                .insert(format!("delegate-{i:02}"), delegate.proc.pid());
            // The disk's delegate writes more: a longer fault probed every 100 ms needs new pages
            // while its disk is full.
            let yaml = match disk {
                Some(_) => template(
                    &name,
                    &target,
                    Duration::from_secs(8),
                    Duration::from_millis(100),
                ),
                None => template(&name, &target, opts.fault, opts.probe_every),
            };
            let template = api.create_template(&yaml).await?;
            nodes.push(Node {
                name,
                delegate,
                target,
                template,
                disk,
            });
        }
        Ok(Soak {
            opts,
            dir,
            pg,
            pool,
            hubs: vec![a, b],
            lb,
            api,
            nodes,
            watched,
            report: Report::default(),
            began: Instant::now(),
        })
    }

    fn note(&mut self, line: String) {
        let line = format!("[{:>6.1}s] {line}", self.began.elapsed().as_secs_f64());
        eprintln!("soak: {line}");
        self.report.timeline.push(line);
    }

    /// Disrupts on schedule until the soak's duration is over.
    async fn schedule(&mut self) -> Result<()> {
        let mut k = 0usize;
        loop {
            let next = self.began + self.opts.every * (k as u32 + 1);
            if next + self.opts.every / 2 > self.began + self.opts.duration {
                break;
            }
            tokio::time::sleep_until(next.into()).await;
            let kind = Disruption::ALL[k % Disruption::ALL.len()];
            let what = match kind {
                Disruption::HubKill => self.hub_kill().await?,
                Disruption::PostgresRestart => self.pg_restart().await?,
                Disruption::ConnectionDrop => self.connection_drop(k).await?,
                Disruption::DelegateKill => self.delegate_kill(k).await?,
                Disruption::DiskFull => self.disk_full().await?,
            };
            *self.report.done.entry(kind).or_default() += 1;
            self.note(format!("{}: {what}", kind.name()));
            k += 1;
        }
        let end = self.began + self.opts.duration;
        tokio::time::sleep_until(end.into()).await;
        Ok(())
    }

    /// Delegates whose stream is on `replica`, per the database.
    async fn streams_on(&self, replica: &str) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM delegates WHERE connected_replica = $1 AND session_id IS NOT NULL",
        )
        .bind(replica)
        .fetch_one(&self.pool)
        .await
        .unwrap_or(-1)
    }

    async fn hub_kill(&mut self) -> Result<String> {
        let n = self.nodes.len() as i64;
        let before = self.streams_on("soak-a").await;
        let killed = Instant::now();
        self.hubs[0].proc.signal(nix::sys::signal::Signal::SIGKILL);
        let _ = self.hubs[0].proc.child.wait().await;
        // Every delegate streams to B (those that were on A reconnect through the balancer).
        let moved = loop {
            if self.streams_on("soak-b").await == n {
                break Some(killed.elapsed());
            }
            if killed.elapsed() > Duration::from_secs(30) {
                break None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        tokio::time::sleep(Duration::from_secs(1)).await;
        self.hubs[0].restart(hub_flags("soak-a")).await?;
        let pid = self.hubs[0].proc.pid();
        self.watched.lock().unwrap().insert("hub-a".into(), pid);
        match moved {
            Some(d) => {
                self.report.failover_secs.push(d.as_secs_f64());
                Ok(format!(
                    "{before} streams were on A; all {n} on B after {:.2} s; A back",
                    d.as_secs_f64()
                ))
            }
            None => {
                self.report.check(
                    "failover",
                    false,
                    format!("not every delegate reached replica B within 30 s of A's SIGKILL ({} of {n})", self.streams_on("soak-b").await),
                );
                Ok("delegates did NOT all move to B within 30 s".into())
            }
        }
    }

    async fn pg_restart(&mut self) -> Result<String> {
        let down = Instant::now();
        self.pg.down().await?;
        tokio::time::sleep(self.opts.hold.min(Duration::from_secs(5))).await;
        self.pg.up().await?;
        let outage = down.elapsed();
        // Both replicas report ready again.
        let ready = loop {
            let mut ok = true;
            for h in &self.hubs {
                let r = self.api.http.get(format!("{}/readyz", h.url)).send().await;
                ok &= r.map(|r| r.status().is_success()).unwrap_or(false);
            }
            if ok {
                break Some(down.elapsed());
            }
            if down.elapsed() > outage + Duration::from_secs(30) {
                break None;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        if ready.is_none() {
            self.report.check(
                "database return",
                false,
                "a replica's /readyz stayed 503 for 30 s after Postgres returned",
            );
        }
        Ok(format!(
            "down {:.1} s; both replicas ready {:.1} s after the stop",
            outage.as_secs_f64(),
            ready.map_or(f64::NAN, |d| d.as_secs_f64())
        ))
    }

    async fn connection_drop(&mut self, k: usize) -> Result<String> {
        let i = 1 + k % (self.nodes.len() - 1).max(1);
        let i = i.min(self.nodes.len() - 1);
        let node = &self.nodes[i];
        let id: Option<uuid::Uuid> =
            sqlx::query_scalar("SELECT session_id FROM delegates WHERE name = $1")
                .bind(&node.name)
                .fetch_one(&self.pool)
                .await
                .ok()
                .flatten();
        let ports = lb::tcp_ports_to(node.delegate.proc.pid(), self.lb.addr);
        let cut = ports.iter().filter(|p| self.lb.reset_client(**p)).count();
        let t = Instant::now();
        let back = loop {
            let now: Option<uuid::Uuid> =
                sqlx::query_scalar("SELECT session_id FROM delegates WHERE name = $1")
                    .bind(&node.name)
                    .fetch_one(&self.pool)
                    .await
                    .ok()
                    .flatten();
            if now.is_some() && now != id {
                break Some(t.elapsed());
            }
            if t.elapsed() > Duration::from_secs(30) {
                break None;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        };
        let name = node.name.clone();
        if cut == 0 {
            self.report.check(
                "connection reset",
                false,
                format!("{name} had no connection through the balancer to cut"),
            );
        }
        if back.is_none() {
            self.report.check(
                "reconnect after reset",
                false,
                format!("{name} did not open a new stream within 30 s"),
            );
        }
        Ok(format!(
            "{name}: {cut} connection(s) reset; new stream after {:.2} s",
            back.map_or(f64::NAN, |d| d.as_secs_f64())
        ))
    }

    async fn delegate_kill(&mut self, k: usize) -> Result<String> {
        // A delegate (not the disk one) whose target is paused right now.
        let n = self.nodes.len();
        let deadline = Instant::now() + Duration::from_secs(20);
        let i = 'found: loop {
            for j in 0..n {
                let i = (k + j) % n;
                if self.nodes[i].disk.is_none()
                    && proc_state(self.nodes[i].target.pid()) == Some('T')
                {
                    break 'found Some(i);
                }
            }
            if Instant::now() > deadline {
                break None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let Some(i) = i else {
            self.report.check(
                "delegate kill mid-fault",
                false,
                "no target was paused within 20 s: runs are not flowing",
            );
            return Ok("no paused target found".into());
        };
        let pid = self.nodes[i].target.pid();
        let node = &mut self.nodes[i];
        node.delegate.proc.signal(nix::sys::signal::Signal::SIGKILL);
        let _ = node.delegate.proc.child.wait().await;
        let still = proc_state(pid) == Some('T');
        tokio::time::sleep(Duration::from_millis(500)).await;
        let restarted = Instant::now();
        let state = node.delegate.state_dir.clone();
        node.delegate = Delegate::start(
            &self.hubs[1],
            &self.lb.url(),
            "spent",
            &node.name,
            &[],
            &state,
            &[],
        )
        .await?;
        let reverted = loop {
            if proc_state(pid) != Some('T') {
                break Some(restarted.elapsed());
            }
            if restarted.elapsed() > Duration::from_secs(15) {
                break None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let (name, new_pid) = (node.name.clone(), node.delegate.proc.pid());
        self.watched
            .lock()
            .unwrap()
            .insert(format!("delegate-{i:02}"), new_pid);
        if reverted.is_none() {
            self.report.check(
                "journal revert",
                false,
                format!("{name}'s target (pid {pid}) was still paused 15 s after the delegate restarted"),
            );
        }
        Ok(format!(
            "{name} killed with its target paused (still paused after the kill: {still}); restarted, fault reverted {:.2} s after the restart",
            reverted.map_or(f64::NAN, |d| d.as_secs_f64())
        ))
    }

    async fn disk_full(&mut self) -> Result<String> {
        let node = &self.nodes[0];
        let disk = node
            .disk
            .as_ref()
            .context("the first delegate has a disk")?;
        let pid = node.delegate.proc.pid();
        // While a run is in its fault, so that run's own events meet the full disk.
        let waiting = Instant::now();
        while proc_state(node.target.pid()) != Some('T')
            && waiting.elapsed() < Duration::from_secs(15)
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let fill = disk.0.join("fill");
        let free = disk.free()?;
        let log_before = std::fs::read_to_string(&node.delegate.proc.log).unwrap_or_default();
        // Every free block: what is left is the unused tails of the pages files already hold (a
        // few KB), so the next page an append or a new run file needs is refused (ENOSPC) ...
        // ... and kept full while it holds, as a runaway log writer would: pages the delegate
        // frees (settled runs' files) are taken again within 20 ms.
        let mut f = std::fs::File::create(&fill)?;
        fill_up(&mut f, 64 << 10);
        let full_free = disk.free()?;
        let until = Instant::now() + self.opts.hold;
        while Instant::now() < until {
            fill_up(&mut f, 4 << 10);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        drop(f);
        let alive = proc_state(pid).is_some_and(|s| s != 'Z');
        let log = std::fs::read_to_string(&node.delegate.proc.log).unwrap_or_default();
        let new = log.get(log_before.len()..).unwrap_or_default();
        let (held, rejected) = (
            new.matches("cannot write run events").count(),
            new.matches("cannot persist the run").count(),
        );
        std::fs::remove_file(&fill)?;
        let name = node.name.clone();
        if !alive {
            self.report.check(
                "disk full",
                false,
                format!("{name} exited while its state disk was full"),
            );
        }
        let felt = held + rejected > 0;
        self.report.disk_full_felt += felt as usize;
        Ok(format!(
            "{name}: {} KiB free blocks for {:.0} s (of {} KiB before); delegate alive: {alive}; events held in memory: {}; runs refused: {rejected}",
            full_free / 1024,
            self.opts.hold.as_secs_f64(),
            free / 1024,
            if held > 0 { "yes" } else { "no" },
        ))
    }

    /// Waits for the runs to settle, then checks everything.
    async fn finish(
        &mut self,
        samples: &BTreeMap<String, Vec<Sample>>,
        conns: &[(f64, i64)],
    ) -> Result<()> {
        // Every run terminal, with its events complete and acknowledged (bounded).
        let deadline = Instant::now() + Duration::from_secs(120);
        let rows = loop {
            let rows = self.runs().await?;
            let open = rows
                .iter()
                .filter(|r| !TERMINAL.contains(&r.state.as_str()) || !r.complete())
                .count();
            if open == 0 || Instant::now() > deadline {
                break rows;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        };
        let mut by_state: BTreeMap<String, usize> = BTreeMap::new();
        for r in &rows {
            *by_state.entry(r.state.clone()).or_default() += 1;
        }
        self.report.figure(
            "runs by final state",
            by_state
                .iter()
                .map(|(s, n)| format!("{s} {n}"))
                .collect::<Vec<_>>()
                .join(", "),
        );
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        for r in rows.iter().filter(|r| r.state == "ERROR") {
            let short: String = r.reason.chars().take(60).collect();
            *reasons.entry(short).or_default() += 1;
        }
        if !reasons.is_empty() {
            self.report.figure(
                "ERROR runs, by reason",
                reasons
                    .iter()
                    .map(|(s, n)| format!("{n}× \"{s}\""))
                    .collect::<Vec<_>>()
                    .join("; "),
            );
        }
        let events: i64 = rows.iter().map(|r| r.count).sum();
        self.report.figure("events stored", events.to_string());
        let stuck: Vec<String> = rows
            .iter()
            .filter(|r| !TERMINAL.contains(&r.state.as_str()))
            .map(|r| format!("{} {}", r.id, r.state))
            .collect();
        self.report.check(
            "every run terminal",
            stuck.is_empty() && !rows.is_empty(),
            if stuck.is_empty() {
                format!("{} runs", rows.len())
            } else {
                format!("{} not terminal: {}", stuck.len(), stuck.join(", "))
            },
        );
        let broken: Vec<String> = rows
            .iter()
            .filter(|r| !r.complete())
            .map(|r| {
                format!(
                    "{}: {} events, seqs {}..{}, acked {}, last {:?}",
                    r.id, r.count, r.min, r.max, r.acked, r.last
                )
            })
            .collect();
        self.report.check(
            "events 1..N, no gap, acknowledged, ending run.finished",
            broken.is_empty(),
            if broken.is_empty() {
                format!("{events} events in {} runs", rows.len())
            } else {
                broken.join("; ")
            },
        );
        let twice: Vec<String> = rows
            .iter()
            .filter(|r| {
                r.applied > 1
                    || r.reverted > r.applied
                    || r.finished > 1
                    || (r.reverted < r.applied && !r.reason.contains("restarted mid-run"))
            })
            .map(|r| {
                format!(
                    "{}: applied {}, reverted {}, finished {} ({})",
                    r.id, r.applied, r.reverted, r.finished, r.reason
                )
            })
            .collect();
        self.report.check(
            "no event twice; every applied fault reverted (or its delegate restarted)",
            twice.is_empty(),
            if twice.is_empty() {
                "fault.applied ≤ 1 and = fault.reverted per run, one run.finished".into()
            } else {
                twice.join("; ")
            },
        );
        let paused: Vec<String> = self
            .nodes
            .iter()
            .filter(|n| proc_state(n.target.pid()) == Some('T'))
            .map(|n| format!("{} (pid {})", n.name, n.target.pid()))
            .collect();
        self.report.check(
            "no fault left applied",
            paused.is_empty(),
            if paused.is_empty() {
                format!(
                    "{} targets, none stopped (/proc/PID/stat)",
                    self.nodes.len()
                )
            } else {
                format!("still paused: {}", paused.join(", "))
            },
        );
        let fills = self
            .report
            .done
            .get(&Disruption::DiskFull)
            .copied()
            .unwrap_or(0);
        if fills > 0 {
            let felt = self.report.disk_full_felt;
            self.report.check(
                "the full disk reached the delegate",
                felt > 0,
                format!("{felt} of {fills} fills made it hold events in memory or refuse a run"),
            );
        }
        self.resources(samples, conns);
        let moved = &self.report.failover_secs;
        if !moved.is_empty() {
            let max = moved.iter().cloned().fold(0.0, f64::max);
            self.report.figure(
                "replica A SIGKILLed → every delegate streaming to B",
                format!("max {max:.2} s over {} kills", moved.len()),
            );
        }
        let lb = &self.lb.stats;
        self.report.figure(
            "balancer: connections to A / B, backend skipped, resets",
            format!(
                "{} / {}, {}, {}",
                lb.relayed[0].load(Ordering::Relaxed),
                lb.relayed[1].load(Ordering::Relaxed),
                lb.skipped.load(Ordering::Relaxed),
                lb.resets.load(Ordering::Relaxed)
            ),
        );
        let done: Vec<String> = Disruption::ALL
            .iter()
            .map(|k| {
                format!(
                    "{} {}",
                    k.name(),
                    self.report.done.get(k).copied().unwrap_or(0)
                )
            })
            .collect();
        self.report.figure("disruptions", done.join(", "));
        Ok(())
    }

    /// Memory, fds and connections over time.
    fn resources(&mut self, samples: &BTreeMap<String, Vec<Sample>>, conns: &[(f64, i64)]) {
        let warm = self.opts.warmup.as_secs_f64();
        let limits = self.opts.limits.clone();
        let mut delegate_slopes = Vec::new();
        let mut delegate_rss = Vec::new();
        let mut worst_fd: Option<(String, i64)> = None;
        for (slot, all) in samples {
            let s = settled(all, warm);
            let pts: Vec<(f64, f64)> = s.iter().map(|s| (s.at / 60.0, s.rss_kib as f64)).collect();
            // A slope over less than a minute says more about warm-up than about leaks.
            let span = s.last().map_or(0.0, |l| l.at) - s.first().map_or(0.0, |f| f.at);
            let k = slope(&pts).filter(|_| span >= MIN_SPAN_SECS);
            let fds: Vec<i64> = s.iter().map(|s| s.fds as i64).collect();
            let g = growth(&fds);
            if slot.starts_with("hub-") {
                let (first, last) = (s.first(), s.last());
                self.report.figure(
                    format!("{slot} RSS after warm-up (MiB), slope"),
                    match (first, last, k) {
                        (Some(f), Some(l), Some(k)) => format!(
                            "{} → {} over {:.1} min, {k:+.0} KiB/min (pid {})",
                            mib(f.rss_kib),
                            mib(l.rss_kib),
                            (l.at - f.at) / 60.0,
                            l.pid
                        ),
                        _ => "under a minute of samples since its last restart and warm-up".into(),
                    },
                );
                if let Some(k) = k {
                    self.report.check(
                        &format!("{slot} memory flat"),
                        k <= limits.hub_rss_slope,
                        format!("{k:+.0} KiB/min (limit {:.0})", limits.hub_rss_slope),
                    );
                }
                if let (Some(f), Some(l)) = (first, last) {
                    self.report.figure(
                        format!("{slot} open fds after warm-up, first → last"),
                        format!("{} → {}", f.fds, l.fds),
                    );
                }
            } else {
                if let Some(k) = k {
                    delegate_slopes.push((slot.clone(), k));
                }
                if let Some(l) = s.last() {
                    delegate_rss.push(l.rss_kib);
                }
                if let Some(g) = g {
                    if worst_fd.as_ref().is_none_or(|(_, w)| g > *w) {
                        worst_fd = Some((slot.clone(), g));
                    }
                }
            }
        }
        // Hubs: the two replicas' fds together (streams move between them).
        let hub_total: Vec<i64> = {
            let a = samples.get("hub-a").map(Vec::as_slice).unwrap_or_default();
            let b = samples.get("hub-b").map(Vec::as_slice).unwrap_or_default();
            let b_at: HashMap<u64, u64> = b.iter().map(|s| (s.at.to_bits(), s.fds)).collect();
            a.iter()
                .filter(|s| s.at >= warm)
                .filter_map(|s| b_at.get(&s.at.to_bits()).map(|f| (s.fds + f) as i64))
                .collect()
        };
        if let Some(g) = growth(&hub_total) {
            self.report.check(
                "hub fds not growing (both replicas)",
                g <= limits.hub_fd_growth,
                format!(
                    "{g:+} from the first to the last quarter (limit {:+}; {} → {})",
                    limits.hub_fd_growth,
                    hub_total.first().unwrap_or(&0),
                    hub_total.last().unwrap_or(&0)
                ),
            );
        }
        delegate_slopes.sort_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((worst, k)) = delegate_slopes.last().cloned() {
            let median = delegate_slopes[delegate_slopes.len() / 2].1;
            self.report.figure(
                "delegate RSS slope after warm-up (KiB/min)",
                format!(
                    "median {median:+.0}, max {k:+.0} ({worst}), {} delegates",
                    delegate_slopes.len()
                ),
            );
            self.report.check(
                "delegate memory flat",
                k <= limits.delegate_rss_slope,
                format!(
                    "max {k:+.0} KiB/min ({worst}; limit {:.0})",
                    limits.delegate_rss_slope
                ),
            );
        }
        delegate_rss.sort();
        if let (Some(lo), Some(hi)) = (delegate_rss.first(), delegate_rss.last()) {
            self.report.figure(
                "delegate RSS at the end (MiB)",
                format!(
                    "min {}, median {}, max {}",
                    mib(*lo),
                    mib(delegate_rss[delegate_rss.len() / 2]),
                    mib(*hi)
                ),
            );
        }
        if let Some((slot, g)) = worst_fd {
            self.report.check(
                "delegate fds not growing",
                g <= limits.delegate_fd_growth,
                format!(
                    "largest rise {g:+} ({slot}; limit {:+})",
                    limits.delegate_fd_growth
                ),
            );
        }
        let c: Vec<i64> = conns
            .iter()
            .filter(|(at, _)| *at >= warm)
            .map(|(_, n)| *n)
            .collect();
        if let (Some(g), Some(max)) = (growth(&c), c.iter().max()) {
            self.report.figure(
                "Postgres connections to the soak's database (min / max after warm-up)",
                format!("{} / {max}", c.iter().min().unwrap_or(&0)),
            );
            self.report.check(
                "Postgres connections not growing",
                g <= limits.pg_conn_growth,
                format!(
                    "{g:+} from the first to the last quarter (limit {:+})",
                    limits.pg_conn_growth
                ),
            );
        }
    }

    async fn runs(&self) -> Result<Vec<RunRow>> {
        run_rows(&self.pool).await
    }

    async fn teardown(mut self) -> Result<Report> {
        for n in &mut self.nodes {
            let _ = n.delegate.proc.stop(Duration::from_secs(15)).await;
        }
        for h in &mut self.hubs {
            let _ = h.stop(Duration::from_secs(15)).await;
        }
        self.pool.close().await;
        let _ = self.pg.down().await;
        // Unmount before the directory goes.
        for n in &mut self.nodes {
            n.disk.take();
        }
        let mut report = std::mem::take(&mut self.report);
        if !report.ok() {
            report.kept = Some(self.dir.keep());
        }
        Ok(report)
    }
}

/// Every run of the database with what its stored events say.
pub async fn run_rows(pool: &PgPool) -> Result<Vec<RunRow>> {
    let rows: Vec<RunTuple> = sqlx::query_as(
        "SELECT r.id::text, r.state, r.acked_seq, count(e.seq), COALESCE(min(e.seq), 0), COALESCE(max(e.seq), 0), \
           count(*) FILTER (WHERE e.kind = 'fault.applied'), count(*) FILTER (WHERE e.kind = 'fault.reverted'), \
           count(*) FILTER (WHERE e.kind = 'run.finished'), \
           (SELECT kind FROM run_events WHERE run_id = r.id ORDER BY seq DESC LIMIT 1), \
           COALESCE(r.verdict_reason, '') \
         FROM runs r LEFT JOIN run_events e ON e.run_id = r.id GROUP BY r.id",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(id, state, acked, count, min, max, applied, reverted, finished, last, reason)| {
                RunRow {
                    id,
                    state,
                    acked,
                    count,
                    min,
                    max,
                    applied,
                    reverted,
                    finished,
                    last,
                    reason,
                }
            },
        )
        .collect())
}

type RunTuple = (
    String,
    String,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    Option<String>,
    String,
);

/// One run and what its stored events say.
#[derive(Debug)]
pub struct RunRow {
    pub id: String,
    pub state: String,
    pub acked: i64,
    /// Events stored, their lowest and highest seq.
    pub count: i64,
    pub min: i64,
    pub max: i64,
    /// `fault.applied`, `fault.reverted` and `run.finished` events.
    pub applied: i64,
    pub reverted: i64,
    pub finished: i64,
    /// The kind of the highest seq.
    pub last: Option<String>,
    pub reason: String,
}

impl RunRow {
    /// Seqs 1..N with no gap, all acknowledged, the last one `run.finished` (or no event at all:
    /// a run the delegate refused, or that never reached one).
    pub fn complete(&self) -> bool {
        if self.count == 0 {
            return self.acked == 0 && self.state == "ERROR";
        }
        self.min == 1
            && self.max == self.count
            && self.acked == self.count
            && self.last.as_deref() == Some("run.finished")
    }
}

/// The hub flags of a soak replica.
fn hub_flags(replica: &str) -> Vec<String> {
    ["--replica-id", replica, "--db-max-connections", "10"]
        .map(String::from)
        .to_vec()
}

/// One delegate's loop until `stop`: start a run of `template` on `delegate` (retried every
/// second while no replica or no database answers), wait until it is terminal, pause up to 2 s,
/// again. Counts runs started and startRun calls that failed.
pub async fn keep_running(
    api: Api,
    pool: PgPool,
    template: String,
    delegate: String,
    stop: Arc<AtomicBool>,
    started: Arc<AtomicU64>,
    errors: Arc<AtomicU64>,
) {
    while !stop.load(Ordering::Relaxed) {
        let id = match api
            .try_gql(
                "mutation($t: ID!, $d: String) { startRun(templateId: $t, delegate: $d) { id } }",
                json!({"t": template, "d": delegate}),
            )
            .await
        {
            Ok(Ok(d)) => d["startRun"]["id"].as_str().unwrap_or_default().to_string(),
            _ => {
                errors.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let Ok(id) = id.parse::<uuid::Uuid>() else {
            continue;
        };
        started.fetch_add(1, Ordering::Relaxed);
        // Until the run is terminal; a run that never ends is found by the final check.
        let waited = Instant::now();
        while waited.elapsed() < Duration::from_secs(300) {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let state: Option<String> = sqlx::query_scalar("SELECT state FROM runs WHERE id = $1")
                .bind(id)
                .fetch_one(&pool)
                .await
                .ok();
            if state.is_some_and(|s| TERMINAL.contains(&s.as_str())) {
                break;
            }
        }
        let gap = rand_millis(2000);
        tokio::time::sleep(Duration::from_millis(gap)).await;
    }
}

fn rand_millis(max: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    nanos % max.max(1)
}

/// Samples every watched process's RSS and fds, and the database's connections, until `stop`.
async fn sample(
    watched: Watched,
    pool: PgPool,
    samples: Arc<Mutex<BTreeMap<String, Vec<Sample>>>>,
    conns: Arc<Mutex<Vec<(f64, i64)>>>,
    every: Duration,
    began: Instant,
    stop: Arc<AtomicBool>,
) {
    let mut tick = tokio::time::interval(every);
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let at = began.elapsed().as_secs_f64();
        let pids = watched.lock().unwrap().clone();
        for (slot, pid) in pids {
            if let (Some(rss_kib), Some(fds)) = (rss_kib(pid), fd_count(pid)) {
                samples
                    .lock()
                    .unwrap()
                    .entry(slot)
                    .or_default()
                    .push(Sample {
                        at,
                        pid,
                        rss_kib,
                        fds,
                    });
            }
        }
        let n: Option<i64> = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()",
        )
        .fetch_one(&pool)
        .await
        .ok();
        if let Some(n) = n {
            conns.lock().unwrap().push((at, n));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slope_is_least_squares() {
        let pts: Vec<(f64, f64)> = (0..10).map(|i| (i as f64, 3.0 * i as f64 + 7.0)).collect();
        assert!((slope(&pts).unwrap() - 3.0).abs() < 1e-9);
        assert_eq!(slope(&pts[..2]), None);
        let flat = [(0.0, 5.0), (1.0, 6.0), (2.0, 4.0), (3.0, 5.0)];
        assert!(slope(&flat).unwrap().abs() < 0.5);
    }

    #[test]
    fn growth_compares_the_first_and_last_quarters() {
        assert_eq!(growth(&[10, 12, 11, 10, 11, 10, 12, 11]), Some(-1));
        assert_eq!(growth(&[10, 10, 10, 10, 20, 20, 20, 20]), Some(10));
        assert_eq!(growth(&[1, 2]), None);
    }
}
