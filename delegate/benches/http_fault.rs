//! `cargo bench -p faultline-delegate --bench http_fault`: what the http-fault proxy costs.
//!
//! 1. Added latency: the same GET over one kept-alive connection, straight to a local hyper
//!    upstream and through the proxy (rules present, none matching), `REQUESTS` each, after a
//!    warm-up; p50/p99 of both and of the difference.
//! 2. Apply and revert: the whole registry path (plan, journal fsync, bind + spawn; revert and
//!    journal removal), `CYCLES` times, p50/p99.
//!
//! Prints a table; asserts nothing (numbers go to BENCHMARKS.md).
mod common;

use bytes::Bytes;
use faultline_delegate::{
    faults::{Faults, RunCtx},
    journal::Journal,
};
use http_body_util::{BodyExt, Empty, Full};
use hyper::{Request, Response};
use hyper_util::{
    client::legacy::{connect::HttpConnector, Client},
    rt::{TokioExecutor, TokioIo},
};
use std::{
    convert::Infallible,
    time::{Duration, Instant},
};

const REQUESTS: usize = 5000;
const WARMUP: usize = 200;
const CYCLES: usize = 300;

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn us(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e6)
}

/// A keep-alive HTTP/1.1 upstream answering 200 "ok" to everything.
async fn upstream() -> std::net::SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (s, _) = l.accept().await.unwrap();
            let _ = s.set_nodelay(true);
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(|_req| async {
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    addr
}

async fn free_port() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

/// Latencies of `REQUESTS` sequential GETs to `url` over one pooled connection.
async fn latencies(url: &str) -> Vec<Duration> {
    let mut conn = HttpConnector::new();
    conn.set_nodelay(true);
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(1)
        .build(conn);
    let mut out = Vec::with_capacity(REQUESTS);
    for i in 0..WARMUP + REQUESTS {
        let req = Request::get(url).body(Empty::new()).unwrap();
        let started = Instant::now();
        let resp = client.request(req).await.expect("request");
        assert_eq!(resp.status(), 200);
        resp.into_body().collect().await.unwrap();
        if i >= WARMUP {
            out.push(started.elapsed());
        }
    }
    out.sort();
    out
}

fn spec(listen: &str, upstream: &str) -> faultline_experiment::faults::FaultSpec {
    let y = format!(
        "apiVersion: faultline.dev/v1\nkind: Experiment\nmetadata: {{name: bench}}\nhypothesis:\n  probes:\n    - {{name: up, tcp: {{address: \"127.0.0.1:1\"}}, mode: continuous}}\nsteps:\n  - fault: http-fault\n    target: {{listen: \"{listen}\", upstream: \"http://{upstream}\"}}\n    duration: 1m\n    params:\n      rules:\n        - {{match: {{path: /never}}, abort: {{status: 503}}}}\n        - {{match: {{pathRegex: \"^/admin/[0-9]+$\"}}, delay: 1s}}\n        - {{match: {{headers: {{x-chaos: \"on\"}}}}, reset: true}}\n"
    );
    faultline_experiment::parse_template(&y)
        .unwrap_or_else(|e| panic!("{e}"))
        .faults()
        .remove(0)
        .spec
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path()).unwrap();
        let faults = Faults::new();
        let up = upstream().await;

        // 1. Added latency.
        let port = free_port().await;
        let s = spec(&format!("127.0.0.1:{port}"), &up.to_string());
        let ctx = RunCtx {
            run_id: "bench-latency",
            step: 0,
        };
        let applied = faults.inject(&journal, &s, ctx).unwrap();
        let direct = latencies(&format!("http://{up}/bench")).await;
        let proxied = latencies(&format!("http://127.0.0.1:{port}/bench")).await;
        faults.revert(&journal, &applied).unwrap();

        // 2. Apply / revert.
        let (apply, revert) = common::cycles(&faults, &journal, CYCLES, |_| {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            spec(&format!("127.0.0.1:{port}"), &up.to_string())
        });

        println!("http-fault proxy ({REQUESTS} sequential GETs per path over one kept-alive connection, 3 non-matching rules; {CYCLES} apply/revert cycles)");
        println!("{:<34} {:>10} {:>10}", "measure", "p50 (µs)", "p99 (µs)");
        let row = |name: &str, v: &[Duration]| {
            println!("{:<34} {:>10} {:>10}", name, us(pct(v, 0.5)), us(pct(v, 0.99)));
        };
        row("direct to upstream", &direct);
        row("through the proxy", &proxied);
        println!(
            "{:<34} {:>10} {:>10}",
            "added by the proxy",
            us(pct(&proxied, 0.5).saturating_sub(pct(&direct, 0.5))),
            us(pct(&proxied, 0.99).saturating_sub(pct(&direct, 0.99)))
        );
        row("apply (plan + journal fsync + bind)", &apply);
        row("revert (stop + journal removal)", &revert);
    });
}
