//! Browser requests and the session cookie (CSRF): a state-changing request that the cookie
//! authenticates must come from the hub's own origin (or a configured `--cors-origin` /
//! `--public-url`), and `POST /graphql` with the cookie must be `application/json`, which a
//! cross-site form cannot send. Bearer-token requests (CLI, CI) carry no ambient credential and
//! are not affected; nor are safe methods, which change nothing (`GET /graphql` only serves
//! GraphiQL). The WebSocket upgrade, a GET, asks [`Origins::same_origin`] itself.
use super::authn::Credential;
use crate::{error::ApiError, identity::routes::error_response};
use axum::{
    extract::{Request, State},
    http::{header, HeaderMap, Method, Uri},
    middleware::Next,
    response::{IntoResponse, Response},
};
use std::sync::Arc;

/// The origins, besides the request's own host, whose pages may use the session cookie.
#[derive(Debug, Default)]
pub struct Origins {
    /// `scheme://host[:port]`, lowercase, without a trailing slash.
    allowed: Vec<String>,
}

/// `scheme://host[:port]` of a URL or origin, lowercase.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.trim().split_once("://")?;
    let host = rest.split(['/', '?', '#']).next()?;
    (!scheme.is_empty() && !host.is_empty())
        .then(|| format!("{}://{}", scheme, host).to_ascii_lowercase())
}

impl Origins {
    /// The configured `--public-url` and `--cors-origin`s.
    pub fn new<'a>(
        public_url: Option<&'a str>,
        cors: impl IntoIterator<Item = &'a String>,
    ) -> Self {
        let allowed = public_url
            .into_iter()
            .chain(cors.into_iter().map(String::as_str))
            .filter_map(origin_of)
            .collect();
        Origins { allowed }
    }

    /// True unless the request shows a browser sending it from another site: an `Origin` that
    /// is neither the request's own host nor a configured origin (`null` included), or, without
    /// `Origin`, `Sec-Fetch-Site` other than `same-origin` / `none`. A request with neither
    /// header does not come from a browser page (browsers send `Origin` on cross-origin POSTs
    /// and WebSockets), so it has no ambient cookie to abuse.
    pub fn same_origin(&self, headers: &HeaderMap, uri: &Uri) -> bool {
        let Some(origin) = headers.get(header::ORIGIN) else {
            return match headers.get("sec-fetch-site").map(|v| v.to_str()) {
                None => true,
                Some(Ok(site)) => matches!(site, "same-origin" | "none"),
                Some(Err(_)) => false,
            };
        };
        let Some(origin) = origin.to_str().ok().and_then(origin_of) else {
            return false;
        };
        // HTTP/1.1 names the host in `Host`, HTTP/2 in the `:authority` of the URI.
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .or_else(|| uri.authority().map(|a| a.as_str()));
        let own = host.is_some_and(|h| {
            origin
                .split_once("://")
                .is_some_and(|(_, o)| o.eq_ignore_ascii_case(h))
        });
        own || self.allowed.contains(&origin)
    }

    /// Why a request must be refused, if it must.
    fn check(&self, method: &Method, uri: &Uri, headers: &HeaderMap) -> Result<(), ApiError> {
        if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
            return Ok(());
        }
        let cookie = matches!(
            Credential::from_headers(headers),
            Some(Credential::Cookie(_))
        );
        // A cross-site login would sign the victim's browser in to someone else's account.
        let login = uri.path() == "/auth/login";
        if !cookie && !login {
            return Ok(());
        }
        if !self.same_origin(headers, uri) {
            return Err(ApiError::Forbidden(
                "cross-site request refused: the session cookie is accepted only from the hub's own origin (send Authorization: Bearer from other clients)".into(),
            ));
        }
        if cookie && uri.path() == "/graphql" {
            let json = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(';').next())
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
            if !json {
                return Err(ApiError::Forbidden(
                    "a GraphQL request authenticated by the session cookie must send content-type: application/json".into(),
                ));
            }
        }
        Ok(())
    }
}

/// The middleware in front of the API routes (GraphQL, `/auth`).
pub async fn guard(State(o): State<Arc<Origins>>, req: Request, next: Next) -> Response {
    match o.check(req.method(), req.uri(), req.headers()) {
        Ok(()) => next.run(req).await,
        Err(e) => {
            tracing::info!(path = req.uri().path(), origin = ?req.headers().get(header::ORIGIN), "cross-site browser request refused");
            if req.uri().path() == "/graphql" {
                let body = serde_json::json!({"errors": [{"message": e.to_string(), "extensions": {"code": e.code()}}]});
                (e.http_status(), axum::Json(body)).into_response()
            } else {
                error_response(&e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    const COOKIE: (&str, &str) = ("cookie", "faultline_session=abc.def.ghi");

    #[test]
    fn cookie_posts_must_be_same_origin_and_json() {
        let o = Origins::new(Some("https://chaos.example.com/"), &[]);
        let uri: Uri = "/graphql".parse().unwrap();
        let post = Method::POST;
        let host = ("host", "hub.internal:8443");
        let json = ("content-type", "application/json; charset=utf-8");
        let ok = |h: &[(&str, &str)]| o.check(&post, &uri, &req(h)).is_ok();
        assert!(ok(&[
            COOKIE,
            host,
            json,
            ("origin", "https://hub.internal:8443")
        ]));
        assert!(ok(&[
            COOKIE,
            host,
            json,
            ("origin", "https://chaos.example.com")
        ]));
        assert!(ok(&[COOKIE, host, json, ("sec-fetch-site", "same-origin")]));
        assert!(ok(&[COOKIE, host, json]), "no browser signals: not a page");
        assert!(!ok(&[
            COOKIE,
            host,
            json,
            ("origin", "https://evil.example")
        ]));
        assert!(!ok(&[COOKIE, host, json, ("origin", "null")]));
        assert!(!ok(&[COOKIE, host, json, ("sec-fetch-site", "cross-site")]));
        assert!(!ok(&[COOKIE, host, json, ("sec-fetch-site", "same-site")]));
        assert!(!ok(&[COOKIE, host, ("content-type", "text/plain")]));
        assert!(!ok(&[
            COOKIE,
            host,
            ("content-type", "multipart/form-data; boundary=x")
        ]));
        assert!(!ok(&[COOKIE, host]));
        // A Bearer token wins over the cookie: no ambient credential is used.
        let bearer = ("authorization", "Bearer fl_api_x");
        assert!(ok(&[
            COOKIE,
            bearer,
            host,
            ("origin", "https://evil.example")
        ]));
        // HTTP/2: the host is the URI's authority.
        let h2: Uri = "https://hub.internal:8443/graphql".parse().unwrap();
        let h = req(&[COOKIE, json, ("origin", "https://hub.internal:8443")]);
        assert!(o.check(&post, &h2, &h).is_ok());
        // Safe methods change nothing and pass.
        let h = req(&[COOKIE, ("origin", "https://evil.example")]);
        assert!(o.check(&Method::GET, &uri, &h).is_ok());
        // Logins are checked without a cookie too.
        let login: Uri = "/auth/login".parse().unwrap();
        let h = req(&[host, ("origin", "https://evil.example")]);
        assert!(o.check(&post, &login, &h).is_err());
        assert!(o.check(&post, &login, &req(&[host])).is_ok());
    }
}
