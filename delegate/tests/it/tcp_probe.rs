//! The tcp probe against real sockets on 127.0.0.1.
use crate::helpers::closed_port;
use faultline_delegate::probes::Check;
use faultline_experiment::probes::Probe;
use tokio::net::TcpListener;

async fn check(address: &str, expect: &str, timeout: &str) -> Check {
    let probe: Probe = serde_json::from_value(serde_json::json!({
        "name": "port", "tcp": {"address": address, "expect": expect}, "timeout": timeout,
    }))
    .unwrap();
    crate::helpers::probes(&[]).check(&probe).await
}

#[tokio::test]
async fn open_passes_for_a_listening_port_and_fails_for_a_closed_one() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let c = check(&addr, "open", "2s").await;
    assert!(c.ok, "{c:?}");
    assert!(
        c.detail.starts_with(&format!("connected to {addr} in ")),
        "{}",
        c.detail
    );
    // A name resolves too.
    let port = listener.local_addr().unwrap().port();
    assert!(check(&format!("localhost:{port}"), "open", "2s").await.ok);

    let closed = format!("127.0.0.1:{}", closed_port().await);
    let c = check(&closed, "open", "2s").await;
    assert!(!c.ok);
    assert_eq!(c.detail, "connection refused");
}

#[tokio::test]
async fn closed_passes_for_a_closed_port_and_fails_for_an_open_one() {
    let closed = format!("127.0.0.1:{}", closed_port().await);
    let c = check(&closed, "closed", "2s").await;
    assert!(c.ok, "{c:?}");
    assert_eq!(c.detail, "closed: connection refused");

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let c = check(&addr, "closed", "2s").await;
    assert!(!c.ok, "{c:?}");
    assert!(
        c.detail
            .starts_with(&format!("{addr} is open (connected in ")),
        "{}",
        c.detail
    );
    assert!(c.detail.ends_with("), expected closed"), "{}", c.detail);
}

#[tokio::test]
async fn an_unresolvable_host_fails_whatever_is_expected() {
    for expect in ["open", "closed"] {
        let c = check("no-such-host.invalid:80", expect, "2s").await;
        assert!(!c.ok, "{c:?}");
        assert!(
            c.detail
                .starts_with("cannot resolve \"no-such-host.invalid\""),
            "{}",
            c.detail
        );
    }
}
