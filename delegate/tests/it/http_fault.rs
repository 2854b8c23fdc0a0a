//! `http-fault` against real sockets: the proxy applied through the registry (plan → journal →
//! apply → revert) in front of the steerable test HTTP server, which records what reaches it;
//! and a run through the executor with a probe pointed at the proxy.
use crate::{
    executor::rig,
    helpers::{assert_well_formed, closed_port, kinds, HttpServer},
};
use faultline_delegate::{
    executor::RunRequest,
    faults::{Applied, Faults, RunCtx},
    journal::Journal,
};
use faultline_experiment::{
    events::{self, Verdict},
    faults::FaultSpec,
};
use futures::{stream, StreamExt};
use std::{
    io::ErrorKind,
    sync::atomic::Ordering,
    time::{Duration, Instant},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

fn template(listen: &str, upstream: &str, params: &str, probes: &str, duration: &str) -> String {
    format!(
        "apiVersion: faultline.dev/v1\nkind: Experiment\nmetadata: {{name: http-fault}}\nhypothesis:\n  recoverWithin: 2s\n  probes:\n{probes}steps:\n  - fault: http-fault\n    target: {{listen: \"{listen}\", upstream: \"{upstream}\"}}\n    duration: {duration}\n    params: {params}\n"
    )
}

fn spec(listen: &str, upstream: &str, params: &str) -> FaultSpec {
    let probes = "    - {name: up, tcp: {address: \"127.0.0.1:1\"}, mode: continuous}\n";
    let y = template(listen, upstream, params, probes, "1s");
    let e = faultline_experiment::parse_template(&y).unwrap_or_else(|e| panic!("{e}\n{y}"));
    e.faults().remove(0).spec
}

/// `http://127.0.0.1:PORT` of the test server.
fn upstream_of(t: &HttpServer) -> String {
    t.url.trim_end_matches("/health").to_string()
}

/// An applied http-fault; reverted on drop if the test did not.
struct Proxy {
    faults: Faults,
    journal: Journal,
    _dir: tempfile::TempDir,
    applied: Option<Applied>,
    /// `http://127.0.0.1:PORT`
    url: String,
    port: u16,
}

impl Proxy {
    async fn start(upstream: &str, params: &str) -> Proxy {
        let port = closed_port().await;
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path()).unwrap();
        let faults = Faults::new();
        let s = spec(&format!("127.0.0.1:{port}"), upstream, params);
        let applied = faults
            .inject(
                &journal,
                &s,
                RunCtx {
                    run_id: "run-http",
                    step: 0,
                },
            )
            .unwrap();
        Proxy {
            faults,
            journal,
            _dir: dir,
            applied: Some(applied),
            url: format!("http://127.0.0.1:{port}"),
            port,
        }
    }

    fn revert(&mut self) -> String {
        let a = self.applied.take().expect("applied");
        self.faults.revert(&self.journal, &a).unwrap()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(a) = self.applied.take() {
            let _ = self.faults.revert(&self.journal, &a);
        }
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

#[tokio::test]
async fn abort_answers_without_reaching_the_upstream() {
    let t = HttpServer::start(200).await;
    let p = Proxy::start(
        &upstream_of(&t),
        "{rules: [{match: {path: /api/}, abort: {status: 503, body: \"down for chaos\"}}]}",
    )
    .await;
    let c = client();
    let r = c.get(format!("{}/api/users", p.url)).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.text().await.unwrap(), "down for chaos");
    assert!(t.requests().is_empty(), "{:?}", t.requests());
    // A path outside the prefix goes through.
    let r = c.get(format!("{}/health", p.url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(t.requests().len(), 1);
}

#[tokio::test]
async fn delay_holds_the_request_then_forwards_it() {
    let t = HttpServer::start(200).await;
    let p = Proxy::start(&upstream_of(&t), "{rules: [{delay: 300ms}]}").await;
    let started = Instant::now();
    let r = client().get(format!("{}/x", p.url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(t.requests().len(), 1);
}

#[tokio::test]
async fn reset_closes_the_connection_with_rst() {
    let t = HttpServer::start(200).await;
    let p = Proxy::start(
        &upstream_of(&t),
        "{rules: [{match: {path: /boom}, reset: true}]}",
    )
    .await;
    let mut s = TcpStream::connect(("127.0.0.1", p.port)).await.unwrap();
    s.write_all(b"GET /boom HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 256];
    let r = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("the proxy acts within 5s");
    assert_eq!(
        r.map_err(|e| e.kind()),
        Err(ErrorKind::ConnectionReset),
        "an RST, not an answer or a clean close"
    );
    assert!(t.requests().is_empty());
    // Other requests still work.
    let r = client()
        .get(format!("{}/fine", p.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn rewrites_reach_the_upstream_and_the_client() {
    let t = HttpServer::answering(crate::helpers::Answer::new(200, "{\"state\": \"ok\"}")).await;
    let p = Proxy::start(
        &upstream_of(&t),
        r#"{rules: [
            {match: {path: /whole}, rewrite: {responseBody: "replaced"}},
            {rewrite: {
                requestHeaders: {set: {x-env: chaos}, remove: [x-secret]},
                responseHeaders: {set: {x-chaos: "yes"}, remove: [content-type]},
                responseBody: {replace: ["ok", "degraded"]}}}]}"#,
    )
    .await;
    let c = client();
    let r = c
        .get(format!("{}/state", p.url))
        .header("x-secret", "s3cret")
        .header("x-keep", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-chaos"], "yes");
    assert!(r.headers().get("content-type").is_none());
    assert_eq!(r.headers()["content-length"], "21");
    assert_eq!(r.text().await.unwrap(), "{\"state\": \"degraded\"}");
    let seen = &t.requests()[0];
    assert_eq!(seen.header("x-env"), Some("chaos"));
    assert_eq!(seen.header("x-secret"), None);
    assert_eq!(seen.header("x-keep"), Some("1"));
    assert_eq!(seen.header("accept-encoding"), Some("identity"));

    let r = c.get(format!("{}/whole", p.url)).send().await.unwrap();
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(r.text().await.unwrap(), "replaced");
    assert_eq!(t.requests().len(), 2);
}

#[tokio::test]
async fn percentage_is_decided_per_request() {
    let t = HttpServer::start(200).await;
    let mut p = Proxy::start(
        &upstream_of(&t),
        "{rules: [{abort: {status: 503}, percentage: 30}]}",
    )
    .await;
    let c = client();
    let url = format!("{}/p", p.url);
    let statuses: Vec<u16> = stream::iter(0..600)
        .map(|_| {
            let (c, url) = (c.clone(), url.clone());
            async move { c.get(url).send().await.unwrap().status().as_u16() }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let aborted = statuses.iter().filter(|s| **s == 503).count();
    let passed = statuses.iter().filter(|s| **s == 200).count();
    assert_eq!(aborted + passed, 600);
    // Binomial(600, 0.3): mean 180, sd 11.2; 120..=240 is beyond 5 sd either side.
    assert!((120..=240).contains(&aborted), "{aborted} of 600 aborted");
    assert_eq!(t.requests().len(), passed);
    let detail = p.revert();
    assert!(
        detail.contains(&format!("600 requests: {aborted} aborted")),
        "{detail}"
    );
}

#[tokio::test]
async fn rules_match_method_path_regex_and_headers_in_order() {
    let t = HttpServer::start(200).await;
    let p = Proxy::start(
        &upstream_of(&t),
        r#"{rules: [
            {match: {method: POST}, abort: {status: 405}},
            {match: {path: /api/}, abort: {status: 401}},
            {match: {pathRegex: "^/items/[0-9]+$"}, abort: {status: 404}},
            {match: {headers: {X-User: mallory}}, abort: {status: 403}},
            {match: {method: GET, path: /api/}, abort: {status: 500}}]}"#,
    )
    .await;
    let c = client();
    let get = |path: &str| c.get(format!("{}{path}", p.url));
    let status = |r: reqwest::RequestBuilder| async move { r.send().await.unwrap().status() };
    assert_eq!(status(c.post(format!("{}/x", p.url)).body("b")).await, 405);
    assert_eq!(status(get("/api/v1?q=1")).await, 401, "first match wins");
    assert_eq!(status(get("/items/42")).await, 404);
    assert_eq!(status(get("/items/42?x=1")).await, 404, "query is not path");
    assert_eq!(status(get("/items/abc")).await, 200);
    assert_eq!(status(get("/x").header("x-user", "mallory")).await, 403);
    assert_eq!(status(get("/x").header("x-user", "alice")).await, 200);
    assert_eq!(status(get("/ap")).await, 200);
    let paths: Vec<String> = t.requests().into_iter().map(|s| s.path).collect();
    assert_eq!(paths, ["/items/abc", "/x", "/ap"]);
}

#[tokio::test]
async fn unmatched_requests_pass_unchanged() {
    let t = HttpServer::answering(crate::helpers::Answer::new(201, "created")).await;
    let p = Proxy::start(
        &upstream_of(&t),
        "{rules: [{match: {path: /never}, abort: {status: 500}}]}",
    )
    .await;
    let c = client();
    let direct = c
        .post(format!("{}/things?a=1", upstream_of(&t)))
        .header("x-custom", "v")
        .body("payload")
        .send()
        .await
        .unwrap();
    // Two requests over one kept-alive client connection.
    for _ in 0..2 {
        let proxied = c
            .post(format!("{}/things?a=1", p.url))
            .header("x-custom", "v")
            .body("payload")
            .send()
            .await
            .unwrap();
        assert_eq!(proxied.status(), direct.status());
        for h in ["content-type", "content-length"] {
            assert_eq!(proxied.headers().get(h), direct.headers().get(h), "{h}");
        }
        assert_eq!(proxied.text().await.unwrap(), "created");
    }
    let seen = t.requests();
    assert_eq!(seen.len(), 3);
    let (d, via) = (&seen[0], &seen[1]);
    assert_eq!(
        (via.method.as_str(), via.path.as_str()),
        ("POST", "/things?a=1")
    );
    assert_eq!(via.body, d.body);
    assert_eq!(via.header("x-custom"), Some("v"));
    let up_host = upstream_of(&t).trim_start_matches("http://").to_string();
    assert_eq!(via.header("host"), Some(up_host.as_str()));
    assert_eq!(
        via.header("x-forwarded-host"),
        Some(format!("127.0.0.1:{}", p.port).as_str())
    );
    assert_eq!(via.header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(via.header("x-forwarded-proto"), Some("http"));
}

#[tokio::test]
async fn upstream_failures_become_502_and_504() {
    let down = format!("http://127.0.0.1:{}", closed_port().await);
    let p = Proxy::start(&down, "{}").await;
    let r = client().get(format!("{}/", p.url)).send().await.unwrap();
    assert_eq!(r.status(), 502);
    let body = r.text().await.unwrap();
    assert!(body.contains("cannot connect to upstream"), "{body}");

    let slow = HttpServer::start(200).await;
    slow.delay_ms.store(2000, Ordering::SeqCst);
    let p = Proxy::start(&upstream_of(&slow), "{responseTimeout: 200ms}").await;
    let started = Instant::now();
    let r = client().get(format!("{}/", p.url)).send().await.unwrap();
    assert_eq!(r.status(), 504);
    assert!(started.elapsed() < Duration::from_millis(1500));
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("did not answer within 200ms"));
}

#[tokio::test]
async fn plan_changes_nothing_and_revert_stops_listener_and_connections() {
    let t = HttpServer::start(200).await;
    let faults = Faults::new();
    let port = closed_port().await;
    let s = spec(
        &format!("127.0.0.1:{port}"),
        &upstream_of(&t),
        "{rules: [{match: {method: GET, path: /a}, percentage: 25, abort: {status: 503}}]}",
    );
    let plan = faults
        .get("http-fault")
        .unwrap()
        .plan(
            &s,
            RunCtx {
                run_id: "run-plan",
                step: 2,
            },
        )
        .unwrap();
    assert_eq!(
        plan.detail,
        format!(
            "HTTP proxy on 127.0.0.1:{port} in front of {}, rules [0] GET /a* 25% → abort 503",
            upstream_of(&t)
        )
    );
    let refused = TcpStream::connect(("127.0.0.1", port)).await.unwrap_err();
    assert_eq!(
        refused.kind(),
        ErrorKind::ConnectionRefused,
        "plan bound nothing"
    );

    let mut p = Proxy::start(&upstream_of(&t), "{}").await;
    // A client connection kept open across the revert.
    let mut s = TcpStream::connect(("127.0.0.1", p.port)).await.unwrap();
    s.write_all(b"GET /one HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    assert_eq!(p.journal.entries().unwrap().len(), 1);
    let detail = p.revert();
    assert!(detail.starts_with("stopped the HTTP proxy"), "{detail}");
    assert!(detail.contains("closing 1 open connection"), "{detail}");
    assert!(p.journal.entries().unwrap().is_empty());
    let e = TcpStream::connect(("127.0.0.1", p.port)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
    // The kept-alive connection ends too.
    let end = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("closed within 5s");
    assert!(matches!(end, Ok(0) | Err(_)), "{end:?}");
    // Reverting again is harmless.
    let a = plan;
    let again = faults.revert(&p.journal, &a).unwrap();
    assert!(again.contains("already stopped"), "{again}");
}

#[tokio::test]
async fn a_busy_port_fails_the_apply_and_leaves_no_journal_entry() {
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = taken.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    let faults = Faults::new();
    let s = spec(&addr.to_string(), "http://127.0.0.1:9", "{}");
    let e = faults
        .inject(
            &journal,
            &s,
            RunCtx {
                run_id: "run-busy",
                step: 0,
            },
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains(&format!("cannot listen on {addr}")), "{e}");
    assert!(journal.entries().unwrap().is_empty());
}

#[tokio::test]
async fn recovery_after_a_crash_is_a_no_op_that_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    let faults = Faults::new();
    let s = spec("127.0.0.1:18999", "http://127.0.0.1:9", "{}");
    let mut a = faults
        .get("http-fault")
        .unwrap()
        .plan(
            &s,
            RunCtx {
                run_id: "run-crashed",
                step: 1,
            },
        )
        .unwrap();
    // As journalled by an earlier delegate process that then died.
    a.data["instance"] = "4242-00000000000000aa".into();
    journal.record(&a).unwrap();
    let detail = faults.revert(&journal, &a).unwrap();
    assert_eq!(
        detail,
        "nothing to stop: the HTTP proxy on 127.0.0.1:18999 ran inside delegate process 4242 and ended with it"
    );
    journal.record(&a).unwrap();
    assert_eq!(journal.recover(&faults).unwrap(), 1);
    assert!(journal.entries().unwrap().is_empty());
}

/// A run whose onChaos probe goes through the proxy: it fails while the proxy aborts, and
/// passes when the proxy only passes requests on.
#[tokio::test]
async fn a_run_with_an_http_fault_step_judges_the_probe_through_the_proxy() {
    let t = HttpServer::start(200).await;
    for (run_id, params, verdict) in [
        (
            "run-http-abort",
            "{rules: [{abort: {status: 503}}]}",
            Verdict::Failed,
        ),
        ("run-http-pass", "{}", Verdict::Passed),
    ] {
        let port = closed_port().await;
        let probes = format!(
            "    - {{name: via-proxy, http: {{url: \"http://127.0.0.1:{port}/health\"}}, mode: onChaos, interval: 100ms, timeout: 500ms}}\n"
        );
        let y = template(
            &format!("127.0.0.1:{port}"),
            &upstream_of(&t),
            params,
            &probes,
            "600ms",
        );
        let spec = faultline_experiment::parse_template(&y).unwrap_or_else(|e| panic!("{e}\n{y}"));
        let weights = spec.weights();
        let r = rig();
        r.exec
            .start(RunRequest {
                project: String::new(),
                run_id: run_id.into(),
                template_name: "http-fault".into(),
                template_version: 1,
                spec,
                dry_run: false,
            })
            .unwrap();
        tokio::time::timeout(Duration::from_secs(20), r.exec.wait(run_id))
            .await
            .expect("the run ends by itself");
        let ev = r.outbox.history(run_id).unwrap();
        let fin = assert_well_formed(&ev, &weights);
        assert_eq!(fin.verdict, verdict, "{run_id}: {fin:?} {:?}", kinds(&ev));
        let k = kinds(&ev);
        assert!(k.contains(&events::FAULT_APPLIED) && k.contains(&events::FAULT_REVERTED));
        assert!(r.journal.entries().unwrap().is_empty());
        // The proxy is gone with the step.
        let e = TcpStream::connect(("127.0.0.1", port)).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
    }
}

#[tokio::test]
async fn bodies_stream_and_limits_are_enforced() {
    let big = "a".repeat(9 * 1024 * 1024);
    let t = HttpServer::answering(crate::helpers::Answer::new(200, &big)).await;
    let p = Proxy::start(
        &upstream_of(&t),
        "{rules: [{match: {path: /edit}, rewrite: {responseBody: {replace: [a, b]}}}]}",
    )
    .await;
    let c = client();
    // Larger than the rewrite limit, but not rewritten: streamed through whole, both ways.
    let upload = "u".repeat(2 * 1024 * 1024);
    let r = c
        .post(format!("{}/plain", p.url))
        .body(upload.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().len(), big.len());
    assert_eq!(t.requests()[0].body.len(), upload.len());
    // A body to rewrite beyond 8 MiB: a clear 502.
    let r = c.get(format!("{}/edit", p.url)).send().await.unwrap();
    assert_eq!(r.status(), 502);
    let body = r.text().await.unwrap();
    assert!(body.contains("larger than the rewrite limit"), "{body}");
    // A request head well beyond 64 KiB is refused before anything is forwarded (hyper checks
    // its read buffer against the limit between reads, so the cut is not byte-exact).
    let mut s = TcpStream::connect(("127.0.0.1", p.port)).await.unwrap();
    let head = format!(
        "GET /h HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n",
        "h".repeat(200 * 1024)
    );
    let _ = s.write_all(head.as_bytes()).await;
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut got)).await;
    assert!(
        got.starts_with(b"HTTP/1.1 431"),
        "{:?}",
        String::from_utf8_lossy(&got[..got.len().min(80)])
    );
    assert_eq!(t.requests().len(), 2);
}

/// The proxy's traffic counts in `faultline_delegate_proxy_bytes_total{proxy="http"}`: both the
/// request a client sends and the answer it gets (other tests in this process may add more).
#[tokio::test]
async fn client_bytes_count_in_the_proxy_bytes_metric() {
    let bytes = || {
        faultline_delegate::metrics::get()
            .proxy_bytes
            .get_or_create(&faultline_delegate::metrics::ProxyLabel {
                proxy: "http".into(),
            })
            .get()
    };
    let t = HttpServer::start(200).await;
    let p = Proxy::start(
        &upstream_of(&t),
        "{rules: [{match: {path: /big}, abort: {status: 503, body: \"down for chaos\"}}]}",
    )
    .await;
    let before = bytes();
    let body = "x".repeat(10_000);
    let r = client()
        .post(format!("{}/api", p.url))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let answered = r.bytes().await.unwrap().len();
    let counted = bytes() - before;
    assert!(
        counted >= (body.len() + answered) as u64,
        "{counted} bytes counted for a {}-byte request body and a {answered}-byte answer",
        body.len()
    );
}
