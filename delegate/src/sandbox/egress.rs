//! Egress: the connections probes, rollbacks and actions open, each to an address the policy
//! allows. A host name is resolved here and every address it resolves to is checked; only the
//! allowed ones are dialled, and when none is, nothing is. HTTP clients get a resolver that
//! does the same for every connection (redirects included), and URLs with an IP literal, which
//! skip any resolver, are checked before each request and each redirect.
use super::{refused, Sandbox};
use faultline_experiment::policy::Policy;
use std::{
    io,
    net::{IpAddr, SocketAddr},
    sync::Arc,
};
use tokio::net::{lookup_host, TcpStream};

/// Most redirects an action follows (probes follow none: the status of the endpoint itself is
/// what counts).
pub const MAX_REDIRECTS: usize = 5;

impl Sandbox {
    /// The addresses of `host:port` this delegate may connect to, in resolver order.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let all: Vec<SocketAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => lookup_host((host, port))
                .await
                .map_err(|e| format!("cannot resolve {host:?}: {e}"))?
                .collect(),
        };
        allowed(&self.policy, host, all)
    }

    /// A TCP connection to the first allowed address of `host:port` that answers.
    pub async fn connect(&self, host: &str, port: u16) -> Result<TcpStream, ConnectError> {
        let addrs = self
            .resolve(host, port)
            .await
            .map_err(ConnectError::Refused)?;
        let mut last = io::Error::new(io::ErrorKind::NotFound, "the host has no addresses");
        for addr in &addrs {
            match TcpStream::connect(addr).await {
                Ok(s) => return Ok(s),
                Err(e) => last = e,
            }
        }
        Err(ConnectError::Io(last))
    }

    /// Why a request to `url` may not be sent: its port, or its host when it is an IP literal
    /// (names are checked by the client's resolver when it dials).
    pub fn check_url(&self, url: &reqwest::Url) -> Result<(), String> {
        check_url(&self.policy, url)
    }

    /// An HTTP client builder whose every connection obeys the policy; `redirects` is how many
    /// it follows (each one re-checked).
    pub fn http_client(&self, redirects: usize) -> reqwest::ClientBuilder {
        let policy = self.policy.clone();
        let redirect = if redirects == 0 {
            reqwest::redirect::Policy::none()
        } else {
            reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() > redirects {
                    return attempt.error(format!("more than {redirects} redirects"));
                }
                match check_url(&policy, attempt.url()) {
                    Ok(()) => attempt.follow(),
                    Err(e) => {
                        let to = attempt.url().to_string();
                        attempt.error(format!("redirect to {to}: {e}"))
                    }
                }
            })
        };
        reqwest::Client::builder()
            .dns_resolver(Arc::new(PolicyResolver(self.policy.clone())))
            .redirect(redirect)
            // Probes target the system under test directly; an ambient HTTP_PROXY would measure
            // (and reach) the proxy instead.
            .no_proxy()
    }
}

/// Why a connection was not made.
#[derive(Debug)]
pub enum ConnectError {
    /// The policy allows none of the addresses.
    Refused(String),
    Io(io::Error),
}

fn check_url(policy: &Policy, url: &reqwest::Url) -> Result<(), String> {
    let port = url
        .port_or_known_default()
        .ok_or_else(|| format!("{url} has no port"))?;
    let checked = match url.host() {
        Some(url::Host::Ipv4(a)) => policy.address(a.into(), port),
        Some(url::Host::Ipv6(a)) => policy.address(a.into(), port),
        Some(url::Host::Domain(_)) => policy.port(port),
        None => Err(format!("{url} has no host")),
    };
    checked.map_err(refused)
}

/// Keeps the allowed addresses; refuses with the first reason when none is.
fn allowed(policy: &Policy, host: &str, all: Vec<SocketAddr>) -> Result<Vec<SocketAddr>, String> {
    let mut why = None;
    let ok: Vec<SocketAddr> = all
        .into_iter()
        .filter(|a| match policy.address(a.ip(), a.port()) {
            Ok(()) => true,
            Err(e) => {
                why.get_or_insert(e);
                false
            }
        })
        .collect();
    match (ok.is_empty(), why) {
        (false, _) => Ok(ok),
        (true, Some(e)) if host.parse::<IpAddr>().is_ok() => Err(refused(e)),
        (true, Some(e)) => Err(refused(format!("{host}: {e}"))),
        (true, None) => Err(format!("{host} has no addresses")),
    }
}

/// The resolver of every HTTP client a template's steps use: only allowed addresses come back.
struct PolicyResolver(Arc<Policy>);

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let all: Vec<SocketAddr> = lookup_host((host.as_str(), 0)).await?.collect();
            // The port is checked on the URL; here only the address counts.
            let mut why = None;
            let ok: Vec<SocketAddr> = all
                .into_iter()
                .filter(|a| match policy.ip(a.ip()) {
                    Ok(()) => true,
                    Err(e) => {
                        why.get_or_insert(e);
                        false
                    }
                })
                .collect();
            if ok.is_empty() {
                let e = why.unwrap_or_else(|| "no addresses".into());
                let e = io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    refused(format!("{host}: {e}")),
                );
                return Err(Box::new(e) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(ok.into_iter()) as reqwest::dns::Addrs)
        })
    }
}
