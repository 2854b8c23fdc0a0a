//! The reverse proxy behind `http-fault`: HTTP/1.1 in (hyper server, keep-alive), HTTP/1.1 out
//! (a pooled hyper client), with the step's rules deciding per request whether to abort, delay,
//! reset or rewrite. It owns serving and stopping; what to serve (the typed parameters) comes
//! from `faultline-experiment`, and when to start and stop comes from [`super::http_fault`].
//!
//! Limits: request heads up to [`MAX_HEAD_BYTES`] and read within [`HEAD_TIMEOUT`]; at most
//! [`MAX_CONNECTIONS`] client connections; bodies stream through untouched except a response
//! body a rule rewrites, which is read whole up to [`MAX_REWRITE_BODY`] (502 beyond). The
//! upstream gets `connectTimeout` to accept (502 after) and `responseTimeout` to answer (504).
use bytes::Bytes;
use faultline_experiment::faults::{
    BodyReplace, BodyRewrite, HeaderEdit, HttpAction, HttpFaultParams,
};
use http_body_util::{combinators::BoxBody, BodyExt, Full, Limited};
use hyper::{
    body::Incoming,
    header::{self, HeaderMap, HeaderName, HeaderValue},
    Method, Request, Response, StatusCode, Uri,
};
use hyper_util::{
    client::legacy::{connect::HttpConnector, Client},
    rt::{TokioExecutor, TokioIo, TokioTimer},
};
use std::{
    convert::Infallible,
    io,
    net::SocketAddr,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
        Arc,
    },
    task::{Context, Poll},
    time::Duration,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{watch, Notify},
    task::JoinSet,
};

/// Largest request head (request line and headers) a client may send: hyper's read buffer
/// limit, checked between reads (so a head arriving in one large read may exceed it somewhat).
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// A client has this long to send a request head once it started one.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// Client connections held at once; more are closed as they come.
pub const MAX_CONNECTIONS: usize = 4096;
/// Largest upstream response body a `responseBody` rewrite reads.
pub const MAX_REWRITE_BODY: usize = 8 * 1024 * 1024;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Body = BoxBody<Bytes, BoxError>;

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: io::Error },
    #[error("invalid http-fault parameters: {0}")]
    Params(String),
    #[error("the proxy needs a tokio runtime")]
    NoRuntime,
}

/// A request matcher and its action, ready to test requests against.
struct Rule {
    method: Option<Method>,
    path: Option<String>,
    path_regex: Option<regex::Regex>,
    headers: Vec<(HeaderName, HeaderValue)>,
    percentage: f64,
    action: Action,
}

enum Action {
    Abort { status: StatusCode, body: Bytes },
    Delay(Duration),
    Reset,
    Rewrite(Rewrite),
}

#[derive(Default)]
struct HeaderOps {
    remove: Vec<HeaderName>,
    set: Vec<(HeaderName, HeaderValue)>,
}

impl HeaderOps {
    fn apply(&self, h: &mut HeaderMap) {
        for n in &self.remove {
            h.remove(n);
        }
        for (n, v) in &self.set {
            h.insert(n.clone(), v.clone());
        }
    }
}

enum BodyOp {
    Text(Bytes),
    /// The escaped `from` as a byte regex (so bodies need not be UTF-8), and `to`.
    Replace(regex::bytes::Regex, Vec<u8>),
}

struct Rewrite {
    request: HeaderOps,
    response: HeaderOps,
    body: Option<BodyOp>,
}

fn header_name(n: &str) -> Result<HeaderName, ProxyError> {
    HeaderName::from_bytes(n.as_bytes())
        .map_err(|_| ProxyError::Params(format!("invalid header name {n:?}")))
}

fn header_value(v: &str) -> Result<HeaderValue, ProxyError> {
    HeaderValue::from_str(v).map_err(|_| ProxyError::Params(format!("invalid header value {v:?}")))
}

fn header_ops(e: Option<&HeaderEdit>) -> Result<HeaderOps, ProxyError> {
    let Some(e) = e else {
        return Ok(HeaderOps::default());
    };
    Ok(HeaderOps {
        remove: e
            .remove
            .iter()
            .map(|n| header_name(n))
            .collect::<Result<_, _>>()?,
        set: e
            .set
            .iter()
            .map(|(n, v)| Ok((header_name(n)?, header_value(v)?)))
            .collect::<Result<_, ProxyError>>()?,
    })
}

impl Rule {
    fn compile(r: &faultline_experiment::faults::HttpRule) -> Result<Rule, ProxyError> {
        let m = &r.matcher;
        let action = match r.action() {
            HttpAction::Abort(a) => Action::Abort {
                status: StatusCode::from_u16(a.status)
                    .map_err(|_| ProxyError::Params(format!("invalid status {}", a.status)))?,
                body: Bytes::from(a.body.clone().unwrap_or_default()),
            },
            HttpAction::Delay(d) => Action::Delay(d),
            HttpAction::Reset => Action::Reset,
            HttpAction::Rewrite(w) => Action::Rewrite(Rewrite {
                request: header_ops(w.request_headers.as_ref())?,
                response: header_ops(w.response_headers.as_ref())?,
                body: match &w.response_body {
                    None => None,
                    Some(BodyRewrite::Text(t)) => Some(BodyOp::Text(Bytes::from(t.clone()))),
                    Some(BodyRewrite::Replace(BodyReplace {
                        replace: [from, to],
                    })) => Some(BodyOp::Replace(
                        regex::bytes::Regex::new(&regex::escape(from))
                            .map_err(|e| ProxyError::Params(e.to_string()))?,
                        to.clone().into_bytes(),
                    )),
                },
            }),
        };
        Ok(Rule {
            method: m
                .method
                .as_deref()
                .map(|s| {
                    Method::from_bytes(s.as_bytes())
                        .map_err(|_| ProxyError::Params(format!("invalid method {s:?}")))
                })
                .transpose()?,
            path: m.path.clone(),
            path_regex: m
                .path_regex
                .as_deref()
                .map(|r| {
                    regex::RegexBuilder::new(r)
                        .size_limit(faultline_experiment::faults::REGEX_SIZE_LIMIT)
                        .build()
                        .map_err(|e| ProxyError::Params(format!("pathRegex: {e}")))
                })
                .transpose()?,
            headers: m
                .headers
                .iter()
                .map(|(n, v)| Ok((header_name(n)?, header_value(v)?)))
                .collect::<Result<_, ProxyError>>()?,
            percentage: r.percentage,
            action,
        })
    }

    fn matches<B>(&self, req: &Request<B>) -> bool {
        self.method.as_ref().is_none_or(|m| req.method() == m)
            && self
                .path
                .as_deref()
                .is_none_or(|p| req.uri().path().starts_with(p))
            && self
                .path_regex
                .as_ref()
                .is_none_or(|r| r.is_match(req.uri().path()))
            && self
                .headers
                .iter()
                .all(|(n, v)| req.headers().get_all(n).iter().any(|x| x == v))
    }

    /// The per-request dice: true for `percentage`% of the calls.
    fn fires(&self) -> bool {
        self.percentage >= 100.0 || rand::random::<f64>() * 100.0 < self.percentage
    }
}

/// What the proxy did, for the revert's detail and for tests.
#[derive(Debug, Default)]
pub struct Counts {
    pub requests: AtomicU64,
    pub aborted: AtomicU64,
    pub delayed: AtomicU64,
    pub reset: AtomicU64,
    pub rewritten: AtomicU64,
    /// Requests the proxy itself answered 502/504 because the upstream failed.
    pub upstream_errors: AtomicU64,
}

impl Counts {
    fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// e.g. `600 requests: 180 aborted, 0 delayed, 0 reset, 0 rewritten, 0 upstream errors`.
    pub fn summary(&self) -> String {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "{} requests: {} aborted, {} delayed, {} reset, {} rewritten, {} upstream errors",
            g(&self.requests),
            g(&self.aborted),
            g(&self.delayed),
            g(&self.reset),
            g(&self.rewritten),
            g(&self.upstream_errors)
        )
    }
}

/// What every connection shares.
struct Shared {
    rules: Vec<Rule>,
    /// `host:port` of the upstream, also sent as `Host`.
    upstream: String,
    upstream_host: HeaderValue,
    response_timeout: Duration,
    client: Client<HttpConnector, Body>,
    counts: Arc<Counts>,
    open: Arc<AtomicUsize>,
}

/// A running proxy. [`Running::stop`] closes the listener at once (new connections are refused
/// when it returns) and ends every open connection.
pub struct Running {
    listener: Arc<TcpListener>,
    stop: watch::Sender<bool>,
    pub addr: SocketAddr,
    pub counts: Arc<Counts>,
    open: Arc<AtomicUsize>,
}

impl Running {
    /// Stops serving; returns how many client connections were open. Synchronous on purpose:
    /// [`super::Fault::revert`] is, and its caller must be able to rely on the port being shut.
    pub fn stop(&self) -> usize {
        if self.stop.send_replace(true) {
            return self.open.load(Ordering::Relaxed);
        }
        // shutdown(2) on a listening socket takes it out of LISTEN at once, so connects are
        // refused from here on; the serving task then drops it and the connections.
        if let Err(e) =
            socket2::SockRef::from(self.listener.as_ref()).shutdown(std::net::Shutdown::Read)
        {
            tracing::warn!(addr = %self.addr, error = %e, "failed to shut the proxy's listener; it closes when its task ends");
        }
        self.open.load(Ordering::Relaxed)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Binds `listen` and starts serving on the current tokio runtime.
pub fn start(
    listen: SocketAddr,
    upstream: String,
    params: &HttpFaultParams,
) -> Result<Running, ProxyError> {
    let rt = tokio::runtime::Handle::try_current().map_err(|_| ProxyError::NoRuntime)?;
    let rules = params
        .rules
        .iter()
        .map(Rule::compile)
        .collect::<Result<Vec<_>, _>>()?;
    let upstream_host = header_value(&upstream)?;
    let l = std::net::TcpListener::bind(listen).map_err(|source| ProxyError::Listen {
        addr: listen,
        source,
    })?;
    let addr = l.local_addr().map_err(|source| ProxyError::Listen {
        addr: listen,
        source,
    })?;
    l.set_nonblocking(true)
        .map_err(|source| ProxyError::Listen { addr, source })?;
    let _in_rt = rt.enter();
    let listener =
        Arc::new(TcpListener::from_std(l).map_err(|source| ProxyError::Listen { addr, source })?);

    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(params.connect_timeout()));
    connector.set_nodelay(true);
    let client = Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector);
    let counts = Arc::new(Counts::default());
    let open = Arc::new(AtomicUsize::new(0));
    let shared = Arc::new(Shared {
        rules,
        upstream,
        upstream_host,
        response_timeout: params.response_timeout(),
        client,
        counts: counts.clone(),
        open: open.clone(),
    });
    let (stop, stopped) = watch::channel(false);
    rt.spawn(serve(listener.clone(), shared, stopped));
    Ok(Running {
        listener,
        stop,
        addr,
        counts,
        open,
    })
}

async fn serve(listener: Arc<TcpListener>, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((sock, peer)) => {
                    if shared.open.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
                        tracing::warn!(%peer, "http-fault proxy at its connection limit; closing a new connection");
                        continue;
                    }
                    shared.open.fetch_add(1, Ordering::Relaxed);
                    let m = crate::metrics::get();
                    crate::metrics::Metrics::proxy(&m.proxy_connections, "http", 1);
                    conns.spawn(connection(sock, peer, shared.clone()));
                }
                Err(_) if *stop.borrow() => break,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "http-fault proxy cannot accept");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    // Aborts every connection task; each drops its socket.
    conns.shutdown().await;
}

/// Decrements the open-connection count however the connection task ends (also when aborted).
struct OpenGuard(Arc<AtomicUsize>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A `reset` rule's signal to its connection: close with RST, now.
#[derive(Default)]
struct ResetSignal {
    armed: Arc<AtomicBool>,
    now: Notify,
}

/// The client socket; when dropped after a reset, it closes with SO_LINGER 0, which sends RST
/// instead of FIN. Bytes read from and written to the client count in
/// `faultline_delegate_proxy_bytes_total{proxy="http"}`.
struct ClientIo {
    sock: TcpStream,
    rst: Arc<AtomicBool>,
    bytes: prometheus_client::metrics::counter::Counter,
}

impl ClientIo {
    fn counted(&self, r: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        if let Poll::Ready(Ok(n)) = &r {
            self.bytes.inc_by(*n as u64);
        }
        r
    }
}

impl Drop for ClientIo {
    fn drop(&mut self) {
        if self.rst.load(Ordering::SeqCst) {
            if let Err(e) = self.sock.set_zero_linger() {
                tracing::warn!(error = %e, "failed to set SO_LINGER 0 for a reset");
            }
        }
    }
}

impl AsyncRead for ClientIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.sock).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = r {
            self.bytes.inc_by((buf.filled().len() - before) as u64);
        }
        r
    }
}

impl AsyncWrite for ClientIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.sock).poll_write(cx, buf);
        self.counted(r)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.sock).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.sock).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.sock).poll_write_vectored(cx, bufs);
        self.counted(r)
    }

    fn is_write_vectored(&self) -> bool {
        self.sock.is_write_vectored()
    }
}

async fn connection(sock: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
    let _open = OpenGuard(shared.open.clone());
    let _ = sock.set_nodelay(true);
    let reset = Arc::new(ResetSignal::default());
    let io = TokioIo::new(ClientIo {
        sock,
        rst: reset.armed.clone(),
        bytes: crate::metrics::get()
            .proxy_bytes
            .get_or_create(&crate::metrics::ProxyLabel {
                proxy: "http".into(),
            })
            .clone(),
    });
    let svc = {
        let (shared, reset) = (shared.clone(), reset.clone());
        hyper::service::service_fn(move |req| {
            let (shared, reset) = (shared.clone(), reset.clone());
            async move { Ok::<_, Infallible>(handle(req, peer, &shared, &reset).await) }
        })
    };
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .max_buf_size(MAX_HEAD_BYTES)
        .serve_connection(io, svc);
    tokio::select! {
        r = conn => {
            if let Err(e) = r {
                tracing::debug!(%peer, error = %e, "http-fault proxy connection ended");
            }
        }
        // Dropping the connection drops the socket, which the armed flag turns into an RST.
        _ = reset.now.notified() => {}
    }
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(full(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn full(b: Bytes) -> Body {
    Full::new(b).map_err(|never| match never {}).boxed()
}

async fn handle(
    req: Request<Incoming>,
    peer: SocketAddr,
    shared: &Shared,
    reset: &ResetSignal,
) -> Response<Body> {
    Counts::bump(&shared.counts.requests);
    let rule = shared.rules.iter().find(|r| r.matches(&req) && r.fires());
    match rule.map(|r| &r.action) {
        Some(Action::Abort { status, body }) => {
            Counts::bump(&shared.counts.aborted);
            if body.is_empty() {
                let mut r = Response::new(full(Bytes::new()));
                *r.status_mut() = *status;
                r
            } else {
                text(*status, body.clone())
            }
        }
        Some(Action::Reset) => {
            Counts::bump(&shared.counts.reset);
            reset.armed.store(true, Ordering::SeqCst);
            reset.now.notify_one();
            // The connection task drops this future with the connection.
            std::future::pending().await
        }
        Some(Action::Delay(d)) => {
            Counts::bump(&shared.counts.delayed);
            tokio::time::sleep(*d).await;
            forward(req, peer, shared, None).await
        }
        Some(Action::Rewrite(w)) => {
            Counts::bump(&shared.counts.rewritten);
            forward(req, peer, shared, Some(w)).await
        }
        None => forward(req, peer, shared, None).await,
    }
}

/// Headers that belong to one connection (RFC 9110 §7.6.1), never forwarded; plus whatever the
/// `Connection` header names.
fn strip_hop_by_hop(h: &mut HeaderMap) {
    let named: Vec<HeaderName> = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for n in named {
        h.remove(n);
    }
    for n in [
        header::CONNECTION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        header::PROXY_AUTHORIZATION,
        header::PROXY_AUTHENTICATE,
    ] {
        h.remove(n);
    }
    h.remove("keep-alive");
    h.remove("proxy-connection");
}

async fn forward(
    req: Request<Incoming>,
    peer: SocketAddr,
    shared: &Shared,
    rewrite: Option<&Rewrite>,
) -> Response<Body> {
    let (mut parts, body) = req.into_parts();
    let pq = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    parts.uri = match Uri::try_from(format!("http://{}{pq}", shared.upstream)) {
        Ok(u) => u,
        Err(e) => {
            return text(
                StatusCode::BAD_REQUEST,
                format!("faultline http-fault: cannot forward this request target: {e}\n"),
            )
        }
    };
    let h = &mut parts.headers;
    strip_hop_by_hop(h);
    if let Some(host) = h.remove(header::HOST) {
        h.insert("x-forwarded-host", host);
    }
    h.insert(header::HOST, shared.upstream_host.clone());
    let xff = match h.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(prior) => format!("{prior}, {}", peer.ip()),
        None => peer.ip().to_string(),
    };
    if let Ok(v) = HeaderValue::from_str(&xff) {
        h.insert("x-forwarded-for", v);
    }
    h.insert("x-forwarded-proto", HeaderValue::from_static("http"));
    if let Some(w) = rewrite {
        w.request.apply(h);
        if matches!(w.body, Some(BodyOp::Replace(..))) {
            // Text replacement needs the body as sent, not compressed.
            h.insert(
                header::ACCEPT_ENCODING,
                HeaderValue::from_static("identity"),
            );
        }
    }
    let up = Request::from_parts(parts, body.map_err(BoxError::from).boxed());

    let resp = match tokio::time::timeout(shared.response_timeout, shared.client.request(up)).await
    {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return upstream_failed(shared, &e),
        Err(_) => {
            Counts::bump(&shared.counts.upstream_errors);
            return text(
                StatusCode::GATEWAY_TIMEOUT,
                format!(
                    "faultline http-fault: upstream {} did not answer within {}\n",
                    shared.upstream,
                    faultline_experiment::Dur(shared.response_timeout)
                ),
            );
        }
    };
    let (mut parts, body) = resp.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    let Some(w) = rewrite else {
        return Response::from_parts(parts, body.map_err(BoxError::from).boxed());
    };
    w.response.apply(&mut parts.headers);
    let new_body = match &w.body {
        None => return Response::from_parts(parts, body.map_err(BoxError::from).boxed()),
        Some(BodyOp::Text(t)) => t.clone(),
        Some(BodyOp::Replace(from, to)) => {
            let encoded = parts
                .headers
                .get(header::CONTENT_ENCODING)
                .is_some_and(|v| v != "identity");
            if encoded {
                tracing::warn!(upstream = %shared.upstream, "response body is compressed despite accept-encoding: identity; passed on unchanged");
                return Response::from_parts(parts, body.map_err(BoxError::from).boxed());
            }
            let read = tokio::time::timeout(
                shared.response_timeout,
                Limited::new(body, MAX_REWRITE_BODY).collect(),
            )
            .await;
            match read {
                Ok(Ok(b)) => {
                    Bytes::from(from.replace_all(&b.to_bytes(), to.as_slice()).into_owned())
                }
                Ok(Err(e)) => {
                    Counts::bump(&shared.counts.upstream_errors);
                    let why = if e.is::<http_body_util::LengthLimitError>() {
                        format!("is larger than the rewrite limit of {MAX_REWRITE_BODY} bytes")
                    } else {
                        format!("could not be read: {e}")
                    };
                    return text(
                        StatusCode::BAD_GATEWAY,
                        format!(
                            "faultline http-fault: the response body of upstream {} {why}\n",
                            shared.upstream
                        ),
                    );
                }
                Err(_) => {
                    Counts::bump(&shared.counts.upstream_errors);
                    return text(
                        StatusCode::GATEWAY_TIMEOUT,
                        format!(
                            "faultline http-fault: upstream {} did not send its body within {}\n",
                            shared.upstream,
                            faultline_experiment::Dur(shared.response_timeout)
                        ),
                    );
                }
            }
        }
    };
    // The length is the new body's; hyper sets it.
    parts.headers.remove(header::CONTENT_LENGTH);
    if matches!(w.body, Some(BodyOp::Text(_))) {
        parts.headers.remove(header::CONTENT_ENCODING);
    }
    Response::from_parts(parts, full(new_body))
}

fn upstream_failed(shared: &Shared, e: &hyper_util::client::legacy::Error) -> Response<Body> {
    Counts::bump(&shared.counts.upstream_errors);
    // The client's error says little; its source says what happened (refused, timed out).
    let mut cause = String::new();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        cause = s.to_string();
        src = s.source();
    }
    let what = if e.is_connect() {
        "cannot connect to"
    } else {
        "failed to exchange with"
    };
    tracing::debug!(upstream = %shared.upstream, error = ?e, "http-fault upstream failed");
    text(
        StatusCode::BAD_GATEWAY,
        format!(
            "faultline http-fault: {what} upstream {}: {}\n",
            shared.upstream,
            if cause.is_empty() {
                e.to_string()
            } else {
                cause
            }
        ),
    )
}
