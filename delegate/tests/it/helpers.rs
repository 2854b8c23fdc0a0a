//! Shared test parts: uniquely named target processes, a tiny HTTP(S) server, event helpers,
//! free ports.
use faultline_delegate::outbox::StoredEvent;
use std::{
    io::ErrorKind,
    os::unix::process::ExitStatusExt,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicU16, AtomicU32, AtomicU64, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
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

/// What the test HTTP server answers.
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    /// Waits this long before answering, to be slow on purpose.
    pub delay: Duration,
}

impl Answer {
    pub fn new(status: u16, body: &str) -> Answer {
        Answer {
            status,
            body: body.into(),
            delay: Duration::ZERO,
        }
    }
}

/// A request the test HTTP server received.
#[derive(Clone, Debug, Default)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// Names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A tiny HTTP/1.1 server on 127.0.0.1:0 that answers every request with `status` and the
/// answer's body, records what it received, and closes the connection. While it runs, the test
/// can change the status and the delay, and make the next N requests fail with 503.
/// Plain HTTP, or HTTPS with a self-signed certificate for `localhost` and `127.0.0.1`.
pub struct HttpServer {
    pub url: String,
    pub status: Arc<AtomicU16>,
    pub delay_ms: Arc<AtomicU64>,
    pub fail_next: Arc<AtomicU32>,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl HttpServer {
    pub async fn start(status: u16) -> HttpServer {
        Self::answering(Answer::new(status, "ok")).await
    }

    pub async fn answering(answer: Answer) -> HttpServer {
        Self::serve(answer, None).await
    }

    /// The same server behind TLS with a self-signed certificate.
    pub async fn answering_tls(answer: Answer) -> HttpServer {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
            .unwrap();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.key_pair.serialize_der().into());
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .unwrap();
        Self::serve(
            answer,
            Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))),
        )
        .await
    }

    async fn serve(answer: Answer, tls: Option<tokio_rustls::TlsAcceptor>) -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{}/health", listener.local_addr().unwrap());
        let status = Arc::new(AtomicU16::new(answer.status));
        let delay_ms = Arc::new(AtomicU64::new(answer.delay.as_millis() as u64));
        let fail_next = Arc::new(AtomicU32::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (code, delay, fail, log) = (
            status.clone(),
            delay_ms.clone(),
            fail_next.clone(),
            seen.clone(),
        );
        let task = tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let mut answer = answer.clone();
                let failing = fail
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                answer.status = if failing {
                    503
                } else {
                    code.load(Ordering::SeqCst)
                };
                answer.delay = Duration::from_millis(delay.load(Ordering::SeqCst));
                let (tls, log) = (tls.clone(), log.clone());
                tokio::spawn(async move {
                    match tls {
                        None => serve_one(sock, &answer, &log).await,
                        Some(tls) => {
                            if let Ok(sock) = tls.accept(sock).await {
                                serve_one(sock, &answer, &log).await
                            }
                        }
                    }
                });
            }
        });
        HttpServer {
            url,
            status,
            delay_ms,
            fail_next,
            seen,
            task,
        }
    }

    /// The requests received so far.
    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// Reads one request (headers and a `content-length` body) and answers it.
async fn serve_one(
    mut sock: impl AsyncRead + AsyncWrite + Unpin,
    answer: &Answer,
    log: &Mutex<Vec<Seen>>,
) {
    let mut buf = [0u8; 2048];
    let mut data = Vec::new();
    let head_end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match sock.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let mut seen = Seen {
        method: first.next().unwrap_or("").into(),
        path: first.next().unwrap_or("").into(),
        ..Seen::default()
    };
    for line in lines.filter(|l| !l.is_empty()) {
        if let Some((n, v)) = line.split_once(':') {
            seen.headers
                .push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let len: usize = seen
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while data.len() < head_end + len {
        match sock.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    }
    seen.body = String::from_utf8_lossy(&data[head_end..head_end + len]).into_owned();
    log.lock().unwrap().push(seen);
    tokio::time::sleep(answer.delay).await;
    let resp = format!(
        "HTTP/1.1 {} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{}",
        answer.status,
        answer.body.len(),
        answer.body
    );
    let _ = sock.write_all(resp.as_bytes()).await;
    let _ = sock.shutdown().await;
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
) -> faultline_experiment::events::RunFinished {
    use faultline_experiment::events::{self, ProbeCheck, RunFinished};
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
    let expected = faultline_experiment::score::score(
        weights,
        checks
            .iter()
            .flat_map(|c| c.ordinals().into_iter().map(move |o| (o, c.ok))),
    );
    // Only runs that measured what they promised are scored.
    let expected = match fin.verdict {
        events::Verdict::Passed | events::Verdict::Failed => expected,
        events::Verdict::Aborted | events::Verdict::Error => None,
    };
    assert_eq!(fin.score, expected, "score must be what the checks say");
    fin
}

/// Whether a server binary a test needs is installed. A missing one fails the test with how to
/// install it, unless `skip_var=1` says to skip on purpose (then it prints why and returns false).
pub fn have_binary(path: &str, package: &str, skip_var: &str) -> bool {
    if std::path::Path::new(path).exists() {
        return true;
    }
    if std::env::var(skip_var).as_deref() == Ok("1") {
        eprintln!("skipped: {path} is not installed and {skip_var}=1");
        return false;
    }
    panic!("{path} is not installed: apt-get install {package} (or set {skip_var}=1 to skip this test on purpose)");
}

/// A name for an environment variable no other test uses; tests that set variables use these.
pub fn unique_env_name(what: &str) -> String {
    format!(
        "FLT_TEST_{what}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// The probe registry under a sandbox allowing `entries` (as `--allow` takes them).
pub fn probes(entries: &[&str]) -> faultline_delegate::probes::Probes {
    faultline_delegate::probes::Probes::new(faultline_delegate::sandbox::Sandbox::allowing(entries))
        .unwrap()
}
