//! The dashboard: the single-page app built from `web/` (embedded at compile time by `build.rs`,
//! or read from `--web-dir`), with cache headers and the single-page-app fallback, so that a
//! deep link such as `/runs/<id>` loads the app, which then shows that page.
use axum::{
    body::Body,
    http::{header, HeaderValue, Method, Request, StatusCode},
    response::{IntoResponse, Response},
    Router,
};
use std::path::PathBuf;
use tower::ServiceExt;

include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));

/// Hashed build outputs never change under one name; everything else is revalidated.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const REVALIDATE: &str = "no-cache";

/// The fallback router: every GET that no API route took.
pub fn router(dir: Option<PathBuf>) -> Router {
    let r = match dir {
        Some(dir) => {
            let assets = tower_http::services::ServeDir::new(&dir);
            let pages = tower_http::services::ServeDir::new(&dir)
                .fallback(tower_http::services::ServeFile::new(dir.join("index.html")));
            Router::new().fallback(move |req: Request<Body>| {
                let (assets, pages) = (assets.clone(), pages.clone());
                async move {
                    if let Some(refused) = refuse(&req) {
                        return refused;
                    }
                    let path = req.uri().path().to_owned();
                    // A missing build output is a 404, never the app's page.
                    let res = if path.starts_with("/assets/") {
                        assets.oneshot(req).await
                    } else {
                        pages.oneshot(req).await
                    };
                    match res {
                        Ok(r) => with_cache(r.into_response(), &path),
                        Err(e) => match e {},
                    }
                }
            })
        }
        None => Router::new().fallback(embedded),
    };
    r.layer(tower_http::compression::CompressionLayer::new())
}

/// Whether the real dashboard is in the binary (else a page saying how to build it).
pub fn built() -> bool {
    BUILT
}

async fn embedded(req: Request<Body>) -> Response {
    if let Some(refused) = refuse(&req) {
        return refused;
    }
    let path = req.uri().path();
    let want = path.trim_start_matches('/');
    let (name, body) = match ASSETS.iter().find(|(p, _)| *p == want) {
        Some((p, b)) => (*p, *b),
        None if path.starts_with("/assets/") => {
            return (StatusCode::NOT_FOUND, "no such file").into_response()
        }
        // Any other path is a page of the app: it routes in the browser.
        None => match ASSETS.iter().find(|(p, _)| *p == "index.html") {
            Some((p, b)) => (*p, *b),
            None => return StatusCode::NOT_FOUND.into_response(),
        },
    };
    let mime = mime_guess::from_path(name).first_or_octet_stream();
    let mut r = (
        [(header::CONTENT_TYPE, mime.essence_str().to_owned())],
        body,
    )
        .into_response();
    if name == "index.html" {
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
    }
    with_cache(r, &format!("/{name}"))
}

/// Only GET and HEAD reach files; API prefixes never fall back to the app.
fn refuse(req: &Request<Body>) -> Option<Response> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Some(StatusCode::METHOD_NOT_ALLOWED.into_response());
    }
    let p = req.uri().path();
    let api = ["/auth/", "/graphql", "/metrics", "/faultline."];
    api.iter()
        .any(|a| p.starts_with(a))
        .then(|| (StatusCode::NOT_FOUND, "not found").into_response())
}

fn with_cache(mut r: Response, path: &str) -> Response {
    if r.status().is_success() {
        let v = if path.starts_with("/assets/") {
            IMMUTABLE
        } else {
            REVALIDATE
        };
        r.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static(v));
    }
    r
}
