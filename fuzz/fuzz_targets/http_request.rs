//! The http-fault proxy's request side (`faultline_delegate::faults::http_proxy`): any bytes a
//! client sends get an HTTP answer or a closed connection, within a bound, never a panic; and
//! what reaches the upstream is a clean request: the upstream's `Host`, no hop-by-hop headers,
//! `X-Forwarded-*` set.
//!
//! One proxy (rules that abort, delay, reset and rewrite) in front of one echoing upstream, both
//! on loopback, on a current-thread runtime that runs only while an input is sent, so each
//! input is one client connection played to its end.
#![no_main]
use bytes::Bytes;
use faultline_delegate::faults::http_proxy;
use faultline_experiment::faults::HttpFaultParams;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{body::Incoming, header, Request, Response};
use hyper_util::rt::TokioIo;
use libfuzzer_sys::fuzz_target;
use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{LazyLock, OnceLock},
    time::Duration,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    runtime::Runtime,
};

/// A request the proxy cannot settle within this is a hang (its own limits are 1 s and 2 s).
const BOUND: Duration = Duration::from_secs(10);

const RULES: &str = r#"{
  "connectTimeout": "1s",
  "responseTimeout": "2s",
  "rules": [
    {"match": {"path": "/abort"}, "abort": {"status": 503, "body": "aborted"}},
    {"match": {"method": "DELETE", "headers": {"x-fault": "teapot"}}, "abort": {"status": 418}},
    {"match": {"pathRegex": "^/slow/[0-9]+$"}, "delay": "1ms"},
    {"match": {"path": "/reset"}, "reset": true},
    {"match": {"headers": {"x-rewrite": "1"}}, "rewrite": {
      "requestHeaders": {"set": {"x-rewritten": "yes"}, "remove": ["cookie"]},
      "responseHeaders": {"set": {"x-faultline": "rewritten"}, "remove": ["x-echo"]},
      "responseBody": {"replace": ["GET", "got"]}}},
    {"match": {"path": "/text"}, "rewrite": {"responseBody": "replaced"}}
  ]
}"#;

struct World {
    rt: Runtime,
    proxy: http_proxy::Running,
}

/// Where the echoing upstream listens: what the proxy must send as `Host`.
static UPSTREAM: OnceLock<SocketAddr> = OnceLock::new();

static WORLD: LazyLock<World> = LazyLock::new(|| {
    // libFuzzer's `main` is not Rust's, which ignores SIGPIPE as the delegate's does: a write
    // to a connection the client closed must be an error here too, not the end of the process.
    // SAFETY: setting a signal's disposition to SIG_IGN, before any thread writes to a socket.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let upstream = *UPSTREAM.get_or_init(|| listener.local_addr().unwrap());
    rt.spawn(echo(listener));
    let params: HttpFaultParams = serde_json::from_str(RULES).unwrap();
    let proxy = {
        let _in_rt = rt.enter();
        http_proxy::start(
            "127.0.0.1:0".parse().unwrap(),
            upstream.to_string(),
            &params,
        )
        .unwrap()
    };
    World { rt, proxy }
});

fuzz_target!(|data: &[u8]| {
    let w = &*WORLD;
    let answer = w.rt.block_on(async {
        let mut s = TcpStream::connect(w.proxy.addr).await.unwrap();
        // The proxy may answer and close before reading everything: not a failure.
        let _ = s.write_all(data).await;
        let _ = s.shutdown().await;
        let mut out = Vec::new();
        match tokio::time::timeout(BOUND, s.read_to_end(&mut out)).await {
            Ok(_) => out,
            Err(_) => panic!("the proxy neither answered nor closed within {BOUND:?}"),
        }
    });
    if !answer.is_empty() {
        // hyper answers in the request's version: 1.0 or 1.1.
        assert!(
            answer.starts_with(b"HTTP/1.1 ") || answer.starts_with(b"HTTP/1.0 "),
            "not an HTTP answer: {:?}",
            String::from_utf8_lossy(&answer[..answer.len().min(200)])
        );
    }
    assert!(
        !contains(&answer, b"HTTP/1.1 599") && !contains(&answer, b"HTTP/1.0 599"),
        "the upstream got a request it should not have: {}",
        String::from_utf8_lossy(&answer)
    );
});

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The upstream: checks what the proxy forwarded (599 and the reason when wrong) and echoes the
/// request line and body length.
async fn echo(listener: TcpListener) {
    loop {
        let Ok((sock, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(|req: Request<Incoming>| async move {
                Ok::<_, Infallible>(answer(req).await)
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(sock), svc)
                .await;
        });
    }
}

async fn answer(req: Request<Incoming>) -> Response<Full<Bytes>> {
    let head = format!("{} {}", req.method(), req.uri());
    let problem = forwarded_problem(&req);
    let len = match Limited::new(req.into_body(), 1 << 20).collect().await {
        Ok(b) => b.to_bytes().len().to_string(),
        Err(e) => format!("unread ({e})"),
    };
    let (status, body) = match problem {
        Some(p) => (599, format!("{p}\n{head}\n")),
        None => (200, format!("echo {head}\nbody {len}\n")),
    };
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
    r.headers_mut()
        .insert("x-echo", header::HeaderValue::from_static("1"));
    r
}

fn forwarded_problem<B>(req: &Request<B>) -> Option<String> {
    let h = req.headers();
    let upstream = UPSTREAM.get().map(|a| a.to_string());
    let host = h.get(header::HOST).and_then(|v| v.to_str().ok());
    if host.map(str::to_string) != upstream {
        return Some(format!("host {host:?}, not the upstream {upstream:?}"));
    }
    for hop in [
        "connection",
        "te",
        "trailer",
        "upgrade",
        "proxy-authorization",
        "proxy-authenticate",
        "keep-alive",
        "proxy-connection",
    ] {
        if h.contains_key(hop) {
            return Some(format!("hop-by-hop header {hop} forwarded"));
        }
    }
    if h.get("x-forwarded-proto").is_none_or(|v| v != "http") {
        return Some("x-forwarded-proto is not http".into());
    }
    let xff = h.get("x-forwarded-for").and_then(|v| v.to_str().ok());
    if !xff.is_some_and(|v| v.ends_with("127.0.0.1")) {
        return Some(format!(
            "x-forwarded-for {xff:?} does not end with the client"
        ));
    }
    None
}
