//! The `http` probe: one request with the probe's method, headers and body; ok when the status
//! and every other expectation (body text, body regex, JSON values, latency) hold. The body is
//! read only when an expectation needs it, and at most [`MAX_BODY`] of it.
//!
//! Every connection goes through the [`Sandbox`]'s egress checks (the host's addresses after
//! DNS, the port, IP literals before the request). Two clients are built once: one verifies server certificates, the other (`tlsVerify: false`)
//! accepts any. Neither keeps a connection pool, so every check dials afresh (as a new user
//! would) and an idle delegate holds no sockets.
use super::{bounded_part, clip, io_error_text, ms, quoted, regex, Check, Probe};
use crate::sandbox::Sandbox;
use faultline_experiment::probes::{HttpExpect, HttpProbe as HttpSpec, Probe as ProbeSpec};
use futures::future::BoxFuture;
use std::{error::Error as _, io, time::Instant};

/// Most of a response body a check reads; a larger body fails the check.
pub(super) const MAX_BODY: usize = 1 << 20;

pub struct HttpProbe {
    /// Verifies the server's certificate (the default); shared with the prometheus probe.
    verifying: reqwest::Client,
    /// Accepts any certificate, for `tlsVerify: false`: built on first use, since most
    /// delegates never need it and each client holds its own TLS configuration.
    trusting: std::sync::OnceLock<Result<reqwest::Client, String>>,
    sandbox: Sandbox,
}

/// The settings every probe client shares (the prometheus probe uses them too): connections
/// only where the sandbox allows, no redirects followed (the status the endpoint itself answers
/// is what counts), no pool, no ambient proxy.
pub(super) fn client_builder(sandbox: &Sandbox) -> reqwest::ClientBuilder {
    sandbox
        .http_client(0)
        .user_agent(concat!("faultline-delegate/", env!("CARGO_PKG_VERSION")))
        .pool_max_idle_per_host(0)
}

impl HttpProbe {
    pub fn new(sandbox: &Sandbox) -> anyhow::Result<Self> {
        let verifying = client_builder(sandbox)
            .build()
            .map_err(|e| anyhow::anyhow!("failed to build the http probe client: {e}"))?;
        Ok(HttpProbe {
            verifying,
            trusting: std::sync::OnceLock::new(),
            sandbox: sandbox.clone(),
        })
    }

    /// The verifying client, for the probes that share its settings.
    pub(super) fn client(&self) -> reqwest::Client {
        self.verifying.clone()
    }

    fn trusting(&self) -> Result<&reqwest::Client, String> {
        self.trusting
            .get_or_init(|| {
                client_builder(&self.sandbox)
                    .danger_accept_invalid_certs(true)
                    .build()
                    .map_err(|e| format!("cannot build the tlsVerify: false client: {e}"))
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    async fn run(&self, http: &HttpSpec) -> Check {
        let start = Instant::now();
        let method = match reqwest::Method::from_bytes(http.method.as_bytes()) {
            Ok(m) => m,
            Err(_) => return Check::fail(start, format!("unsupported method {:?}", http.method)),
        };
        let client = if http.tls_verify {
            &self.verifying
        } else {
            match self.trusting() {
                Ok(c) => c,
                Err(e) => return Check::fail(start, e),
            }
        };
        let url = match reqwest::Url::parse(&http.url) {
            Ok(u) => u,
            Err(e) => return Check::fail(start, format!("invalid url: {e}")),
        };
        if let Err(why) = self.sandbox.check_url(&url) {
            return Check::fail(start, why);
        }
        let mut req = client.request(method, url);
        for (name, value) in &http.headers {
            req = req.header(name, value);
        }
        if let Some(body) = &http.body {
            req = req.body(body.clone());
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return Check::fail(start, describe(&e)),
        };
        let status = resp.status();
        let expect = &http.expect;
        let mut problems = Vec::new();
        if !expect.status.accepts(status.as_u16()) {
            problems.push(format!("expected {}", expect.status));
        } else if needs_body(expect) {
            match read_body(resp).await {
                Ok(body) => body_problems(&body, expect, &mut problems),
                Err(e) => problems.push(e),
            }
        }
        let latency_ms = ms(start);
        if let Some(limit) = expect.latency_below {
            if latency_ms >= limit.0.as_secs_f64() * 1000.0 {
                problems.push(format!("expected below {limit}"));
            }
        }
        let mut detail = format!("{} in {latency_ms:.1}ms", status_text(status));
        for p in &problems {
            detail.push_str(", ");
            detail.push_str(p);
        }
        Check::timed(problems.is_empty(), latency_ms, detail)
    }
}

impl Probe for HttpProbe {
    fn kind(&self) -> &'static str {
        "http"
    }

    fn check<'a>(&'a self, spec: &'a ProbeSpec) -> BoxFuture<'a, Check> {
        bounded_part(spec, self.kind(), spec.http.as_ref(), |p| self.run(p))
    }
}

fn needs_body(e: &HttpExpect) -> bool {
    e.body_contains.is_some() || e.body_regex.is_some() || !e.json.is_empty()
}

/// The body, or why it cannot be had: at most [`MAX_BODY`] bytes are read.
pub(super) async fn read_body(mut resp: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) if body.len() + chunk.len() > MAX_BODY => {
                return Err(format!("body larger than {} KiB", MAX_BODY / 1024))
            }
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) => return Ok(body),
            Err(e) => return Err(format!("reading the body: {}", describe(&e))),
        }
    }
}

/// Every body expectation that does not hold, in a few words each.
fn body_problems(body: &[u8], expect: &HttpExpect, problems: &mut Vec<String>) {
    let text = String::from_utf8_lossy(body);
    if let Some(needle) = &expect.body_contains {
        if !text.contains(needle.as_str()) {
            problems.push(format!("body does not contain {}", quoted(needle)));
        }
    }
    if let Some(pattern) = &expect.body_regex {
        match regex(pattern) {
            Ok(re) if re.is_match(&text) => {}
            Ok(_) => problems.push(format!("body does not match /{pattern}/")),
            Err(e) => problems.push(e),
        }
    }
    if expect.json.is_empty() {
        return;
    }
    let doc: serde_json::Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return problems.push(format!("body is not JSON: {e}")),
    };
    for j in &expect.json {
        match doc.pointer(&j.pointer) {
            None => problems.push(format!("{} is missing", pointer_name(&j.pointer))),
            Some(v) if json_eq(v, &j.equals) => {}
            Some(v) => problems.push(format!(
                "{} is {}, expected {}",
                pointer_name(&j.pointer),
                short_json(v),
                short_json(&j.equals)
            )),
        }
    }
}

fn pointer_name(p: &str) -> &str {
    if p.is_empty() {
        "the body"
    } else {
        p
    }
}

/// JSON equality where `1` equals `1.0`, as a template author means it.
fn json_eq(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value::Number;
    match (a, b) {
        (Number(x), Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn short_json(v: &serde_json::Value) -> String {
    clip(&v.to_string(), 80)
}

fn status_text(s: reqwest::StatusCode) -> String {
    match s.canonical_reason() {
        Some(r) => format!("{} {r}", s.as_u16()),
        None => s.as_u16().to_string(),
    }
}

/// The most useful words of a request error: the socket error if there is one.
pub(super) fn describe(e: &reqwest::Error) -> String {
    let mut source = e.source();
    let mut innermost = None;
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<io::Error>() {
            return io_error_text(io);
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
