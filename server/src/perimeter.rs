//! The hub's perimeter, applied to every request before routing: the client's address (through
//! trusted reverse proxies only), the access allow-lists (one for the dashboard and API, one for
//! the delegates' gRPC), per-client rate limits, and security headers.
use crate::error::ApiError;
use crate::identity::routes::error_response;
use axum::{
    extract::{FromRequestParts, Request, State},
    http::{header, request::Parts, HeaderMap, HeaderValue, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ipnet::IpNet;
use std::{
    net::{IpAddr, SocketAddr},
    num::NonZeroU32,
    sync::Arc,
};

/// The TCP peer of a connection, put on each request by the server loop.
#[derive(Clone, Copy, Debug)]
pub struct PeerAddr(pub SocketAddr);

/// The client's address: the peer, or what trusted proxies say in `X-Forwarded-For`.
#[derive(Clone, Copy, Debug)]
pub struct ClientIp(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<ClientIp>()
            .copied()
            .or_else(|| {
                parts
                    .extensions
                    .get::<PeerAddr>()
                    .map(|p| ClientIp(p.0.ip()))
            })
            .ok_or_else(|| StatusCode::INTERNAL_SERVER_ERROR.into_response())
    }
}

/// What the perimeter enforces (from flags and the configuration file).
#[derive(Debug, Default, Clone)]
pub struct Rules {
    /// Who may reach the dashboard, GraphQL and `/auth`; empty = everyone.
    pub api_allow: Vec<IpNet>,
    /// Who may reach the delegates' gRPC service; empty = everyone.
    pub grpc_allow: Vec<IpNet>,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// API requests per second per client address (0 = unlimited), bursts of 2 s worth.
    pub rate_per_sec: u32,
    /// Send `Strict-Transport-Security` (when serving HTTPS).
    pub hsts: bool,
}

pub struct Perimeter {
    rules: Rules,
    limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
}

impl Perimeter {
    pub fn new(rules: Rules) -> Arc<Perimeter> {
        let limiter = NonZeroU32::new(rules.rate_per_sec).map(|r| {
            let burst = r.saturating_mul(NonZeroU32::new(2).expect("2 is not zero"));
            RateLimiter::keyed(Quota::per_second(r).allow_burst(burst))
        });
        Arc::new(Perimeter { rules, limiter })
    }

    /// The client address: the peer unless the peer is a trusted proxy, in which case the
    /// right-most `X-Forwarded-For` entry that is not itself a trusted proxy.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        client_ip(&self.rules.trusted_proxies, peer, headers)
    }
}

pub fn client_ip(trusted: &[IpNet], peer: IpAddr, headers: &HeaderMap) -> IpAddr {
    let peer = canonical(peer);
    if !trusted.iter().any(|n| n.contains(&peer)) {
        return peer;
    }
    let hops: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse::<IpAddr>().ok())
        .map(canonical)
        .collect();
    hops.iter()
        .rev()
        .find(|ip| !trusted.iter().any(|n| n.contains(*ip)))
        .or(hops.first())
        .copied()
        .unwrap_or(peer)
}

/// IPv4-mapped IPv6 addresses as IPv4, so `127.0.0.0/8` matches `::ffff:127.0.0.1`.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

fn is_grpc(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/grpc"))
}

/// The middleware: address, allow-list, rate limit, then the route, then security headers.
pub async fn guard(State(p): State<Arc<Perimeter>>, mut req: Request, next: Next) -> Response {
    let Some(peer) = req.extensions().get::<PeerAddr>().map(|a| a.0) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let ip = p.client_ip(peer.ip(), req.headers());
    req.extensions_mut().insert(ClientIp(ip));
    let grpc = is_grpc(&req);
    let allow = if grpc {
        &p.rules.grpc_allow
    } else {
        &p.rules.api_allow
    };
    if !allow.is_empty() && !allow.iter().any(|n| n.contains(&ip)) {
        tracing::info!(%ip, grpc, path = req.uri().path(), "refused by the access allow-list");
        if grpc {
            return tonic::Status::permission_denied(format!("address {ip} is not allowed"))
                .into_http();
        }
        return (
            StatusCode::FORBIDDEN,
            format!("address {ip} is not allowed to reach this hub\n"),
        )
            .into_response();
    }
    if !grpc {
        if let Some(l) = &p.limiter {
            if l.check_key(&ip).is_err() {
                return error_response(&ApiError::RateLimited(
                    "too many requests from this address; slow down".into(),
                ));
            }
        }
    }
    let graphiql = req.uri().path() == "/graphql" && req.method() == axum::http::Method::GET;
    let mut resp = next.run(req).await;
    if !grpc {
        security_headers(resp.headers_mut(), p.rules.hsts, graphiql);
    }
    resp
}

/// The dashboard's and API's security headers. GraphiQL (`GET /graphql`) loads only the hub's own
/// files too; its editor sets inline styles and draws icons from data: URLs.
fn security_headers(h: &mut HeaderMap, hsts: bool, graphiql: bool) {
    let csp = if graphiql {
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data:; font-src 'self' data:; connect-src 'self'; \
         frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    } else {
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
         form-action 'self'"
    };
    let set = |h: &mut HeaderMap, k: &'static str, v: &'static str| {
        h.entry(k).or_insert(HeaderValue::from_static(v));
    };
    set(h, "content-security-policy", csp);
    set(h, "x-content-type-options", "nosniff");
    set(h, "x-frame-options", "DENY");
    set(h, "referrer-policy", "no-referrer");
    if hsts {
        set(
            h,
            "strict-transport-security",
            "max-age=31536000; includeSubDomains",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(s: &[&str]) -> Vec<IpNet> {
        s.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn forwarded_addresses_count_only_behind_trusted_proxies() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "203.0.113.9, 10.0.0.5".parse().unwrap());
        let trusted = nets(&["10.0.0.0/8"]);
        let peer: IpAddr = "10.0.0.7".parse().unwrap();
        // Trusted peer: the right-most untrusted hop is the client.
        assert_eq!(
            client_ip(&trusted, peer, &h),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        // An untrusted peer's header is ignored (it could say anything).
        let outsider: IpAddr = "198.51.100.1".parse().unwrap();
        assert_eq!(client_ip(&trusted, outsider, &h), outsider);
        // Nothing trusted configured: the peer, always.
        assert_eq!(client_ip(&[], peer, &h), peer);
        // A client cannot hide behind a forged left-most entry.
        h.insert(
            "x-forwarded-for",
            "127.0.0.1, 198.51.100.2".parse().unwrap(),
        );
        assert_eq!(
            client_ip(&trusted, peer, &h),
            "198.51.100.2".parse::<IpAddr>().unwrap()
        );
        // Mapped IPv6 peers match IPv4 lists.
        let mapped: IpAddr = "::ffff:10.0.0.7".parse().unwrap();
        assert_eq!(
            client_ip(&trusted, mapped, &h),
            "198.51.100.2".parse::<IpAddr>().unwrap()
        );
    }
}
