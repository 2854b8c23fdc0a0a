//! The TCP fault proxy against real sockets on loopback: each toxic's effect measured on a real
//! upstream, toxics changed on a live connection, the `tcp-proxy` fault's apply and revert, and a
//! PostgreSQL query through the proxy with and without latency.
use faultline_delegate::{
    faults::{Faults, RunCtx},
    journal::Journal,
    proxy::{Proxy, Registry},
};
use faultline_experiment::{
    faults::{parse_toxic, FaultSpec, ToxicSpec},
    template::FaultStep,
    Dur,
};
use serde_json::{json, Value};
use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    task::JoinHandle,
    time::timeout,
};

static NAMES: AtomicUsize = AtomicUsize::new(0);

/// A proxy name no other test uses (they share the process-wide registry).
fn unique(what: &str) -> String {
    format!("{what}-{}", NAMES.fetch_add(1, Ordering::SeqCst))
}

pub fn toxic(v: Value) -> ToxicSpec {
    parse_toxic(&v, "toxic").unwrap()
}

/// An upstream that echoes everything back, until the test ends.
pub struct Echo {
    pub addr: String,
    task: JoinHandle<()>,
}

impl Echo {
    pub async fn start() -> Echo {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let task = tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let _ = s.set_nodelay(true);
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        Echo { addr, task }
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An upstream that sends `n` bytes to each connection, then closes it.
struct Source {
    addr: String,
    task: JoinHandle<()>,
}

impl Source {
    async fn start(n: usize) -> Source {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let task = tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let _ = s.write_all(&vec![7u8; n]).await;
                    let _ = s.shutdown().await;
                    // Keep the socket until the peer closes, so only the proxy decides the close.
                    let mut sink = [0u8; 64];
                    while let Ok(k) = s.read(&mut sink).await {
                        if k == 0 {
                            break;
                        }
                    }
                });
            }
        });
        Source { addr, task }
    }
}

impl Drop for Source {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A proxy on a free loopback port with `toxics`, removed when dropped.
struct TestProxy(Arc<Proxy>);

impl TestProxy {
    fn start(upstream: &str, toxics: &[ToxicSpec]) -> TestProxy {
        crate::helpers::init_logs();
        let p = Registry::global()
            .create(&unique("test"), "127.0.0.1:0", upstream, false)
            .unwrap();
        p.add_toxics(toxics).unwrap();
        p.start().unwrap();
        TestProxy(p)
    }

    fn addr(&self) -> String {
        self.0.info().listen
    }

    async fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr()).await.unwrap();
        s.set_nodelay(true).unwrap();
        s
    }
}

impl Drop for TestProxy {
    fn drop(&mut self) {
        Registry::global().remove_exact(&self.0);
    }
}

/// One 64-byte request and its echo; returns the round-trip time.
async fn ping(s: &mut TcpStream) -> Duration {
    let t = Instant::now();
    s.write_all(&[1u8; 64]).await.unwrap();
    let mut buf = [0u8; 64];
    timeout(Duration::from_secs(5), s.read_exact(&mut buf))
        .await
        .expect("echo within 5s")
        .unwrap();
    t.elapsed()
}

/// Reads until EOF or error (at most 10 s); returns the bytes, the reads and the outcome.
async fn read_all(s: &mut TcpStream) -> (usize, usize, std::io::Result<()>) {
    let (mut total, mut reads) = (0, 0);
    let mut buf = vec![0u8; 65536];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match timeout(left, s.read(&mut buf)).await {
            Err(_) => panic!("no end within 10s after {total} bytes"),
            Ok(Ok(0)) => return (total, reads, Ok(())),
            Ok(Ok(n)) => {
                total += n;
                reads += 1;
            }
            Ok(Err(e)) => return (total, reads, Err(e)),
        }
    }
}

#[tokio::test]
async fn without_toxics_bytes_pass_unchanged_both_ways() {
    let echo = Echo::start().await;
    let p = TestProxy::start(&echo.addr, &[]);
    let mut s = p.connect().await;
    echoes_unchanged(&mut s, 300_000).await;
}

/// Sends `len` patterned bytes through an echo, half-closes, and checks that exactly they come
/// back.
async fn echoes_unchanged(s: &mut TcpStream, len: u32) {
    let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    let (mut r, mut w) = s.split();
    let send = async {
        w.write_all(&data).await.unwrap();
        w.shutdown().await.unwrap();
    };
    let mut back = Vec::new();
    let (_, n) = tokio::join!(send, r.read_to_end(&mut back));
    assert_eq!(n.unwrap(), data.len());
    assert!(back == data, "the echo differs from what was sent");
}

#[tokio::test]
async fn latency_adds_about_the_configured_delay() {
    let echo = Echo::start().await;
    let p = TestProxy::start(
        &echo.addr,
        &[toxic(
            json!({"type": "latency", "attributes": {"latency": 100}}),
        )],
    );
    let mut s = p.connect().await;
    for _ in 0..3 {
        let rtt = ping(&mut s).await;
        assert!(
            rtt >= Duration::from_millis(100) && rtt < Duration::from_millis(180),
            "{rtt:?}"
        );
    }
}

#[tokio::test]
async fn toxics_change_on_a_live_connection_without_dropping_it() {
    let echo = Echo::start().await;
    let p = TestProxy::start(&echo.addr, &[]);
    let mut s = p.connect().await;
    assert!(ping(&mut s).await < Duration::from_millis(50));
    p.0.add_toxics(&[toxic(
        json!({"type": "latency", "name": "lag", "stream": "upstream", "attributes": {"latency": 100}}),
    )])
    .unwrap();
    let slow = ping(&mut s).await;
    assert!(slow >= Duration::from_millis(100), "{slow:?}");
    p.0.update_toxic("lag", |t| {
        let mut t = t.clone();
        t.kind = toxic(json!({"type": "latency", "attributes": {"latency": 250}})).kind;
        Ok(t)
    })
    .unwrap();
    let slower = ping(&mut s).await;
    assert!(slower >= Duration::from_millis(250), "{slower:?}");
    assert_eq!(p.0.remove_toxics(&["lag".into()]), vec!["lag".to_string()]);
    let fast = ping(&mut s).await;
    assert!(fast < Duration::from_millis(50), "{fast:?}");
}

#[tokio::test]
async fn bandwidth_caps_a_transfer() {
    let src = Source::start(200_000).await;
    let p = TestProxy::start(
        &src.addr,
        &[toxic(
            json!({"type": "bandwidth", "attributes": {"rate": 500}}),
        )],
    );
    let mut s = p.connect().await;
    let t = Instant::now();
    let (n, _, end) = read_all(&mut s).await;
    let took = t.elapsed();
    assert_eq!(n, 200_000);
    end.unwrap();
    // 200 KB at 500 KB/s: 0.4 s.
    assert!(
        took >= Duration::from_millis(350) && took < Duration::from_millis(1500),
        "{took:?}"
    );
}

#[tokio::test]
async fn limit_data_closes_after_the_limit() {
    let src = Source::start(10_000).await;
    let p = TestProxy::start(
        &src.addr,
        &[toxic(
            json!({"type": "limit_data", "attributes": {"bytes": 1000}}),
        )],
    );
    let mut s = p.connect().await;
    let (n, _, end) = read_all(&mut s).await;
    assert_eq!(n, 1000);
    end.unwrap();
}

#[tokio::test]
async fn reset_peer_resets_the_connection() {
    let echo = Echo::start().await;
    let p = TestProxy::start(
        &echo.addr,
        &[toxic(
            json!({"type": "reset_peer", "attributes": {"timeout": 150}}),
        )],
    );
    let t = Instant::now();
    let mut s = p.connect().await;
    // Data passes until the reset.
    assert!(ping(&mut s).await < Duration::from_millis(100));
    let (_, _, end) = read_all(&mut s).await;
    assert_eq!(end.unwrap_err().kind(), std::io::ErrorKind::ConnectionReset);
    assert!(
        t.elapsed() >= Duration::from_millis(140),
        "{:?}",
        t.elapsed()
    );
}

#[tokio::test]
async fn timeout_stalls_then_closes() {
    let echo = Echo::start().await;
    let p = TestProxy::start(
        &echo.addr,
        &[toxic(
            json!({"type": "timeout", "attributes": {"timeout": 300}}),
        )],
    );
    let t = Instant::now();
    let mut s = p.connect().await;
    s.write_all(b"hello").await.unwrap();
    let (n, _, end) = read_all(&mut s).await;
    assert_eq!(n, 0, "the echo must be dropped");
    end.unwrap();
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(290) && took < Duration::from_millis(1000),
        "{took:?}"
    );
}

#[tokio::test]
async fn timeout_zero_stalls_until_removed() {
    let echo = Echo::start().await;
    let p = TestProxy::start(
        &echo.addr,
        &[toxic(
            json!({"type": "timeout", "attributes": {"timeout": 0}}),
        )],
    );
    let mut s = p.connect().await;
    s.write_all(b"lost").await.unwrap();
    let mut buf = [0u8; 64];
    assert!(
        timeout(Duration::from_millis(400), s.read(&mut buf))
            .await
            .is_err(),
        "no data and no close while the toxic is there"
    );
    p.0.reset_toxics();
    assert!(ping(&mut s).await < Duration::from_millis(100));
}

#[tokio::test]
async fn slicer_splits_writes() {
    let src = Source::start(1000).await;
    let p = TestProxy::start(
        &src.addr,
        &[toxic(json!({"type": "slicer",
            "attributes": {"average_size": 100, "size_variation": 20, "delay": 20000}}))],
    );
    let mut s = p.connect().await;
    let t = Instant::now();
    let (n, reads, end) = read_all(&mut s).await;
    end.unwrap();
    assert_eq!(n, 1000);
    // 8 to 13 pieces, 20 ms apart: several reads, and at least 7 gaps.
    assert!(reads >= 5, "{reads} reads");
    assert!(
        t.elapsed() >= Duration::from_millis(140),
        "{:?}",
        t.elapsed()
    );
}

#[tokio::test]
async fn slow_close_delays_the_close() {
    let src = Source::start(10).await;
    let plain = TestProxy::start(&src.addr, &[]);
    let mut s = plain.connect().await;
    let t = Instant::now();
    assert_eq!(read_all(&mut s).await.0, 10);
    assert!(
        t.elapsed() < Duration::from_millis(100),
        "{:?}",
        t.elapsed()
    );

    let slow = TestProxy::start(
        &src.addr,
        &[toxic(
            json!({"type": "slow_close", "attributes": {"delay": 300}}),
        )],
    );
    let mut s = slow.connect().await;
    let t = Instant::now();
    let (n, _, end) = read_all(&mut s).await;
    end.unwrap();
    assert_eq!(n, 10);
    assert!(
        t.elapsed() >= Duration::from_millis(290),
        "{:?}",
        t.elapsed()
    );
}

#[tokio::test]
async fn toxicity_decides_per_connection() {
    let echo = Echo::start().await;
    let never = TestProxy::start(
        &echo.addr,
        &[toxic(
            json!({"type": "latency", "toxicity": 0.0, "attributes": {"latency": 300}}),
        )],
    );
    for _ in 0..20 {
        let mut s = never.connect().await;
        assert!(ping(&mut s).await < Duration::from_millis(100));
    }
    let half = TestProxy::start(
        &echo.addr,
        &[toxic(
            json!({"type": "latency", "toxicity": 0.5, "attributes": {"latency": 60}}),
        )],
    );
    let mut slow = 0;
    for _ in 0..40 {
        let mut s = half.connect().await;
        let first = ping(&mut s).await >= Duration::from_millis(60);
        // The same decision holds for the connection's whole life.
        assert_eq!(ping(&mut s).await >= Duration::from_millis(60), first);
        slow += first as usize;
    }
    // 40 fair coin flips: 5..35 holds with probability 1 - 2e-6.
    assert!((5..=35).contains(&slow), "{slow} of 40 slowed");
}

fn proxy_spec(target: Value, toxics: Value) -> FaultSpec {
    FaultSpec::parse(
        "steps[0]",
        &FaultStep {
            name: None,
            fault: "tcp-proxy".into(),
            weight: 1,
            target,
            params: json!({ "toxics": toxics }),
            duration: Some(Dur::secs(10)),
        },
    )
    .unwrap()
}

async fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test]
async fn the_fault_runs_a_proxy_for_its_step_and_revert_closes_everything() {
    let echo = Echo::start().await;
    let port = free_port().await;
    let listen = format!("127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    let faults = Faults::new();
    let spec = proxy_spec(
        json!({"listen": listen, "upstream": echo.addr}),
        json!([{"type": "latency", "attributes": {"latency": 80}}]),
    );
    let ctx = RunCtx {
        run_id: "proxy-run-a",
        step: 2,
    };
    // Planning changes nothing.
    let plan = faults.get("tcp-proxy").unwrap().plan(&spec, ctx).unwrap();
    assert_eq!(
        plan.detail,
        format!(
            "proxied {listen} → {} with toxics latency_downstream (latency downstream, jitter=0 latency=80)",
            echo.addr
        )
    );
    assert!(TcpStream::connect(&listen).await.is_err());

    let applied = faults.inject(&journal, &spec, ctx).unwrap();
    assert_eq!(journal.entries_for("proxy-run-a").len(), 1);
    let mut s = TcpStream::connect(&listen).await.unwrap();
    let rtt = ping(&mut s).await;
    assert!(rtt >= Duration::from_millis(80), "{rtt:?}");

    let detail = faults.revert(&journal, &applied).unwrap();
    assert!(
        detail.starts_with(&format!("stopped proxy {listen}")),
        "{detail}"
    );
    assert!(journal.entries_for("proxy-run-a").is_empty());
    // The live connection ends too (read_all fails the test if it does not within 10 s).
    let _ = read_all(&mut s).await;
    crate::helpers::eventually(Duration::from_secs(2), || {
        std::net::TcpStream::connect(&listen).is_err()
    })
    .await;
    // A second revert (e.g. journal recovery) is a no-op.
    let again = faults.get("tcp-proxy").unwrap().revert(&applied).unwrap();
    assert!(again.contains("already gone"), "{again}");
}

#[tokio::test]
async fn the_fault_on_an_existing_proxy_removes_exactly_its_toxics() {
    let echo = Echo::start().await;
    let name = unique("existing");
    let p = Registry::global()
        .create(&name, "127.0.0.1:0", &echo.addr, true)
        .unwrap();
    p.add_toxics(&[toxic(
        json!({"type": "bandwidth", "name": "theirs", "attributes": {"rate": 100000}}),
    )])
    .unwrap();
    let mut s = TcpStream::connect(p.info().listen).await.unwrap();
    assert!(ping(&mut s).await < Duration::from_millis(50));

    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    let faults = Faults::new();
    let spec = proxy_spec(
        json!({"proxy": name}),
        json!([{"type": "latency", "stream": "upstream", "attributes": {"latency": 100}}]),
    );
    let ctx = RunCtx {
        run_id: "proxy-run-b",
        step: 0,
    };
    let applied = faults.inject(&journal, &spec, ctx).unwrap();
    assert!(
        applied.detail.starts_with("added toxics latency_upstream"),
        "{}",
        applied.detail
    );
    assert!(ping(&mut s).await >= Duration::from_millis(100));
    // The same toxic again is refused before anything changes.
    assert!(faults
        .inject(
            &journal,
            &spec,
            RunCtx {
                run_id: "proxy-run-b",
                step: 1
            }
        )
        .is_err());

    let detail = faults.revert(&journal, &applied).unwrap();
    assert_eq!(
        detail,
        format!("removed toxics latency_upstream from proxy {name}")
    );
    let names: Vec<String> = p.toxics().into_iter().map(|t| t.name).collect();
    assert_eq!(names, vec!["theirs".to_string()]);
    // The live connection survived both changes.
    assert!(ping(&mut s).await < Duration::from_millis(50));
    Registry::global().remove_exact(&p);
}

#[tokio::test]
async fn after_a_crash_the_journal_revert_is_a_noop_that_says_so() {
    let port = free_port().await;
    let spec = proxy_spec(
        json!({"listen": format!("127.0.0.1:{port}"), "upstream": "127.0.0.1:9"}),
        json!([]),
    );
    let faults = Faults::new();
    let ctx = RunCtx {
        run_id: "proxy-run-c",
        step: 0,
    };
    let mut plan = faults.get("tcp-proxy").unwrap().plan(&spec, ctx).unwrap();
    // As journalled by a previous delegate process.
    plan.data["instance"] = json!("1-0000000000000000");
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    journal.record(&plan).unwrap();
    assert_eq!(journal.recover(&faults).unwrap(), 1);
    assert!(journal.entries().unwrap().is_empty());
    let detail = faults.get("tcp-proxy").unwrap().revert(&plan).unwrap();
    assert!(detail.contains("previous delegate process"), "{detail}");
}

#[tokio::test]
async fn a_taken_listen_address_fails_the_apply_and_leaves_nothing() {
    let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let listen = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    let spec = proxy_spec(
        json!({"listen": listen, "upstream": "127.0.0.1:9"}),
        json!([]),
    );
    let ctx = RunCtx {
        run_id: "proxy-run-d",
        step: 0,
    };
    let err = Faults::new().inject(&journal, &spec, ctx).unwrap_err();
    assert!(err.to_string().contains(&listen), "{err}");
    assert!(journal.entries_for("proxy-run-d").is_empty());
    assert!(Registry::global().get("faultline-proxy-run-d-0").is_err());
}

/// A real PostgreSQL query through the proxy, then again with 100 ms of latency on the replies.
#[tokio::test]
async fn postgres_through_the_proxy_with_and_without_latency() {
    let Ok(url) = std::env::var("FAULTLINE_TEST_PG") else {
        eprintln!("skipped: FAULTLINE_TEST_PG is not set (scripts/test.sh sets it)");
        return;
    };
    // The shared server listens on a unix socket (`?host=/dir&port=N`): bridge it to TCP so the
    // proxy has a TCP upstream, as a real database would be.
    let (socket, port) = pg_socket(&url);
    let bridge = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bridge_addr = bridge.local_addr().unwrap().to_string();
    let path = format!("{socket}/.s.PGSQL.{port}");
    let bridge_task = tokio::spawn(async move {
        while let Ok((mut tcp, _)) = bridge.accept().await {
            let path = path.clone();
            tokio::spawn(async move {
                if let Ok(mut unix) = tokio::net::UnixStream::connect(&path).await {
                    let _ = tokio::io::copy_bidirectional(&mut tcp, &mut unix).await;
                }
            });
        }
    });
    let p = TestProxy::start(&bridge_addr, &[]);
    let proxy_port = p.0.info().listen.rsplit_once(':').unwrap().1.to_string();
    let conn_str = format!(
        "host=127.0.0.1 port={proxy_port} user=faultline dbname=postgres connect_timeout=5"
    );
    let (client, conn) = tokio_postgres::connect(&conn_str, tokio_postgres::NoTls)
        .await
        .expect("connect to postgres through the proxy");
    let conn_task = tokio::spawn(conn);
    let fast = query(&client).await;
    assert!(fast < Duration::from_millis(100), "{fast:?}");
    p.0.add_toxics(&[toxic(
        json!({"type": "latency", "attributes": {"latency": 100}}),
    )])
    .unwrap();
    let slow = query(&client).await;
    assert!(
        slow >= Duration::from_millis(100) && slow < Duration::from_millis(400),
        "{slow:?}"
    );
    p.0.reset_toxics();
    assert!(query(&client).await < Duration::from_millis(100));
    drop(client);
    conn_task.abort();
    bridge_task.abort();
}

/// Runs one query; returns how long it took.
async fn query(client: &tokio_postgres::Client) -> Duration {
    let t = Instant::now();
    let row = client.query_one("SELECT 41 + 1", &[]).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 42);
    t.elapsed()
}

/// The socket directory and port of a `postgres://…?host=/dir&port=N` URL.
fn pg_socket(url: &str) -> (String, String) {
    let query = url.split_once('?').map(|q| q.1).unwrap_or_default();
    let get = |k: &str| {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(&format!("{k}=")).map(str::to_string))
    };
    (
        get("host").unwrap_or_else(|| "/var/run/postgresql".into()),
        get("port").unwrap_or_else(|| "5432".into()),
    )
}

#[tokio::test]
async fn busy_polling_connections_pass_bytes_and_still_take_toxics() {
    let echo = Echo::start().await;
    let reg = Registry::default();
    reg.set_busy_poll(Duration::from_micros(200));
    let p = reg.create("busy", "127.0.0.1:0", &echo.addr, true).unwrap();
    let mut s = TcpStream::connect(p.info().listen).await.unwrap();
    s.set_nodelay(true).unwrap();
    for _ in 0..200 {
        assert!(ping(&mut s).await < Duration::from_millis(50));
    }
    p.add_toxics(&[toxic(
        json!({"type": "latency", "name": "lag", "stream": "downstream", "attributes": {"latency": 80}}),
    )])
    .unwrap();
    let slow = ping(&mut s).await;
    assert!(slow >= Duration::from_millis(80), "{slow:?}");
    p.remove_toxics(&["lag".into()]);
    echoes_unchanged(&mut s, 500_000).await;
    for t in reg.clear() {
        t.await.unwrap();
    }
}
