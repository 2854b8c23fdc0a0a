//! The one port: axum routes (GraphQL, GraphiQL, WebSocket subscriptions, health, dashboard)
//! merged with the tonic delegate service, served over rustls with HTTP/1.1 and HTTP/2 (ALPN).
use crate::{auth, graphql::FaultlineSchema, grpc::DelegateSvc, state::AppState};
use async_graphql::http::{GraphiQLSource, ALL_WEBSOCKET_PROTOCOLS};
use async_graphql_axum::{GraphQLProtocol, GraphQLRequest, GraphQLResponse, GraphQLWebSocket};
use axum::{
    extract::{State, WebSocketUpgrade},
    http::{header, HeaderMap, StatusCode},
    response::{Html, IntoResponse, Response},
    routing::get,
    Json, Router,
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
}

pub fn router(app: AppState, schema: FaultlineSchema) -> Router {
    let grpc = tonic::service::Routes::new(DelegateSvc::server(app.clone())).into_axum_router();
    let graphql = Router::new()
        .route("/graphql", get(graphiql).post(graphql))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(MAX_BODY))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(60),
        ));
    Router::new()
        .merge(graphql)
        .route("/graphql/ws", get(graphql_ws))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/", get(index))
        .with_state(Http { app, schema })
        .merge(grpc)
}

async fn graphiql() -> Html<String> {
    Html(
        GraphiQLSource::build()
            .endpoint("/graphql")
            .subscription_endpoint("/graphql/ws")
            .finish(),
    )
}

async fn graphql(State(h): State<Http>, headers: HeaderMap, req: GraphQLRequest) -> Response {
    let authz = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match auth::authenticate(&h.app.pool, authz).await {
        Ok(p) => {
            GraphQLResponse::from(h.schema.execute(req.into_inner().data(p)).await).into_response()
        }
        Err(e) => {
            let status = if matches!(e, crate::error::ApiError::Internal(_)) {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::UNAUTHORIZED
            };
            let body = serde_json::json!({"errors": [{"message": e.to_string(), "extensions": {"code": e.code()}}]});
            (status, Json(body)).into_response()
        }
    }
}

/// graphql-ws / graphql-transport-ws; the token travels in the connection_init payload as
/// `{"Authorization": "Bearer …"}` (browsers cannot set headers on WebSockets).
async fn graphql_ws(
    State(h): State<Http>,
    protocol: GraphQLProtocol,
    ws: WebSocketUpgrade,
) -> Response {
    ws.protocols(ALL_WEBSOCKET_PROTOCOLS)
        .max_message_size(MAX_BODY)
        .on_upgrade(move |socket| {
            let pool = h.app.pool.clone();
            GraphQLWebSocket::new(socket, h.schema.clone(), protocol)
                .on_connection_init(move |payload: serde_json::Value| async move {
                    let token = ["Authorization", "authorization"]
                        .iter()
                        .find_map(|k| payload.get(*k).and_then(|v| v.as_str()).map(str::to_string));
                    let p = auth::authenticate(&pool, token.as_deref())
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

async fn index() -> Html<&'static str> {
    Html(include_str!("../../web/index.html"))
}

/// Accepts connections until `shutdown` resolves, then lets in-flight requests finish for up to
/// `grace`. TLS handshakes must complete within 10 s; idle HTTP/1 header reads within 30 s.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    router: Router,
    shutdown: impl Future<Output = ()>,
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
            router.clone().oneshot(req.map(axum::body::Body::new))
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
