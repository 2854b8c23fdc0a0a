//! The one port: axum routes (GraphQL, GraphiQL, WebSocket subscriptions, health, the run
//! report, dashboard) merged with the tonic delegate service, served over rustls with HTTP/1.1
//! and HTTP/2 (ALPN).
use crate::{
    graphql::FaultlineSchema,
    grpc::DelegateSvc,
    identity::{
        authn::{self, Credential},
        origin::{self, Origins},
    },
    perimeter::{self, ClientIp, PeerAddr, Perimeter},
    state::AppState,
};
use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql_axum::{GraphQLProtocol, GraphQLRequest, GraphQLResponse, GraphQLWebSocket};
use axum::{
    extract::{State, WebSocketUpgrade},
    http::{header, HeaderMap, StatusCode},
    response::{Html, IntoResponse, Response},
    routing::get,
    Router,
};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::{future::Future, sync::Arc, time::Duration};
use tokio::net::TcpListener;
use tower::ServiceExt;

/// Largest GraphQL request body.
pub const MAX_BODY: usize = 1 << 20;

#[derive(Clone)]
struct Http {
    app: AppState,
    schema: FaultlineSchema,
    /// Whose pages may use the session cookie (the WebSocket upgrade checks it too).
    origins: Arc<Origins>,
    /// The root fields of the schema: the `operation` label of the GraphQL metrics.
    roots: Arc<Vec<String>>,
    /// `/metrics` on this port, for this bearer token only (`--metrics-token`).
    metrics_token: Option<Arc<String>>,
}

/// The root fields of `schema` (of Query, Mutation and Subscription).
fn root_fields(schema: &FaultlineSchema) -> Vec<String> {
    use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};
    let Ok(doc) = async_graphql::parser::parse_schema(schema.sdl()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for d in doc.definitions {
        if let TypeSystemDefinition::Type(t) = d {
            let name = t.node.name.node.as_str();
            if matches!(
                name,
                "QueryRoot"
                    | "MutationRoot"
                    | "SubscriptionRoot"
                    | "Query"
                    | "Mutation"
                    | "Subscription"
            ) {
                if let TypeKind::Object(o) = &t.node.kind {
                    out.extend(o.fields.iter().map(|f| f.node.name.node.to_string()));
                }
            }
        }
    }
    out
}

/// Every route, behind the perimeter (address, allow-lists, rate limit, security headers), the
/// same-origin rule for the session cookie and, when origins are configured, CORS.
pub fn router(
    app: AppState,
    schema: FaultlineSchema,
    perimeter: Arc<Perimeter>,
    cors_origins: &[String],
    web_dir: Option<std::path::PathBuf>,
    metrics_token: Option<String>,
) -> anyhow::Result<Router> {
    let roots = Arc::new(root_fields(&schema));
    let origins = Arc::new(Origins::new(app.public_url.as_deref(), cors_origins));
    let grpc = tonic::service::Routes::new(DelegateSvc::server(app.clone())).into_axum_router();
    let auth = crate::identity::routes::router().with_state(app.clone());
    let report = crate::report::router().with_state(app.clone());
    let graphql = Router::new()
        .route("/graphql", get(graphiql).post(graphql))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(MAX_BODY))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(60),
        ));
    let mut api = Router::new()
        .merge(graphql)
        .route("/graphql/ws", get(graphql_ws))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(Http {
            app,
            schema,
            origins: origins.clone(),
            roots,
            metrics_token: metrics_token.map(Arc::new),
        })
        .merge(auth)
        .merge(report)
        .layer(axum::middleware::from_fn_with_state(origins, origin::guard));
    if !cors_origins.is_empty() {
        api = api.layer(cors(cors_origins)?);
    }
    Ok(api
        .merge(grpc)
        .fallback_service(crate::web::router(web_dir))
        .layer(axum::middleware::from_fn_with_state(
            perimeter,
            perimeter::guard,
        )))
}

/// CORS for the configured origins only: credentials allowed, GraphQL's methods and headers.
fn cors(origins: &[String]) -> anyhow::Result<tower_http::cors::CorsLayer> {
    let origins = origins
        .iter()
        .map(|o| {
            header::HeaderValue::from_str(o.trim_end_matches('/'))
                .map_err(|_| anyhow::anyhow!("--cors-origin {o:?} is not a valid origin"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(tower_http::cors::CorsLayer::new()
        .allow_origin(origins)
        .allow_credentials(true)
        .allow_methods([axum::http::Method::GET, axum::http::Method::POST])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .max_age(Duration::from_secs(600)))
}

/// GraphiQL, from the hub's own files (`/graphiql/*`, vendored into the dashboard build), never
/// from a CDN: it works on a closed network, under a CSP with no third-party origin.
async fn graphiql() -> Html<&'static str> {
    Html(include_str!("graphiql.html"))
}

async fn graphql(
    State(h): State<Http>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    req: GraphQLRequest,
) -> Response {
    let started = std::time::Instant::now();
    let req = req.into_inner();
    // Kept for the metrics' `operation` label only when metrics are recorded.
    let query = crate::metrics::get()
        .enabled
        .then(|| (req.query.clone(), req.operation_name.clone()));
    let cred = Credential::from_headers(&headers);
    // One span per request (traces: `--otlp-endpoint`), named after the operation when given.
    let span = tracing::info_span!(
        "graphql",
        operation = query
            .as_ref()
            .and_then(|q| q.1.as_deref())
            .unwrap_or_default(),
        status = tracing::field::Empty
    );
    let answered = async {
        match authn::authenticate(&h.app, cred.as_ref(), Some(ip)).await {
            Ok(p) => {
                let resp = h.schema.execute(req.data(p)).await;
                let status = resp
                    .errors
                    .first()
                    .map(|e| {
                        e.extensions
                            .as_ref()
                            .and_then(|x| x.get("code"))
                            .map(|c| c.to_string().trim_matches('"').to_ascii_lowercase())
                            .unwrap_or_else(|| "error".into())
                    })
                    .unwrap_or_else(|| "ok".into());
                (status, GraphQLResponse::from(resp).into_response())
            }
            Err(e) => {
                let body = serde_json::json!({"errors": [{"message": e.to_string(), "extensions": {"code": e.code()}}]});
                (
                    e.code().to_ascii_lowercase(),
                    (e.http_status(), axum::Json(body)).into_response(),
                )
            }
        }
    };
    let (status, response) = tracing::Instrument::instrument(answered, span.clone()).await;
    span.record("status", status.as_str());
    crate::metrics::get().graphql(
        || {
            let roots: Vec<&str> = h.roots.iter().map(String::as_str).collect();
            query
                .as_ref()
                .map(|(q, name)| crate::metrics::operation(q, name.as_deref(), &roots))
                .unwrap_or_default()
        },
        status,
        started.elapsed().as_secs_f64(),
    );
    response
}

/// `/metrics` on the main port: only with `--metrics-token`, only for that bearer token.
async fn metrics(State(h): State<Http>, headers: HeaderMap) -> Response {
    use sha2::{Digest, Sha256};
    let Some(token) = &h.metrics_token else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    // Compared as digests: the time taken says nothing about the token.
    if Sha256::digest(given.as_bytes()) != Sha256::digest(token.as_bytes()) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "a bearer token is required",
        )
            .into_response();
    }
    render_metrics(&h.app.pool).await
}

/// The exposition, or 503 when Postgres cannot be read (Prometheus then marks the target down).
pub async fn render_metrics(pool: &sqlx::PgPool) -> Response {
    let read = crate::metrics::get().render(pool);
    match tokio::time::timeout(Duration::from_secs(10), read).await {
        Ok(Ok(text)) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "metrics: cannot read the hub's series from Postgres");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable").into_response()
        }
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "database too slow").into_response(),
    }
}

/// The `--metrics-listen` server: `/metrics` only, plain HTTP, until `stop` flips.
pub async fn serve_metrics(
    listener: tokio::net::TcpListener,
    pool: sqlx::PgPool,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let pool = pool.clone();
            async move { render_metrics(&pool).await }
        }),
    );
    let stopped = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(stopped)
        .await
    {
        tracing::warn!(error = %e, "metrics listener failed");
    }
}

/// graphql-ws / graphql-transport-ws. Browsers cannot set headers on WebSockets: the session
/// cookie of the upgrade request is used (only from the hub's own origin, so another site
/// cannot ride on it), else a token in the connection_init payload as
/// `{"Authorization": "Bearer …"}`.
async fn graphql_ws(
    State(h): State<Http>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    uri: axum::http::Uri,
    protocol: GraphQLProtocol,
    ws: WebSocketUpgrade,
) -> Response {
    let cookie = match Credential::from_headers(&headers) {
        Some(c @ Credential::Cookie(_)) if h.origins.same_origin(&headers, &uri) => Some(c),
        Some(Credential::Cookie(_)) => {
            tracing::info!(origin = ?headers.get(header::ORIGIN), "websocket from another origin: its session cookie is ignored");
            None
        }
        _ => None,
    };
    ws.protocols(ALL_WEBSOCKET_PROTOCOLS)
        .max_message_size(MAX_BODY)
        .on_upgrade(move |socket| {
            let app = h.app.clone();
            GraphQLWebSocket::new(socket, h.schema.clone(), protocol)
                .on_connection_init(move |payload: serde_json::Value| async move {
                    let bearer = ["Authorization", "authorization"]
                        .iter()
                        .find_map(|k| payload.get(*k).and_then(|v| v.as_str()))
                        .and_then(authn::bearer)
                        .map(Credential::Bearer);
                    let p =
                        authn::authenticate(&app, bearer.as_ref().or(cookie.as_ref()), Some(ip))
                            .await
                            .map_err(|e| async_graphql::Error::new(e.to_string()))?;
                    let mut data = async_graphql::Data::default();
                    data.insert(p);
                    Ok(data)
                })
                .serve()
        })
}

async fn readyz(State(h): State<Http>) -> impl IntoResponse {
    let ping = sqlx::query("SELECT 1").execute(&h.app.pool);
    match tokio::time::timeout(Duration::from_secs(2), ping).await {
        Ok(Ok(_)) => (StatusCode::OK, "ready"),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "database unreachable"),
    }
}

/// Accepts connections until `shutdown` resolves, closes the listener, calls `closed` (which
/// tells long-lived streams to end: a client reconnecting then finds this port refusing and goes
/// to another replica), then lets in-flight requests finish for up to `grace`. TLS handshakes
/// must complete within 10 s; idle HTTP/1 header reads within 30 s.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    router: Router,
    shutdown: impl Future<Output = ()>,
    closed: impl FnOnce(),
    grace: Duration,
) {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30));
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Duration::from_secs(20))
        .max_concurrent_streams(1024);
    let builder = Arc::new(builder);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => { tracing::warn!(error = %e, "accept failed"); tokio::time::sleep(Duration::from_millis(50)).await; continue }
            },
            _ = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true);
        let (router, acceptor, builder) = (router.clone(), acceptor.clone(), builder.clone());
        let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
            let mut req = req.map(axum::body::Body::new);
            req.extensions_mut().insert(PeerAddr(peer));
            router.clone().oneshot(req)
        });
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            match acceptor {
                Some(acc) => {
                    match tokio::time::timeout(Duration::from_secs(10), acc.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let conn =
                                builder.serve_connection_with_upgrades(TokioIo::new(stream), svc);
                            if let Err(e) = watcher.watch(conn.into_owned()).await {
                                tracing::debug!(%peer, error = %e, "connection ended with an error");
                            }
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "tls handshake failed"),
                        Err(_) => tracing::debug!(%peer, "tls handshake timed out"),
                    }
                }
                None => {
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(tcp), svc);
                    if let Err(e) = watcher.watch(conn.into_owned()).await {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                }
            }
        });
    }
    drop(listener);
    closed();
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            ?grace,
            "connections still open after the grace period; closing them"
        );
    }
}
