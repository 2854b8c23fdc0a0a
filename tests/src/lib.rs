//! The one end-to-end harness: real Postgres (one database per test on the shared server the
//! test script starts), the real `faultline` and `faultline-delegate` binaries on random ports
//! with TLS, and real target processes. Every child is killed when its handle drops.
//!
//! Set `TEST_LOG=1` to see hub and delegate logs on stderr; otherwise they go to files in the
//! test's temporary directory, whose path is printed when a test fails.
use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use std::{
    path::{Path, PathBuf},
    process::Stdio,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
    sync::watch,
};

pub mod lb;
pub mod loadgen;
pub mod receiver;
pub mod soak;

/// `target/<profile>/<name>`, beside this binary (or one level up, for test binaries in deps/).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("own binary path");
    let dir = exe.parent().expect("binary directory");
    let candidates = [
        dir.join(name),
        dir.parent().map(|p| p.join(name)).unwrap_or_default(),
    ];
    let found = candidates.iter().find(|p| p.is_file());
    found.cloned().unwrap_or_else(|| panic!("{name} is missing beside {}: build the binaries first (cargo build --workspace --bins)", dir.display()))
}

/// For the benchmarks: a private PostgreSQL (its process and directory, stopped by the caller),
/// unless `FAULTLINE_TEST_PG` names a server already; sets `FAULTLINE_TEST_PG` to it.
pub async fn private_pg_unless_set() -> Result<Option<(Proc, tempfile::TempDir)>> {
    if std::env::var_os("FAULTLINE_TEST_PG").is_some() {
        return Ok(None);
    }
    let dir = tempfile::Builder::new()
        .prefix("faultline-bench-pg")
        .tempdir()?;
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )?;
    let mut cmd = Command::new(bin("faultline"));
    cmd.args(["postgres", "--max-connections", "300", "--data-dir"])
        .arg(dir.path())
        .env("FAULTLINE_PG_NOSYNC", "1");
    let mut p = Proc::spawn(cmd, dir.path().join("pg.log"), "pg").await?;
    let url = p
        .wait_line("postgres ready ", Duration::from_secs(60))
        .await?;
    std::env::set_var("FAULTLINE_TEST_PG", url);
    Ok(Some((p, dir)))
}

/// A fresh, empty database on the shared test server (`FAULTLINE_TEST_PG`).
pub async fn fresh_database() -> Result<String> {
    let admin = std::env::var("FAULTLINE_TEST_PG").map_err(|_| {
        anyhow!("FAULTLINE_TEST_PG is not set: run the tests with ./scripts/test.sh, which starts a shared Postgres")
    })?;
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(&admin)
        .await
        .context("connect to FAULTLINE_TEST_PG")?;
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut c)
        .await?;
    Ok(with_database(&admin, &name))
}

/// Replaces the database name in a postgres URL.
pub fn with_database(url: &str, db: &str) -> String {
    let (head, query) = url
        .split_once('?')
        .map(|(h, q)| (h, Some(q)))
        .unwrap_or((url, None));
    let base = head.rsplit_once('/').map(|(b, _)| b).unwrap_or(head);
    match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    }
}

/// A child process whose stdout lines are collected (and searchable) and whose stderr goes to a
/// log file or, with TEST_LOG, to the test's stderr.
pub struct Proc {
    pub child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    changed: watch::Receiver<usize>,
    pub log: PathBuf,
}

impl Proc {
    pub async fn spawn(mut cmd: Command, log: PathBuf, tag: &str) -> Result<Proc> {
        let stderr = if std::env::var_os("TEST_LOG").is_some() {
            Stdio::inherit()
        } else {
            Stdio::from(std::fs::File::create(&log)?)
        };
        cmd.stdout(Stdio::piped())
            .stderr(stderr)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let mut child = cmd.spawn().with_context(|| format!("spawn {tag}"))?;
        let out = child.stdout.take().expect("piped");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, changed) = watch::channel(0);
        let (l2, tag) = (lines.clone(), tag.to_string());
        tokio::spawn(async move {
            let mut r = BufReader::new(out).lines();
            while let Ok(Some(line)) = r.next_line().await {
                if std::env::var_os("TEST_LOG").is_some() {
                    eprintln!("[{tag}] {line}");
                }
                let n = {
                    let mut v = l2.lock().unwrap();
                    v.push(line);
                    v.len()
                };
                let _ = tx.send(n);
            }
        });
        Ok(Proc {
            child,
            lines,
            changed,
            log,
        })
    }

    /// Waits for a stdout line starting with `prefix`; returns the rest of the line.
    pub async fn wait_line(&mut self, prefix: &str, within: Duration) -> Result<String> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(l) = self
                .lines
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.starts_with(prefix))
            {
                return Ok(l[prefix.len()..].trim().to_string());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                bail!(
                    "process exited ({status}) before printing {prefix:?}; log: {}",
                    self.log.display()
                );
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!(
                    "no line {prefix:?} within {within:?}; log: {}",
                    self.log.display()
                );
            }
            let _ =
                tokio::time::timeout(left.min(Duration::from_millis(200)), self.changed.changed())
                    .await;
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id().map(|p| p as i32).unwrap_or(0)
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), sig);
    }

    /// SIGTERM, then wait up to `within` for a clean exit; returns whether it exited with 0.
    pub async fn stop(&mut self, within: Duration) -> Result<bool> {
        self.signal(nix::sys::signal::Signal::SIGTERM);
        let st = tokio::time::timeout(within, self.child.wait())
            .await
            .context("did not stop in time")??;
        Ok(st.success())
    }
}

/// One hub process.
pub struct Hub {
    pub proc: Proc,
    pub url: String,
    pub addr: String,
    pub ca: PathBuf,
    pub data_dir: PathBuf,
    /// Set when this hub bootstrapped the database: a session token of the administrator it
    /// made (signed in with the password it printed).
    pub admin_token: Option<String>,
    /// The administrator's email and generated password, when this hub made them.
    pub admin_login: Option<(String, String)>,
    pub database_url: String,
}

pub struct HubOpts {
    pub listen: String,
    pub extra: Vec<String>,
}

impl Default for HubOpts {
    fn default() -> Self {
        HubOpts {
            listen: "127.0.0.1:0".into(),
            extra: vec![],
        }
    }
}

impl Hub {
    pub async fn start(database_url: &str, data_dir: &Path, opts: HubOpts) -> Result<Hub> {
        std::fs::create_dir_all(data_dir)?;
        let mut cmd = Command::new(bin("faultline"));
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--listen", &opts.listen])
            .args([
                "--heartbeat-interval",
                "1s",
                "--poll-interval",
                "500ms",
                "--shutdown-grace",
                "2s",
            ])
            // The per-client API rate limit would throttle load tests, which all come from
            // loopback; the perimeter tests turn it on.
            .env("FAULTLINE_RATE_LIMIT", "0")
            .args(&opts.extra)
            .env_remove("DATABASE_URL")
            .env_remove("FAULTLINE_LOG");
        // An empty URL means: let the hub run its embedded Postgres.
        if !database_url.is_empty() {
            cmd.env("DATABASE_URL", database_url);
        }
        let n = std::fs::read_dir(data_dir)?.count();
        let mut proc = Proc::spawn(cmd, data_dir.join(format!("hub-{n}.log")), "hub").await?;
        let url = proc
            .wait_line("faultline listening on ", Duration::from_secs(60))
            .await?;
        let ca = PathBuf::from(
            proc.wait_line("faultline ca ", Duration::from_secs(1))
                .await?,
        );
        let printed = |prefix: &str| {
            proc.lines
                .lock()
                .unwrap()
                .iter()
                .find_map(|l| l.strip_prefix(prefix).map(str::to_string))
        };
        let admin_login = printed("admin user: ").zip(printed("admin password: "));
        let addr = url.trim_start_matches("https://").to_string();
        let mut hub = Hub {
            proc,
            url,
            addr,
            ca,
            data_dir: data_dir.to_path_buf(),
            admin_token: None,
            admin_login: admin_login.clone(),
            database_url: database_url.into(),
        };
        if let Some((email, password)) = &admin_login {
            hub.admin_token = Some(hub.login(email, password).await?);
        }
        Ok(hub)
    }

    /// Signs in with a password at `/auth/login`; returns the session token.
    pub async fn login(&self, email: &str, password: &str) -> Result<String> {
        let resp = self
            .client("")?
            .http
            .post(format!("{}/auth/login", self.url))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        anyhow::ensure!(status == 200, "login as {email}: HTTP {status}: {body}");
        body["token"]
            .as_str()
            .map(str::to_string)
            .context("login answer has a token")
    }

    pub fn client(&self, token: &str) -> Result<Api> {
        Api::new(&self.url, &self.ca, token)
    }

    /// Another replica on the same database, presenting this hub's certificate (its generated
    /// CA and server certificate are copied into the new data directory first), so clients that
    /// trust one trust both behind one address.
    pub async fn replica(&self, data_dir: &Path, opts: HubOpts) -> Result<Hub> {
        let tls = data_dir.join("tls");
        std::fs::create_dir_all(&tls)?;
        for f in ["ca.pem", "server.pem", "server.key"] {
            std::fs::copy(self.data_dir.join("tls").join(f), tls.join(f))
                .with_context(|| format!("copy tls/{f}"))?;
        }
        Hub::start(&self.database_url, data_dir, opts).await
    }

    /// SIGTERM, then wait up to `within` for a clean exit (true when it exited 0).
    pub async fn stop(&mut self, within: Duration) -> Result<bool> {
        self.proc.stop(within).await
    }

    /// Starts this hub again on its data directory and address with `extra` flags (after
    /// it exited).
    pub async fn restart(&mut self, extra: Vec<String>) -> Result<()> {
        let again = Hub::start(
            &self.database_url,
            &self.data_dir,
            HubOpts {
                listen: self.addr.clone(),
                extra,
            },
        )
        .await?;
        let (token, login) = (self.admin_token.take(), self.admin_login.take());
        *self = Hub {
            admin_token: token,
            admin_login: login,
            ..again
        };
        Ok(())
    }
}

/// A GraphQL client over HTTPS that trusts the hub's CA.
#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
    pub url: String,
    pub token: String,
}

/// A GraphQL error as the API returns it.
#[derive(Debug)]
pub struct GqlError {
    pub status: u16,
    pub message: String,
    pub extensions: Value,
}

impl std::fmt::Display for GqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "HTTP {}: {} {}",
            self.status, self.message, self.extensions
        )
    }
}

impl Api {
    pub fn new(url: &str, ca: &Path, token: &str) -> Result<Api> {
        let cert = reqwest::Certificate::from_pem(&std::fs::read(ca)?)?;
        let http = reqwest::Client::builder()
            .add_root_certificate(cert)
            .timeout(Duration::from_secs(30))
            .build()?;
        Ok(Api {
            http,
            url: url.into(),
            token: token.into(),
        })
    }

    /// Runs a query; GraphQL errors come back as `Err(GqlError)`.
    pub async fn try_gql(&self, query: &str, vars: Value) -> Result<Result<Value, GqlError>> {
        let resp = self
            .http
            .post(format!("{}/graphql", self.url))
            .bearer_auth(&self.token)
            .json(&json!({"query": query, "variables": vars}))
            .send()
            .await?;
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if let Some(e) = body.get("errors").and_then(|e| e.get(0)) {
            return Ok(Err(GqlError {
                status,
                message: e["message"].as_str().unwrap_or_default().to_string(),
                extensions: e.get("extensions").cloned().unwrap_or(Value::Null),
            }));
        }
        if status != 200 {
            return Ok(Err(GqlError {
                status,
                message: body.to_string(),
                extensions: Value::Null,
            }));
        }
        Ok(Ok(body["data"].clone()))
    }

    pub async fn gql(&self, query: &str, vars: Value) -> Result<Value> {
        self.try_gql(query, vars).await?.map_err(|e| anyhow!("{e}"))
    }

    pub async fn delegate_token(&self) -> Result<String> {
        Ok(self
            .gql("mutation { createDelegateToken }", json!({}))
            .await?["createDelegateToken"]
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    pub async fn create_template(&self, yaml: &str) -> Result<String> {
        let d = self
            .gql(
                "mutation($y: String!) { createTemplate(yaml: $y) { id } }",
                json!({"y": yaml}),
            )
            .await?;
        Ok(d["createTemplate"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    pub async fn start_run(&self, template: &str, delegate: &str) -> Result<String> {
        let d = self
            .gql("mutation($t: ID!, $d: String) { startRun(templateId: $t, delegate: $d) { id status } }", json!({"t": template, "d": delegate}))
            .await?;
        Ok(d["startRun"]["id"].as_str().unwrap_or_default().to_string())
    }

    pub async fn run(&self, id: &str) -> Result<Value> {
        let d = self
            .gql(
                "query($id: ID!) { run(id: $id) { id status reason resilienceScore delegateScore recoveryMs startedAt endedAt \
                   delegate { name replica } probeTally { passed failed total } \
                   probeResults { probe phase step ok latencyMs detail } events { seq kind payload } } }",
                json!({"id": id}),
            )
            .await?;
        Ok(d["run"].clone())
    }

    /// Polls until the run's status is one of `states`.
    pub async fn wait_status(&self, id: &str, states: &[&str], within: Duration) -> Result<Value> {
        let deadline = Instant::now() + within;
        loop {
            let r = self.run(id).await?;
            if states.contains(&r["status"].as_str().unwrap_or_default()) {
                return Ok(r);
            }
            if Instant::now() > deadline {
                bail!("run {id} did not reach {states:?} within {within:?}; last: {r}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Polls until the run has an event of `kind`.
    pub async fn wait_event(&self, id: &str, kind: &str, within: Duration) -> Result<Value> {
        let deadline = Instant::now() + within;
        loop {
            let r = self.run(id).await?;
            if r["events"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|e| e["kind"] == kind)
            {
                return Ok(r);
            }
            if Instant::now() > deadline {
                bail!("run {id} had no {kind} event within {within:?}; last: {r}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

pub const TERMINAL: &[&str] = &["PASSED", "FAILED", "ABORTED", "ERROR"];

/// A delegate process.
pub struct Delegate {
    pub proc: Proc,
    pub state_dir: PathBuf,
}

impl Delegate {
    pub async fn start(
        hub: &Hub,
        hub_url: &str,
        token: &str,
        name: &str,
        labels: &[&str],
        state_dir: &Path,
        extra: &[&str],
    ) -> Result<Delegate> {
        std::fs::create_dir_all(state_dir)?;
        let mut cmd = Command::new(bin("faultline-delegate"));
        cmd.args(["--hub", hub_url])
            .arg("--hub-ca")
            .arg(&hub.ca)
            .args(["--name", name])
            .arg("--state-dir")
            .arg(state_dir)
            .args(["--heartbeat-interval", "1s"])
            .args(extra)
            .env("FAULTLINE_DELEGATE_TOKEN", token);
        for l in labels {
            cmd.args(["--label", l]);
        }
        let n = std::fs::read_dir(state_dir)?.count();
        let mut proc = Proc::spawn(cmd, state_dir.with_extension(format!("{n}.log")), name).await?;
        proc.wait_line("faultline-delegate connected", Duration::from_secs(30))
            .await?;
        Ok(Delegate {
            proc,
            state_dir: state_dir.to_path_buf(),
        })
    }
}

/// A real HTTP service (python3 http.server on loopback) under a supervisor loop that restarts it
/// when it dies, writing the current pid to a pid file — what an init system does for a real
/// service. Dropping the handle stops both.
pub struct Target {
    pub port: u16,
    pub pid_file: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub restarts: Arc<Mutex<u32>>,
}

impl Target {
    pub async fn start(dir: &Path) -> Result<Target> {
        let port = free_port()?;
        let pid_file = dir.join(format!("target-{port}.pid"));
        let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
        let restarts = Arc::new(Mutex::new(0));
        let (pf, r2, d) = (pid_file.clone(), restarts.clone(), dir.to_path_buf());
        tokio::spawn(async move {
            loop {
                let mut c = match Command::new("python3")
                    .args([
                        "-m",
                        "http.server",
                        &port.to_string(),
                        "--bind",
                        "127.0.0.1",
                    ])
                    .current_dir(&d)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .kill_on_drop(true)
                    .spawn()
                {
                    Ok(c) => c,
                    Err(_) => return,
                };
                let _ = std::fs::write(&pf, c.id().unwrap_or(0).to_string());
                tokio::select! {
                    _ = c.wait() => { *r2.lock().unwrap() += 1; }
                    _ = &mut rx => { let _ = c.kill().await; return; }
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        });
        let t = Target {
            port,
            pid_file,
            stop: Some(tx),
            restarts,
        };
        t.wait_up(Duration::from_secs(15)).await?;
        Ok(t)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    pub fn pid(&self) -> i32 {
        std::fs::read_to_string(&self.pid_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    pub async fn wait_up(&self, within: Duration) -> Result<()> {
        let deadline = Instant::now() + within;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(1))
            .build()?;
        while Instant::now() < deadline {
            if http
                .get(self.url())
                .send()
                .await
                .map(|r| r.status().is_success())
                .unwrap_or(false)
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("target on port {} not up within {within:?}", self.port)
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// The one-letter state of a process from /proc/PID/stat ('T' = stopped), if it exists.
pub fn proc_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next())
}

pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Everything one test needs: a database, a temp dir, one hub, an admin API client.
pub struct World {
    pub dir: tempfile::TempDir,
    pub db: String,
    pub hub: Hub,
    pub api: Api,
    pub token: String,
}

impl World {
    pub async fn new() -> Result<World> {
        World::with_hub(HubOpts::default()).await
    }

    /// A world whose hub gets `opts` (extra flags).
    pub async fn with_hub(opts: HubOpts) -> Result<World> {
        let dir = tempfile::Builder::new()
            .prefix("faultline-e2e-")
            .tempdir()?;
        let db = fresh_database().await?;
        let hub = Hub::start(&db, &dir.path().join("hub"), opts).await?;
        let token = hub
            .admin_token
            .clone()
            .context("first hub prints the admin password")?;
        let api = hub.client(&token)?;
        Ok(World {
            dir,
            db,
            hub,
            api,
            token,
        })
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    pub async fn delegate(&self, name: &str, labels: &[&str], extra: &[&str]) -> Result<Delegate> {
        let token = self.api.delegate_token().await?;
        Delegate::start(
            &self.hub,
            &self.hub.url,
            &token,
            name,
            labels,
            &self.path(&format!("delegate-{name}")),
            extra,
        )
        .await
    }
}

/// A template: one http probe on `url`, one fault step.
pub fn template(
    name: &str,
    url: &str,
    fault: &str,
    target: &str,
    params: &str,
    duration: &str,
) -> String {
    format!(
        "apiVersion: faultline.dev/v1\nkind: Experiment\nmetadata:\n  name: {name}\nhypothesis:\n  probes:\n    - name: web-ok\n      \
         http: {{url: \"{url}\", expect: {{status: 200}}}}\n      interval: 200ms\n      timeout: 500ms\n  recoverWithin: 15s\n\
         steps:\n  - fault: {fault}\n    target: {target}\n    params: {params}\n    duration: {duration}\n"
    )
}

/// A template that pauses (SIGSTOP) `target` for `duration`, probing it over HTTP.
pub fn pause_template(name: &str, target: &Target, duration: &str) -> String {
    let pf = format!("{{pidFile: {}}}", target.pid_file.display());
    template(name, &target.url(), "process-pause", &pf, "{}", duration)
}

/// For the benchmarks: the number after `name` on the command line, else `default`.
pub fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The `p` quantile (0..=1) of `sorted` samples, nearest rank.
pub fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p).ceil() as usize)
        .saturating_sub(1)
        .min(sorted.len() - 1)]
}

/// A `/proc/PID/status` field in KiB (`VmRSS`, `VmHWM`, …); `None` once the process is gone.
pub fn proc_kib(pid: i32, field: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn quantiles_and_proc_fields() {
        let s: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(
            (
                super::pct(&s, 0.5),
                super::pct(&s, 0.99),
                super::pct(&s, 1.0)
            ),
            (50.0, 99.0, 100.0)
        );
        let me = std::process::id() as i32;
        assert!(super::proc_kib(me, "VmRSS").is_some_and(|kib| kib > 0));
        assert_eq!(super::proc_kib(me, "NoSuchField"), None);
    }
}
