//! The http probe against a real server on 127.0.0.1.
use crate::helpers::{closed_port, Answer, HttpServer};
use faultline_experiment::probes::Probe;
use std::time::Duration;

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
    let c = crate::helpers::probes(&[])
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
    let c = crate::helpers::probes(&[])
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
        crate::helpers::probes(&[])
            .check(&probe(&server.url, 503, 2000))
            .await
            .ok
    );
}

#[tokio::test]
async fn not_ok_for_a_closed_port() {
    let url = format!("http://127.0.0.1:{}/", closed_port().await);
    let c = crate::helpers::probes(&[])
        .check(&probe(&url, 200, 2000))
        .await;
    assert!(!c.ok);
    assert_eq!(c.detail, "connection refused");
}

#[tokio::test]
async fn not_ok_when_the_server_hangs() {
    // Accepts connections (the kernel does) but never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let c = crate::helpers::probes(&[])
        .check(&probe(&url, 200, 200))
        .await;
    assert!(!c.ok);
    assert_eq!(c.detail, "timed out after 200ms");
    assert!(c.latency_ms >= 190.0, "{c:?}");
    drop(listener);
}

/// A probe from the `http:` part of a template.
fn http_probe(http: serde_json::Value) -> Probe {
    serde_json::from_value(serde_json::json!({
        "name": "web", "http": http, "interval": "100ms", "timeout": "2s",
    }))
    .unwrap()
}

async fn check(http: serde_json::Value) -> faultline_delegate::probes::Check {
    crate::helpers::probes(&[]).check(&http_probe(http)).await
}

#[tokio::test]
async fn sends_the_method_headers_and_body() {
    let server = HttpServer::start(201).await;
    let c = check(serde_json::json!({
        "url": server.url,
        "method": "POST",
        "headers": {"X-Probe": "faultline", "Content-Type": "text/plain"},
        "body": "hello target",
        "expect": {"status": 201},
    }))
    .await;
    assert!(c.ok, "{c:?}");
    let seen = server.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].path, "/health");
    assert_eq!(seen[0].header("x-probe"), Some("faultline"));
    assert_eq!(seen[0].header("content-type"), Some("text/plain"));
    assert_eq!(seen[0].body, "hello target");
}

#[tokio::test]
async fn status_lists_ranges_and_classes() {
    let server = HttpServer::start(204).await;
    for (status, ok) in [
        (serde_json::json!([200, 204]), true),
        (serde_json::json!([200, 202]), false),
        (serde_json::json!("200-299"), true),
        (serde_json::json!("205-299"), false),
        (serde_json::json!("2xx"), true),
        (serde_json::json!("3xx"), false),
    ] {
        let c = check(serde_json::json!({"url": server.url, "expect": {"status": status}})).await;
        assert_eq!(c.ok, ok, "{status}: {c:?}");
        assert!(c.detail.starts_with("204 No Content in "), "{}", c.detail);
    }
    let c = check(serde_json::json!({"url": server.url, "expect": {"status": [200, 202]}})).await;
    assert!(
        c.detail.ends_with(", expected one of 200, 202"),
        "{}",
        c.detail
    );
    let c = check(serde_json::json!({"url": server.url, "expect": {"status": "3xx"}})).await;
    assert!(c.detail.ends_with(", expected 3xx"), "{}", c.detail);
}

#[tokio::test]
async fn body_contains_and_regex() {
    let server =
        HttpServer::answering(Answer::new(200, r#"{"status":"up","version":"1.4.2"}"#)).await;
    let url = &server.url;
    let c = check(serde_json::json!({"url": url, "expect": {"bodyContains": "\"up\""}})).await;
    assert!(c.ok, "{c:?}");
    let c = check(serde_json::json!({"url": url, "expect": {"bodyContains": "down"}})).await;
    assert!(!c.ok);
    assert!(
        c.detail.starts_with("200 OK in ")
            && c.detail.ends_with(r#"ms, body does not contain "down""#),
        "{}",
        c.detail
    );
    let c = check(
        serde_json::json!({"url": url, "expect": {"bodyRegex": r#""version":"1\.\d+\.\d+""#}}),
    )
    .await;
    assert!(c.ok, "{c:?}");
    let c = check(serde_json::json!({"url": url, "expect": {"bodyRegex": r"^2\."}})).await;
    assert!(!c.ok);
    assert!(
        c.detail.ends_with(r"body does not match /^2\./"),
        "{}",
        c.detail
    );
}

#[tokio::test]
async fn json_pointers_equal() {
    let body = r#"{"status":"up","checks":[{"name":"db","ok":true,"lag":2.0}]}"#;
    let server = HttpServer::answering(Answer::new(200, body)).await;
    let json = |j: serde_json::Value| serde_json::json!({"url": server.url, "expect": {"json": j}});
    let c = check(json(serde_json::json!([
        {"pointer": "/status", "equals": "up"},
        {"pointer": "/checks/0/ok", "equals": true},
        {"pointer": "/checks/0/lag", "equals": 2},
    ])))
    .await;
    assert!(c.ok, "{c:?}");
    let c = check(json(
        serde_json::json!([{"pointer": "/status", "equals": "down"}]),
    ))
    .await;
    assert!(!c.ok);
    assert!(
        c.detail.ends_with(r#", /status is "up", expected "down""#),
        "{}",
        c.detail
    );
    let c = check(json(
        serde_json::json!([{"pointer": "/checks/1/ok", "equals": true}]),
    ))
    .await;
    assert!(!c.ok);
    assert!(
        c.detail.ends_with(", /checks/1/ok is missing"),
        "{}",
        c.detail
    );

    let text = HttpServer::answering(Answer::new(200, "plain words")).await;
    let c = check(
        serde_json::json!({"url": text.url, "expect": {"json": [{"pointer": "/a", "equals": 1}]}}),
    )
    .await;
    assert!(!c.ok);
    assert!(c.detail.contains(", body is not JSON: "), "{}", c.detail);
}

#[tokio::test]
async fn the_body_is_only_read_when_an_expectation_needs_it() {
    // A wrong status fails before the body: the detail names the status alone.
    let server = HttpServer::answering(Answer::new(500, "boom")).await;
    let c = check(serde_json::json!({"url": server.url, "expect": {"bodyContains": "ok"}})).await;
    assert!(!c.ok);
    assert!(c.detail.ends_with("ms, expected 200"), "{}", c.detail);
}

#[tokio::test]
async fn latency_below_fails_against_a_slow_handler() {
    let slow = HttpServer::answering(Answer {
        delay: Duration::from_millis(300),
        ..Answer::new(200, "ok")
    })
    .await;
    let c = check(serde_json::json!({"url": slow.url, "expect": {"latencyBelow": "100ms"}})).await;
    assert!(!c.ok, "{c:?}");
    assert!(c.latency_ms >= 300.0, "{c:?}");
    assert!(c.detail.starts_with("200 OK in "), "{}", c.detail);
    assert!(
        c.detail.ends_with("ms, expected below 100ms"),
        "{}",
        c.detail
    );
    let c = check(serde_json::json!({"url": slow.url, "expect": {"latencyBelow": "1s"}})).await;
    assert!(c.ok, "{c:?}");
}

#[tokio::test]
async fn https_with_a_self_signed_certificate() {
    let server = HttpServer::answering_tls(Answer::new(200, "secure")).await;
    assert!(server.url.starts_with("https://127.0.0.1:"));
    let c = check(serde_json::json!({"url": server.url})).await;
    assert!(!c.ok, "{c:?}");
    assert!(c.detail.contains("certificate"), "{}", c.detail);
    assert!(server.requests().is_empty());
    let c = check(serde_json::json!({
        "url": server.url, "tlsVerify": false, "expect": {"bodyContains": "secure"},
    }))
    .await;
    assert!(c.ok, "{c:?}");
    assert!(c.detail.starts_with("200 OK in "), "{}", c.detail);
    assert_eq!(server.requests().len(), 1);
}
