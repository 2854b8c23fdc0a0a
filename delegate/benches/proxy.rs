//! Benchmark of the TCP fault proxy against a direct connection, `socat` and `haproxy`, all on
//! loopback in one run: throughput with 1 and 64 connections (client → upstream, counted at the
//! upstream) and 64-byte ping-pong latency (p50/p99, and what each proxy adds to the direct
//! p50). Then the accuracy of a 100 ms latency toxic. A missing socat or haproxy is skipped.
//!
//! `cargo bench -p faultline-delegate --bench proxy` (env `BENCH_SECS` = seconds per throughput
//! case, default 2).
use faultline_delegate::proxy::Registry;
use faultline_spec::faults::parse_toxic;
use serde_json::json;
use std::{
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    runtime::Runtime,
};

const PINGS: usize = 3000;

/// A runtime with `workers` threads (env `var`, default 1: the machine's two cores are then
/// one for the load and upstream, one for the proxy, as socat and haproxy get one each).
fn runtime(var: &str) -> Runtime {
    let workers = std::env::var(var)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap()
}

/// The upstream: the first byte a client sends picks the mode — `S` counts and discards
/// everything (throughput), `E` echoes everything (latency).
async fn upstream(l: TcpListener, received: Arc<AtomicU64>) {
    while let Ok((mut s, _)) = l.accept().await {
        let _ = s.set_nodelay(true);
        let received = received.clone();
        tokio::spawn(async move {
            let mut mode = [0u8; 1];
            if s.read_exact(&mut mode).await.is_err() {
                return;
            }
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                let n = match s.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                if mode[0] == b'S' {
                    received.fetch_add(n as u64, Ordering::Relaxed);
                } else if s.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        });
    }
}

async fn connect(addr: &str) -> TcpStream {
    for _ in 0..200 {
        if let Ok(s) = TcpStream::connect(addr).await {
            s.set_nodelay(true).unwrap();
            return s;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("cannot connect to {addr}");
}

/// GB/s through `addr` with `conns` connections writing as fast as they can.
async fn throughput(addr: &str, conns: usize, secs: f64, received: &AtomicU64) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let mut s = connect(addr).await;
        s.write_all(b"S").await.unwrap();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let chunk = vec![0x5au8; 256 * 1024];
            while !stop.load(Ordering::Relaxed) {
                if s.write_all(&chunk).await.is_err() {
                    break;
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (t0, b0) = (Instant::now(), received.load(Ordering::Relaxed));
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    let (t1, b1) = (Instant::now(), received.load(Ordering::Relaxed));
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    (b1 - b0) as f64 / (t1 - t0).as_secs_f64() / 1e9
}

/// p50 and p99 round trip of a 64-byte ping-pong, microseconds.
async fn latency(addr: &str, pings: usize) -> (f64, f64) {
    let mut s = connect(addr).await;
    s.write_all(b"E").await.unwrap();
    let (req, mut resp) = ([1u8; 64], [0u8; 64]);
    let mut rtts = Vec::with_capacity(pings);
    for i in 0..pings + pings / 10 {
        let t = Instant::now();
        s.write_all(&req).await.unwrap();
        s.read_exact(&mut resp).await.unwrap();
        if i >= pings / 10 {
            rtts.push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    rtts.sort_by(f64::total_cmp);
    let q = |p: f64| rtts[((rtts.len() as f64 * p) as usize).min(rtts.len() - 1)];
    (q(0.50), q(0.99))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn have(bin: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {bin}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// An external proxy process, killed when dropped (and its config directory removed).
struct External {
    child: Child,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for External {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn socat(port: u16, up: &str) -> External {
    let child = Command::new("socat")
        .arg(format!("TCP-LISTEN:{port},fork,reuseaddr,bind=127.0.0.1"))
        .arg(format!("TCP:{up}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start socat");
    External { child, _dir: None }
}

fn haproxy(port: u16, up: &str) -> External {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("haproxy.cfg");
    std::fs::write(
        &cfg,
        format!(
            "global\n  maxconn 4096\n\ndefaults\n  mode tcp\n  timeout connect 5s\n  \
             timeout client 60s\n  timeout server 60s\n\nlisten bench\n  \
             bind 127.0.0.1:{port}\n  server up {up}\n"
        ),
    )
    .unwrap();
    let child = Command::new("haproxy")
        .arg("-db")
        .arg("-f")
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start haproxy");
    External {
        child,
        _dir: Some(dir),
    }
}

struct Row {
    name: &'static str,
    gbps_1: f64,
    gbps_64: f64,
    p50: f64,
    p99: f64,
}

fn main() {
    let secs: f64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    // Load and upstream on one runtime, the Faultline proxy on its own (as in the delegate).
    let load = runtime("BENCH_LOAD_WORKERS");
    let proxy_rt = runtime("BENCH_PROXY_WORKERS");
    let received = Arc::new(AtomicU64::new(0));
    let up_addr = load.block_on(async {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        tokio::spawn(upstream(l, received.clone()));
        addr
    });
    let reg = Registry::default();
    let plain = proxy_rt.block_on(async {
        reg.create("bench", "127.0.0.1:0", &up_addr, true)
            .unwrap()
            .info()
            .listen
    });

    let mut targets: Vec<(&'static str, String, Option<External>)> = vec![
        ("direct", up_addr.clone(), None),
        ("faultline (no toxic)", plain, None),
    ];
    if have("socat") {
        let port = free_port();
        targets.push((
            "socat",
            format!("127.0.0.1:{port}"),
            Some(socat(port, &up_addr)),
        ));
    } else {
        eprintln!("socat not installed: skipped");
    }
    if have("haproxy") {
        let port = free_port();
        targets.push((
            "haproxy",
            format!("127.0.0.1:{port}"),
            Some(haproxy(port, &up_addr)),
        ));
    } else {
        eprintln!("haproxy not installed: skipped");
    }

    let mut rows = Vec::new();
    for (name, addr, _proc) in &targets {
        let row = load.block_on(async {
            let (p50, p99) = latency(addr, PINGS).await;
            Row {
                name,
                gbps_1: throughput(addr, 1, secs, &received).await,
                gbps_64: throughput(addr, 64, secs, &received).await,
                p50,
                p99,
            }
        });
        eprintln!("measured {name}");
        rows.push(row);
    }

    let direct = rows[0].p50;
    println!();
    println!(
        "{:<22} {:>10} {:>10} {:>10} {:>10} {:>12}",
        "target", "GB/s x1", "GB/s x64", "p50 µs", "p99 µs", "added p50 µs"
    );
    for r in &rows {
        println!(
            "{:<22} {:>10.2} {:>10.2} {:>10.1} {:>10.1} {:>12.1}",
            r.name,
            r.gbps_1,
            r.gbps_64,
            r.p50,
            r.p99,
            r.p50 - direct
        );
    }
    let (d, f) = (&rows[0], &rows[1]);
    println!();
    println!(
        "faultline vs direct: {:.0} % (x1), {:.0} % (x64) of throughput; goal >= 90 %",
        100.0 * f.gbps_1 / d.gbps_1,
        100.0 * f.gbps_64 / d.gbps_64
    );
    println!(
        "faultline added p50: {:.1} µs; goal <= 50 µs",
        f.p50 - d.p50
    );
    if let Some(s) = rows.iter().find(|r| r.name == "socat") {
        println!(
            "faultline vs socat: {:.1}x (x1), {:.1}x (x64) throughput, {:.1} vs {:.1} µs p50",
            f.gbps_1 / s.gbps_1,
            f.gbps_64 / s.gbps_64,
            f.p50,
            s.p50
        );
    }

    // Accuracy of a 100 ms latency toxic (downstream: on each reply).
    let lag = proxy_rt.block_on(async {
        let p = reg
            .create("lagged", "127.0.0.1:0", &up_addr, false)
            .unwrap();
        p.add_toxics(&[parse_toxic(
            &json!({"type": "latency", "attributes": {"latency": 100}}),
            "toxic",
        )
        .unwrap()])
            .unwrap();
        p.start().unwrap();
        p.info().listen
    });
    let (p50, p99) = load.block_on(latency(&lag, 30));
    println!();
    println!(
        "latency toxic 100 ms: measured p50 {:.2} ms, p99 {:.2} ms (30 pings)",
        p50 / 1000.0,
        p99 / 1000.0
    );
    drop(targets);
    proxy_rt.block_on(async {
        for t in reg.clear() {
            let _ = t.await;
        }
    });
}
