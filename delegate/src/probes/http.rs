//! The `http` probe: one request with the probe's method and timeout; ok when the status is the
//! expected one. One shared client without a connection pool, so every check dials afresh (as
//! a new user would) and an idle delegate holds no sockets.
use super::{Check, Probe};
use faultline_spec::probes::Probe as ProbeSpec;
use futures::future::BoxFuture;
use std::{error::Error as _, io, time::Instant};

/// Longest detail kept; error chains can be long.
const MAX_DETAIL: usize = 300;

pub struct HttpProbe {
    client: reqwest::Client,
}

impl HttpProbe {
    pub fn new() -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("faultline-delegate/", env!("CARGO_PKG_VERSION")))
            // The status the endpoint itself answers is what counts, not where it redirects.
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(0)
            // Probes target the system under test directly; an ambient HTTP_PROXY would measure
            // the proxy instead.
            .no_proxy()
            .build()
            .map_err(|e| anyhow::anyhow!("failed to build the http probe client: {e}"))?;
        Ok(HttpProbe { client })
    }

    async fn run(&self, spec: &ProbeSpec) -> Check {
        let start = Instant::now();
        let Some(http) = &spec.http else {
            return fail(start, "not an http probe".into());
        };
        let method = match reqwest::Method::from_bytes(http.method.as_bytes()) {
            Ok(m) => m,
            Err(_) => return fail(start, format!("unsupported method {:?}", http.method)),
        };
        let sent = self
            .client
            .request(method, &http.url)
            .timeout(spec.timeout.0)
            .send()
            .await;
        let latency_ms = ms(start);
        match sent {
            Ok(resp) => {
                let status = resp.status();
                let expected = &http.expect.status;
                let mut detail = format!("{} in {latency_ms:.1}ms", status_text(status));
                let ok = expected.accepts(status.as_u16());
                if !ok {
                    detail.push_str(&format!(", expected {expected}"));
                }
                Check {
                    ok,
                    latency_ms,
                    detail,
                }
            }
            Err(e) if e.is_timeout() => fail(start, format!("timed out after {}", spec.timeout)),
            Err(e) => fail(start, describe(&e)),
        }
    }
}

impl Probe for HttpProbe {
    fn kind(&self) -> &'static str {
        "http"
    }

    fn check<'a>(&'a self, spec: &'a ProbeSpec) -> BoxFuture<'a, Check> {
        Box::pin(self.run(spec))
    }
}

fn ms(start: Instant) -> f64 {
    (start.elapsed().as_secs_f64() * 10_000.0).round() / 10.0
}

fn fail(start: Instant, mut detail: String) -> Check {
    if detail.len() > MAX_DETAIL {
        let mut cut = MAX_DETAIL;
        while !detail.is_char_boundary(cut) {
            cut -= 1;
        }
        detail.truncate(cut);
    }
    Check {
        ok: false,
        latency_ms: ms(start),
        detail,
    }
}

fn status_text(s: reqwest::StatusCode) -> String {
    match s.canonical_reason() {
        Some(r) => format!("{} {r}", s.as_u16()),
        None => s.as_u16().to_string(),
    }
}

/// The most useful words of a request error: the socket error if there is one.
fn describe(e: &reqwest::Error) -> String {
    let mut source = e.source();
    let mut innermost = None;
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<io::Error>() {
            return match io.kind() {
                io::ErrorKind::ConnectionRefused => "connection refused".into(),
                io::ErrorKind::ConnectionReset => "connection reset".into(),
                io::ErrorKind::ConnectionAborted => "connection aborted".into(),
                io::ErrorKind::TimedOut => "timed out".into(),
                io::ErrorKind::UnexpectedEof => "connection closed before a response".into(),
                _ => io.to_string(),
            };
        }
        innermost = Some(s);
        source = s.source();
    }
    match innermost {
        Some(s) if e.is_connect() => format!("connect error: {s}"),
        Some(s) => s.to_string(),
        None => e.to_string(),
    }
}
