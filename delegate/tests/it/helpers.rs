//! Shared test parts: uniquely named target processes, a tiny HTTP server, event helpers.
use faultline_delegate::outbox::StoredEvent;
use std::{
    io::ErrorKind,
    os::unix::process::ExitStatusExt,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicU16, AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Delegate logs on stderr when `TEST_LOG` is set (its value is the filter, e.g. `debug`).
pub fn init_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if let Ok(filter) = std::env::var("TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_test_writer()
                .try_init();
        }
    });
}

/// A `sleep 30` running under a unique command name (a copy of /bin/sleep), killed on drop.
pub struct TargetProc {
    pub child: Child,
    pub name: String,
    pub dir: tempfile::TempDir,
}

impl TargetProc {
    pub fn spawn() -> TargetProc {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        // /proc/PID/comm keeps 15 characters.
        let name = format!("flt{}x{n}", std::process::id() % 100_000);
        assert!(name.len() <= 15);
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join(&name);
        std::fs::copy("/bin/sleep", &bin).unwrap();
        // A file just written can be briefly "busy" if another test thread forks meanwhile.
        let mut tries = 0;
        let child = loop {
            match Command::new(&bin).arg("30").stdin(Stdio::null()).spawn() {
                Ok(c) => break c,
                Err(e) if e.kind() == ErrorKind::ExecutableFileBusy && tries < 50 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("cannot spawn {}: {e}", bin.display()),
            }
        };
        let p = TargetProc { child, name, dir };
        // Wait until the exec is done and /proc shows the new name.
        wait_until(Duration::from_secs(5), || {
            comm(p.pid()).as_deref() == Some(p.name.as_str())
        });
        p
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn pid_file(&self) -> PathBuf {
        let path = self.dir.path().join("target.pid");
        std::fs::write(&path, format!("{}\n", self.pid())).unwrap();
        path
    }

    /// Waits for the process to exit; returns the signal that ended it.
    pub fn wait_for_death(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.signal();
            }
            assert!(
                Instant::now() < deadline,
                "process {} did not die",
                self.pid()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for TargetProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn comm(pid: i32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim_end().to_string())
}

/// The state letter from /proc/PID/stat (R, S, T, Z, ...).
pub fn proc_state(pid: i32) -> char {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    s[s.rfind(')').unwrap() + 2..].chars().next().unwrap()
}

pub fn wait_until(within: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !f() {
        assert!(
            Instant::now() < deadline,
            "condition not met within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `wait_until` for async tests: yields to the runtime between polls.
pub async fn eventually(within: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !f() {
        assert!(
            Instant::now() < deadline,
            "condition not met within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A tiny HTTP/1.1 server on 127.0.0.1:0 that answers every request with `status` (changeable
/// while it runs) and closes the connection.
pub struct HttpServer {
    pub url: String,
    pub status: Arc<AtomicU16>,
    task: tokio::task::JoinHandle<()>,
}

impl HttpServer {
    pub async fn start(status: u16) -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/health", listener.local_addr().unwrap());
        let status = Arc::new(AtomicU16::new(status));
        let code = status.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let code = code.load(Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = [0u8; 2048];
                    let mut seen = Vec::new();
                    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                        match sock.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => seen.extend_from_slice(&buf[..n]),
                        }
                    }
                    let resp = format!(
                        "HTTP/1.1 {code} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
                    );
                    let _ = sock.write_all(resp.as_bytes()).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        HttpServer { url, status, task }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A local port nothing listens on.
pub async fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

pub fn kinds(events: &[StoredEvent]) -> Vec<&str> {
    events.iter().map(|e| e.kind.as_str()).collect()
}

/// Checks the invariants every run's event list has: run.started first, run.finished last,
/// seq 1..n without gaps, and a score that matches the probe.check events.
pub fn assert_well_formed(
    events: &[StoredEvent],
    weights: &[u8],
) -> faultline_spec::events::RunFinished {
    use faultline_spec::events::{self, ProbeCheck, RunFinished};
    assert!(!events.is_empty());
    assert_eq!(events[0].kind, events::RUN_STARTED, "{:?}", kinds(events));
    assert_eq!(
        events.last().unwrap().kind,
        events::RUN_FINISHED,
        "{:?}",
        kinds(events)
    );
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=events.len() as u64).collect::<Vec<_>>());
    assert_eq!(
        events
            .iter()
            .filter(|e| e.kind == events::RUN_FINISHED)
            .count(),
        1
    );
    let checks: Vec<ProbeCheck> = events
        .iter()
        .filter(|e| e.kind == events::PROBE_CHECK)
        .map(|e| serde_json::from_str(&e.payload_json).unwrap())
        .collect();
    let fin: RunFinished = serde_json::from_str(&events.last().unwrap().payload_json).unwrap();
    assert_eq!(fin.checks_total as usize, checks.len());
    assert_eq!(
        fin.checks_passed as usize,
        checks.iter().filter(|c| c.ok).count()
    );
    let expected = faultline_spec::score::score(
        weights,
        checks
            .iter()
            .flat_map(|c| c.ordinals().into_iter().map(move |o| (o, c.ok))),
    );
    assert_eq!(fin.score, expected, "score must be what the checks say");
    fin
}
