//! A Toxiproxy-compatible HTTP API (Toxiproxy 2.x paths, methods, JSON and status codes) over
//! the delegate's proxy [`Registry`], so Toxiproxy clients and scripts drive Faultline's proxies
//! unchanged. Plain HTTP/1.1 on the address of `--toxiproxy-api`; bodies are limited to
//! [`MAX_BODY`], slow clients to [`READ_TIMEOUT`], and, as in Toxiproxy, browsers are refused (a
//! web page must not steer proxies through the user's browser).
use super::{Proxy, ProxyError, Registry};
use faultline_experiment::faults::{parse_toxic, ToxicKind, ToxicSpec};
use http_body_util::{BodyExt, Full, Limited};
use hyper::{
    body::{Bytes, Incoming},
    header, Method, Request, Response, StatusCode,
};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Deserialize;
use serde_json::{json, Value};
use std::{future::Future, sync::Arc, time::Duration};
use tokio::net::TcpListener;

/// Largest request body accepted.
pub const MAX_BODY: usize = 1024 * 1024;
/// Time a client gets to send its request headers, and then its body.
pub const READ_TIMEOUT: Duration = Duration::from_secs(15);
/// How long shutdown waits for requests in flight.
const GRACE: Duration = Duration::from_secs(5);
/// What `GET /version` reports: the Toxiproxy API version this follows.
pub const VERSION: &str = concat!("2.12.0-faultline.", env!("CARGO_PKG_VERSION"));

type Body = Full<Bytes>;

/// The running API: [`Running::stop`] drains and closes it.
pub struct Running {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Binds `addr` and serves the API there until stopped.
pub async fn start(addr: std::net::SocketAddr) -> anyhow::Result<Running> {
    use anyhow::Context;
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("failed to listen on {addr} for the toxiproxy api"))?;
    tracing::info!(%addr, "toxiproxy api listening");
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(serve(listener, Registry::global().clone(), async move {
        let _ = stopped.wait_for(|s| *s).await;
    }));
    Ok(Running { stop, task })
}

/// Serves the API on `listener` until `shutdown` resolves, then drains requests in flight (at
/// most [`GRACE`]) and stops the proxies made through it, as a Toxiproxy server's proxies end
/// with the server. Other proxies of `registry` are left alone.
pub async fn serve(
    listener: TcpListener,
    registry: Registry,
    shutdown: impl Future<Output = ()> + Send,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let registry = Arc::new(registry.owner());
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            _ = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "toxiproxy api accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let registry = registry.clone();
        let service = hyper::service::service_fn(move |req| {
            let registry = registry.clone();
            async move { Ok::<_, std::convert::Infallible>(handle(&registry, req).await) }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(READ_TIMEOUT)
            .serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "toxiproxy api connection ended");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("toxiproxy api requests still running after the grace period");
    }
    for task in registry.remove_own() {
        let _ = task.await;
    }
}

/// An API error as Toxiproxy writes it: `{"error": "...", "status": N}`.
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub String);

impl From<ProxyError> for ApiError {
    fn from(e: ProxyError) -> Self {
        let status = match e {
            ProxyError::NotFound | ProxyError::ToxicNotFound => StatusCode::NOT_FOUND,
            ProxyError::AlreadyExists | ProxyError::ToxicExists => StatusCode::CONFLICT,
            ProxyError::Invalid(_) => StatusCode::BAD_REQUEST,
            ProxyError::Listen { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError(status, e.to_string())
    }
}

fn bad_request(what: impl std::fmt::Display) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, format!("bad request body: {what}"))
}

fn json_response(status: StatusCode, v: &Value) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(v.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        "application/json".parse().expect("static header"),
    );
    r
}

fn empty(status: StatusCode) -> Response<Body> {
    let mut r = Response::new(Full::default());
    *r.status_mut() = status;
    r
}

fn text(status: StatusCode, msg: &str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(format!("{msg}\n"))));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        "text/plain; charset=utf-8".parse().expect("static header"),
    );
    r
}

fn proxy_json(p: &Proxy) -> Value {
    let info = p.info();
    json!({
        "name": info.name,
        "listen": info.listen,
        "upstream": info.upstream,
        "enabled": info.enabled,
        "toxics": p.toxics(),
    })
}

async fn body(req: Request<Incoming>) -> Result<Bytes, ApiError> {
    let read = Limited::new(req.into_body(), MAX_BODY).collect();
    match tokio::time::timeout(READ_TIMEOUT, read).await {
        Ok(Ok(b)) => Ok(b.to_bytes()),
        Ok(Err(e)) => Err(bad_request(e)),
        Err(_) => Err(ApiError(
            StatusCode::REQUEST_TIMEOUT,
            "request body not received in time".into(),
        )),
    }
}

fn json<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(bad_request)
}

async fn handle(reg: &Registry, req: Request<Incoming>) -> Response<Body> {
    let agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if agent.starts_with("Mozilla/") {
        return text(StatusCode::FORBIDDEN, "User agent not allowed");
    }
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let result = match (&method, segs.as_slice()) {
        (&Method::GET, ["version"]) => {
            let mut r = json_response(StatusCode::OK, &json!({ "version": VERSION }));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                "application/json;charset=utf-8"
                    .parse()
                    .expect("static header"),
            );
            return r;
        }
        (&Method::POST, ["reset"]) => reset(reg).map(|_| empty(StatusCode::NO_CONTENT)),
        (&Method::GET, ["proxies"]) => {
            let all: serde_json::Map<String, Value> = reg
                .list()
                .iter()
                .map(|p| (p.name.clone(), proxy_json(p)))
                .collect();
            Ok(json_response(StatusCode::OK, &Value::Object(all)))
        }
        (&Method::POST, ["proxies"]) => create_proxy(reg, req).await,
        (&Method::POST, ["populate"]) => populate(reg, req).await,
        (&Method::GET, ["proxies", name]) => reg
            .get(name)
            .map(|p| json_response(StatusCode::OK, &proxy_json(&p)))
            .map_err(ApiError::from),
        (&Method::POST | &Method::PATCH, ["proxies", name]) => update_proxy(reg, name, req).await,
        (&Method::DELETE, ["proxies", name]) => match reg.remove(name) {
            Ok(task) => {
                if let Some(task) = task {
                    let _ = task.await;
                }
                Ok(empty(StatusCode::NO_CONTENT))
            }
            Err(e) => Err(e.into()),
        },
        (&Method::GET, ["proxies", name, "toxics"]) => reg
            .get(name)
            .map(|p| json_response(StatusCode::OK, &json!(p.toxics())))
            .map_err(ApiError::from),
        (&Method::POST, ["proxies", name, "toxics"]) => create_toxic(reg, name, req).await,
        (&Method::GET, ["proxies", name, "toxics", toxic]) => reg
            .get(name)
            .map_err(ApiError::from)
            .and_then(|p| p.toxic(toxic).ok_or(ProxyError::ToxicNotFound.into()))
            .map(|t| json_response(StatusCode::OK, &json!(t))),
        (&Method::POST | &Method::PATCH, ["proxies", name, "toxics", toxic]) => {
            update_toxic(reg, name, toxic, req).await
        }
        (&Method::DELETE, ["proxies", name, "toxics", toxic]) => {
            reg.get(name).map_err(ApiError::from).and_then(|p| {
                if p.remove_toxics(&[toxic.to_string()]).is_empty() {
                    Err(ProxyError::ToxicNotFound.into())
                } else {
                    Ok(empty(StatusCode::NO_CONTENT))
                }
            })
        }
        (_, ["version" | "reset" | "proxies" | "populate"])
        | (_, ["proxies", _])
        | (_, ["proxies", _, "toxics"])
        | (_, ["proxies", _, "toxics", _]) => {
            return text(StatusCode::METHOD_NOT_ALLOWED, "405 method not allowed")
        }
        _ => return text(StatusCode::NOT_FOUND, "404 page not found"),
    };
    match result {
        Ok(r) => {
            tracing::debug!(%method, path, status = r.status().as_u16(), "toxiproxy api");
            r
        }
        Err(ApiError(status, msg)) => {
            tracing::debug!(%method, path, status = status.as_u16(), error = msg, "toxiproxy api");
            json_response(status, &json!({"error": msg, "status": status.as_u16()}))
        }
    }
}

/// A proxy as clients send it; absent fields keep Toxiproxy's defaults.
#[derive(Debug, Deserialize)]
pub struct ProxyInput {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub listen: Option<String>,
    #[serde(default)]
    pub upstream: Option<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

// The request bodies, read without I/O: the handlers call these, and so does the fuzz target
// `toxiproxy_json` (fuzz/).

/// The body of `POST /proxies/{name}`: any field may be left out.
pub fn proxy_update(body: &[u8]) -> Result<ProxyInput, ApiError> {
    json(body)
}

/// The body of `POST /proxies`: `name` and `upstream` are required.
pub fn new_proxy(body: &[u8]) -> Result<ProxyInput, ApiError> {
    let p = json(body)?;
    check_input(&p)?;
    Ok(p)
}

/// The body of `POST /populate`: a list of proxies, each as `POST /proxies` takes it.
pub fn populate_list(body: &[u8]) -> Result<Vec<ProxyInput>, ApiError> {
    let list: Vec<ProxyInput> = json(body)?;
    for p in &list {
        check_input(p)?;
    }
    Ok(list)
}

/// The body of `POST /proxies/{name}/toxics`: a toxic with Toxiproxy's defaults.
pub fn new_toxic(body: &[u8]) -> Result<ToxicSpec, ApiError> {
    let v: Value = json(body)?;
    if let Some(s) = v.get("stream").and_then(Value::as_str) {
        if s != "upstream" && s != "downstream" {
            return Err(ApiError(
                StatusCode::BAD_REQUEST,
                "stream was invalid, can be either upstream or downstream".into(),
            ));
        }
    }
    parse_toxic(&v, "toxic").map_err(|e| {
        if e.field == "toxic.type" {
            ApiError(StatusCode::BAD_REQUEST, "invalid toxic type".into())
        } else {
            bad_request(e)
        }
    })
}

/// `old` with the attributes (merged into its own) and toxicity of the body of `POST
/// /proxies/{name}/toxics/{toxic}`, as Toxiproxy merges them; name, stream and type stay.
pub fn updated_toxic(old: &ToxicSpec, body: &Value) -> Result<ToxicSpec, ApiError> {
    let mut attrs = old.kind.attributes();
    if let (Some(a), Some(new)) = (
        attrs.as_object_mut(),
        body.get("attributes").and_then(Value::as_object),
    ) {
        a.extend(new.clone());
    }
    let kind = ToxicKind::parse(old.kind.type_name(), &attrs, "toxic").map_err(bad_request)?;
    let toxicity = match body.get("toxicity") {
        None | Some(Value::Null) => old.toxicity,
        Some(t) => match t.as_f64() {
            Some(t) if (0.0..=1.0).contains(&t) => t,
            _ => return Err(bad_request("toxicity must be a number between 0 and 1")),
        },
    };
    Ok(ToxicSpec {
        kind,
        toxicity,
        ..old.clone()
    })
}

fn check_input(p: &ProxyInput) -> Result<(), ApiError> {
    let missing = |f: &str| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!("missing required field: {f}"),
        )
    };
    if p.name.is_empty() {
        return Err(missing("name"));
    }
    if p.upstream.as_deref().unwrap_or_default().is_empty() {
        return Err(missing("upstream"));
    }
    if p.name.contains('/') || p.name.len() > 200 {
        return Err(bad_request(
            "name must be at most 200 characters without '/'",
        ));
    }
    Ok(())
}

async fn create_proxy(reg: &Registry, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let input = new_proxy(&body(req).await?)?;
    let p = reg.create(
        &input.name,
        input.listen.as_deref().unwrap_or_default(),
        input.upstream.as_deref().unwrap_or_default(),
        input.enabled.unwrap_or(true),
    )?;
    tracing::info!(proxy = %p.name, listen = %p.info().listen, "toxiproxy api created a proxy");
    Ok(json_response(StatusCode::CREATED, &proxy_json(&p)))
}

async fn update_proxy(
    reg: &Registry,
    name: &str,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let p = reg.get(name)?;
    let input = proxy_update(&body(req).await?)?;
    let info = p.info();
    p.update(
        input.listen.as_deref().unwrap_or(&info.listen),
        input.upstream.as_deref().unwrap_or(&info.upstream),
        input.enabled.unwrap_or(info.enabled),
    )
    .await?;
    Ok(json_response(StatusCode::OK, &proxy_json(&p)))
}

/// Creates or replaces each proxy of the list (one whose listen and upstream are unchanged is
/// kept, toxics and connections included); answers 201 with all of them.
async fn populate(reg: &Registry, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let inputs = populate_list(&body(req).await?)?;
    let mut done = Vec::new();
    for i in inputs {
        let listen = i.listen.clone().unwrap_or_default();
        let upstream = i.upstream.clone().unwrap_or_default();
        let enabled = i.enabled.unwrap_or(true);
        if let Ok(p) = reg.get(&i.name) {
            let info = p.info();
            if info.listen == listen && info.upstream == upstream {
                p.update(&listen, &upstream, enabled).await?;
                done.push(proxy_json(&p));
                continue;
            }
            if let Ok(Some(task)) = reg.remove(&i.name) {
                let _ = task.await;
            }
        }
        match reg.create(&i.name, &listen, &upstream, enabled) {
            Ok(p) => done.push(proxy_json(&p)),
            Err(e) => {
                let ApiError(status, msg) = e.into();
                return Ok(json_response(
                    status,
                    &json!({"error": msg, "status": status.as_u16(), "proxies": done}),
                ));
            }
        }
    }
    Ok(json_response(
        StatusCode::CREATED,
        &json!({ "proxies": done }),
    ))
}

/// Enables every proxy and removes every toxic.
fn reset(reg: &Registry) -> Result<(), ApiError> {
    for p in reg.list() {
        p.start()?;
        p.reset_toxics();
    }
    Ok(())
}

async fn create_toxic(
    reg: &Registry,
    name: &str,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let p = reg.get(name)?;
    let toxic = new_toxic(&body(req).await?)?;
    p.add_toxics(std::slice::from_ref(&toxic))?;
    tracing::info!(proxy = name, toxic = %toxic, "toxiproxy api added a toxic");
    Ok(json_response(StatusCode::OK, &json!(toxic)))
}

/// Merges the given attributes (and toxicity) into the toxic, as Toxiproxy does.
async fn update_toxic(
    reg: &Registry,
    name: &str,
    toxic: &str,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let p = reg.get(name)?;
    if p.toxic(toxic).is_none() {
        return Err(ProxyError::ToxicNotFound.into());
    }
    let v: Value = json(&body(req).await?)?;
    let mut bad = None;
    let updated = p.update_toxic(toxic, |old| {
        updated_toxic(old, &v).map_err(|e| {
            let invalid = ProxyError::Invalid(e.1.clone());
            bad = Some(e);
            invalid
        })
    });
    match (updated, bad) {
        (_, Some(e)) => Err(e),
        (Ok(t), None) => Ok(json_response(StatusCode::OK, &json!(t))),
        (Err(e), None) => Err(e.into()),
    }
}
