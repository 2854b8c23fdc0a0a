//! End-to-end tests against real parts, compiled as one binary (one module per area).
//! Run with `./scripts/test.sh`, which builds the binaries and starts the shared Postgres.
mod actions;
mod bad_input;
mod cli;
mod conveniences;
mod deploy;
mod gitops;
mod identity;
mod import;
mod language;
mod lifecycle;
mod notifications;
mod observability;
mod outage;
mod report;
mod resilience;
mod retention;
mod rolling;
mod safety;
mod schedules;
mod soak;
mod sso;
mod trust;
mod truth;
mod web;

use serde_json::Value;

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A GraphQL WebSocket (`graphql-transport-ws`) to the hub, trusting its CA; the caller sends
/// `connection_init`.
pub async fn graphql_ws(hub: &faultline_e2e::Hub) -> Ws {
    graphql_ws_with(hub, &[]).await
}

/// [`graphql_ws`] with extra headers on the upgrade request (a cookie, an `Origin`).
pub async fn graphql_ws_with(hub: &faultline_e2e::Hub, headers: &[(&'static str, &str)]) -> Ws {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(&hub.ca).unwrap();
    for c in rustls::pki_types::pem::PemObject::pem_slice_iter(&pem) {
        roots.add(c.unwrap()).unwrap();
    }
    let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut req = format!("{}/graphql/ws", hub.url.replace("https://", "wss://"))
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    for (k, v) in headers {
        req.headers_mut().insert(*k, v.parse().unwrap());
    }
    let connector = tokio_tungstenite::Connector::Rustls(std::sync::Arc::new(tls));
    tokio_tungstenite::connect_async_tls_with_config(req, None, false, Some(connector))
        .await
        .unwrap()
        .0
}

/// Events must be exactly seq 1..n, start with run.started and end with run.finished.
pub fn assert_complete(run: &Value) {
    let evs = run["events"].as_array().expect("events");
    let seqs: Vec<i64> = evs.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    let want: Vec<i64> = (1..=seqs.len() as i64).collect();
    assert_eq!(seqs, want, "events must be contiguous from 1: {run}");
    assert_eq!(evs.first().unwrap()["kind"], "run.started", "{run}");
    assert_eq!(evs.last().unwrap()["kind"], "run.finished", "{run}");
}

/// Single-step runs: the score is the plain pass rate of all checks, to one decimal.
pub fn expected_score(run: &Value) -> f64 {
    let t = &run["probeTally"];
    let (p, n) = (t["passed"].as_f64().unwrap(), t["total"].as_f64().unwrap());
    (p * 100.0 / n * 10.0).round() / 10.0
}
