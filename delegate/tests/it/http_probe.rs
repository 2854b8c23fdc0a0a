//! The http probe against a real server on 127.0.0.1.
use crate::helpers::{closed_port, HttpServer};
use faultline_delegate::probes::Probes;
use faultline_spec::probes::Probe;

fn probe(url: &str, expect: u16, timeout_ms: u64) -> Probe {
    serde_json::from_value(serde_json::json!({
        "name": "web-ok",
        "http": {"url": url, "expect": {"status": expect}},
        "interval": "100ms",
        "timeout": format!("{timeout_ms}ms"),
    }))
    .unwrap()
}

#[tokio::test]
async fn ok_for_the_expected_status() {
    let server = HttpServer::start(200).await;
    let c = Probes::new()
        .unwrap()
        .check(&probe(&server.url, 200, 2000))
        .await;
    assert!(c.ok, "{c:?}");
    assert!(c.detail.starts_with("200 OK in "), "{}", c.detail);
    assert!(c.detail.ends_with("ms"), "{}", c.detail);
    assert!(c.latency_ms >= 0.0);
}

#[tokio::test]
async fn not_ok_for_another_status() {
    let server = HttpServer::start(503).await;
    let c = Probes::new()
        .unwrap()
        .check(&probe(&server.url, 200, 2000))
        .await;
    assert!(!c.ok);
    assert!(
        c.detail.starts_with("503 Service Unavailable in "),
        "{}",
        c.detail
    );
    assert!(c.detail.ends_with("expected 200"), "{}", c.detail);
    // And a probe that expects 503 is happy with it.
    assert!(
        Probes::new()
            .unwrap()
            .check(&probe(&server.url, 503, 2000))
            .await
            .ok
    );
}

#[tokio::test]
async fn not_ok_for_a_closed_port() {
    let url = format!("http://127.0.0.1:{}/", closed_port().await);
    let c = Probes::new().unwrap().check(&probe(&url, 200, 2000)).await;
    assert!(!c.ok);
    assert_eq!(c.detail, "connection refused");
}

#[tokio::test]
async fn not_ok_when_the_server_hangs() {
    // Accepts connections (the kernel does) but never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let c = Probes::new().unwrap().check(&probe(&url, 200, 200)).await;
    assert!(!c.ok);
    assert_eq!(c.detail, "timed out after 200ms");
    assert!(c.latency_ms >= 190.0, "{c:?}");
    drop(listener);
}
