//! Benchmark of the TCP fault proxy against a direct connection, `socat` and `haproxy`, all on
//! loopback in one run: throughput with 1 and 64 connections (client → upstream, counted at the
//! upstream) and 64-byte ping-pong latency (p50/p99, and what each proxy adds to the direct
//! p50). Then the accuracy of a 100 ms latency toxic, and the `tcp-proxy` fault's apply and
//! revert times. A missing socat or haproxy is skipped.
//!
//! `cargo bench -p faultline-delegate --bench proxy` (env `BENCH_SECS` = seconds per throughput
//! case, default 3, in interleaved rounds).
mod common;

use faultline_delegate::{faults::Faults, journal::Journal, proxy::Registry};
use faultline_experiment::{
    faults::{parse_toxic, FaultSpec},
    template::FaultStep,
    Dur,
};
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

/// Ping-pongs per target, in `ROUNDS` interleaved rounds.
const PINGS: usize = 10_000;
const ROUNDS: usize = 20;
/// Throughput rounds per target (each `BENCH_SECS / TPUT_ROUNDS` long).
const TPUT_ROUNDS: usize = 3;

/// A runtime with `workers` threads (env `var`, default 1). The client, the upstream and the
/// Faultline proxy each get their own runtime, as they would be separate processes: a direct
/// round trip then crosses threads as a real client → server one does, and socat and haproxy
/// get one process each.
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

/// The machine's busy and total CPU time so far (jiffies, all CPUs), from /proc/stat.
fn cpu_times() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// GB/s through `addr` with `conns` connections writing as fast as they can, and the share of
/// the machine's CPU time that was busy meanwhile (1.0 = every core).
async fn throughput(addr: &str, conns: usize, secs: f64, received: &AtomicU64) -> (f64, f64) {
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
    let (t0, b0, c0) = (
        Instant::now(),
        received.load(Ordering::Relaxed),
        cpu_times(),
    );
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    let (t1, b1, c1) = (
        Instant::now(),
        received.load(Ordering::Relaxed),
        cpu_times(),
    );
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    let busy = (c1.0 - c0.0) as f64 / (c1.1 - c0.1).max(1) as f64;
    ((b1 - b0) as f64 / (t1 - t0).as_secs_f64() / 1e9, busy)
}

/// Round trips of a 64-byte ping-pong, microseconds, on one connection per target, measured
/// in interleaved rounds (every target gets a round in turn) so that drift in the machine's
/// state is shared by all targets rather than landing on one of them.
async fn latencies(addrs: &[String], rounds: usize, per_round: usize) -> Vec<Vec<f64>> {
    let mut conns = Vec::new();
    for addr in addrs {
        let mut s = connect(addr).await;
        s.write_all(b"E").await.unwrap();
        conns.push(s);
    }
    let (req, mut resp) = ([1u8; 64], [0u8; 64]);
    let mut rtts = vec![Vec::with_capacity(rounds * per_round); addrs.len()];
    for round in 0..rounds + 1 {
        for (s, out) in conns.iter_mut().zip(rtts.iter_mut()) {
            for _ in 0..per_round {
                let t = Instant::now();
                s.write_all(&req).await.unwrap();
                s.read_exact(&mut resp).await.unwrap();
                // The first round warms up every path and is not counted.
                if round > 0 {
                    out.push(t.elapsed().as_secs_f64() * 1e6);
                }
            }
        }
    }
    rtts
}

/// p50 and p99 of samples.
fn quantiles(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    let q = |p: f64| v[((v.len() as f64 * p) as usize).min(v.len() - 1)];
    (q(0.50), q(0.99))
}

const CYCLES: usize = 200;

async fn apply_revert(upstream: &str) -> (Vec<Duration>, Vec<Duration>) {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    common::cycles(&Faults::new(), &journal, CYCLES, |_| {
        FaultSpec::parse(
            "steps[0]",
            &FaultStep {
                name: None,
                fault: "tcp-proxy".into(),
                weight: 1,
                target: json!({"listen": format!("127.0.0.1:{}", free_port()), "upstream": upstream}),
                params: json!({"toxics": [{"type": "latency", "attributes": {"latency": 10}}]}),
                duration: Some(Dur::secs(10)),
            },
        )
        .unwrap()
    })
}

fn ms(sorted: &[Duration], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)].as_secs_f64() * 1000.0
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
    /// Share of the machine's CPU busy during the 1-connection case.
    busy_1: f64,
    p50: f64,
    p99: f64,
}

fn main() {
    let secs: f64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    // Client, upstream and the Faultline proxy on one runtime each.
    let load = runtime("BENCH_LOAD_WORKERS");
    let upstream_rt = runtime("BENCH_UPSTREAM_WORKERS");
    let proxy_rt = runtime("BENCH_PROXY_WORKERS");
    let received = Arc::new(AtomicU64::new(0));
    let up_addr = upstream_rt.block_on(async {
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
    // The same, with `--proxy-busy-poll` (env `BENCH_BUSY_POLL_US`, default 100).
    let busy_us: u64 = std::env::var("BENCH_BUSY_POLL_US")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let busy = proxy_rt.block_on(async {
        reg.set_busy_poll(Duration::from_micros(busy_us));
        let p = reg.create("busy", "127.0.0.1:0", &up_addr, true).unwrap();
        reg.set_busy_poll(Duration::ZERO);
        p.info().listen
    });

    let mut targets: Vec<(&'static str, String, Option<External>)> = vec![
        ("direct", up_addr.clone(), None),
        ("faultline (no toxic)", plain, None),
        ("faultline (busy-poll)", busy, None),
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

    let addrs: Vec<String> = targets.iter().map(|t| t.1.clone()).collect();
    let rtts = load.block_on(latencies(&addrs, ROUNDS, PINGS / ROUNDS));
    // Throughput in interleaved rounds too, summed per target.
    let mut tput = vec![(0.0, 0.0, 0.0); targets.len()];
    for _ in 0..TPUT_ROUNDS {
        for (i, (_, addr, _)) in targets.iter().enumerate() {
            load.block_on(async {
                let (g1, b1) = throughput(addr, 1, secs / TPUT_ROUNDS as f64, &received).await;
                let (g64, _) = throughput(addr, 64, secs / TPUT_ROUNDS as f64, &received).await;
                tput[i].0 += g1 / TPUT_ROUNDS as f64;
                tput[i].1 += b1 / TPUT_ROUNDS as f64;
                tput[i].2 += g64 / TPUT_ROUNDS as f64;
            });
        }
    }
    let mut rows = Vec::new();
    for (((name, _, _), rtt), (gbps_1, busy_1, gbps_64)) in targets.iter().zip(rtts).zip(tput) {
        let (p50, p99) = quantiles(rtt);
        rows.push(Row {
            name,
            gbps_1,
            busy_1,
            gbps_64,
            p50,
            p99,
        });
    }

    let direct = rows[0].p50;
    println!();
    println!(
        "{:<22} {:>10} {:>10} {:>10} {:>10} {:>10} {:>12}",
        "target", "GB/s x1", "CPU x1", "GB/s x64", "p50 µs", "p99 µs", "added p50 µs"
    );
    for r in &rows {
        println!(
            "{:<22} {:>10.2} {:>9.0}% {:>10.2} {:>10.1} {:>10.1} {:>12.1}",
            r.name,
            r.gbps_1,
            100.0 * r.busy_1,
            r.gbps_64,
            r.p50,
            r.p99,
            r.p50 - direct
        );
    }
    let (d, f, b) = (&rows[0], &rows[1], &rows[2]);
    println!();
    println!(
        "faultline vs direct: {:.0} % (x1), {:.0} % (x64) of throughput; goal >= 90 %",
        100.0 * f.gbps_1 / d.gbps_1,
        100.0 * f.gbps_64 / d.gbps_64
    );
    println!(
        "faultline added p50: {:.1} µs, with a {busy_us} µs busy-poll {:.1} µs; goal <= 50 µs",
        f.p50 - d.p50,
        b.p50 - d.p50
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
    let (p50, p99) = quantiles(load.block_on(latencies(&[lag], 1, 30)).remove(0));
    println!();
    println!(
        "latency toxic 100 ms: measured p50 {:.2} ms, p99 {:.2} ms (30 pings)",
        p50 / 1000.0,
        p99 / 1000.0
    );
    // Apply and revert of the `tcp-proxy` fault through the registry: plan, fsynced journal
    // entry, bind and spawn; then stop and journal removal.
    let (apply, revert) = proxy_rt.block_on(apply_revert(&up_addr));
    println!();
    println!(
        "tcp-proxy fault ({} cycles, 1 latency toxic): apply p50 {:.2} ms, p99 {:.2} ms; \
         revert p50 {:.2} ms, p99 {:.2} ms",
        apply.len(),
        ms(&apply, 0.5),
        ms(&apply, 0.99),
        ms(&revert, 0.5),
        ms(&revert, 0.99)
    );
    drop(targets);
    proxy_rt.block_on(async {
        for t in reg.clear() {
            let _ = t.await;
        }
    });
}
