//! Sending: every replica's delivery loop and its HTTP client. The client is bounded (timeout,
//! no redirects, no proxy from the environment, responses read up to 64 KiB) and resolves host
//! names through the egress policy, so a webhook cannot reach what the policy does not allow,
//! even by a name that resolves to an internal address.
use super::{formats, outbox, Settings};
use chrono::Utc;
use ipnet::IpNet;
use sqlx::PgPool;
use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::{Duration, Instant},
};
use tokio::sync::{watch, Notify};

/// Deliveries one replica sends at once.
const BATCH: i64 = 16;
/// The response bytes read (the rest is dropped); the first [`EXCERPT`] are kept.
const READ_LIMIT: usize = 64 * 1024;
const EXCERPT: usize = 1024;
/// The longest sleep between two looks at the outbox (a lost notification only delays).
const POLL: Duration = Duration::from_secs(2);
/// How often each replica prunes old history ([`outbox::RETENTION`]).
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Where webhooks may send (`--webhook-allow`).
#[derive(Clone, Debug, Default)]
pub struct Egress {
    nets: Vec<IpNet>,
    /// Exact host names, or suffixes when they start with `.` (from `*.example.com`).
    names: Vec<String>,
}

impl Egress {
    pub fn parse(entries: &[String]) -> anyhow::Result<Egress> {
        let mut e = Egress::default();
        for raw in entries.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
            if let Ok(n) = raw.parse::<IpNet>() {
                e.nets.push(n);
            } else if let Ok(ip) = raw.parse::<IpAddr>() {
                e.nets.push(IpNet::from(ip));
            } else if let Some(suffix) = raw.strip_prefix("*.") {
                e.names.push(format!(".{}", suffix.to_ascii_lowercase()));
            } else if raw
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
            {
                e.names.push(raw.to_ascii_lowercase());
            } else {
                anyhow::bail!(
                    "--webhook-allow: {raw:?} is neither a CIDR, an address, a host name nor *.suffix"
                );
            }
        }
        Ok(e)
    }

    fn restricted(&self) -> bool {
        !self.nets.is_empty() || !self.names.is_empty()
    }

    fn name_allowed(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.names.iter().any(|n| match n.strip_prefix('.') {
            Some(_) => host.ends_with(n.as_str()),
            None => *n == host,
        })
    }

    /// Whether `ip` may be reached (`by_name`: the host name itself is allowed).
    fn ip_allowed(&self, ip: IpAddr, by_name: bool) -> bool {
        if by_name {
            return true;
        }
        if self.restricted() {
            let ip = canonical(ip);
            return self.nets.iter().any(|n| n.contains(&ip));
        }
        is_public(ip)
    }

    /// Checks what can be checked without resolving: a literal address, or a name when only
    /// listed names and no CIDR could allow it.
    pub fn check_url(&self, u: &url::Url) -> Result<(), String> {
        match u.host() {
            Some(url::Host::Ipv4(ip)) => self.check_ip(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => self.check_ip(IpAddr::V6(ip)),
            Some(url::Host::Domain(d)) => {
                if self.restricted() && self.nets.is_empty() && !self.name_allowed(d) {
                    return Err(format!(
                        "{d} is not in the hub's webhook allow-list (--webhook-allow)"
                    ));
                }
                Ok(())
            }
            None => Err("the URL has no host".into()),
        }
    }

    fn check_ip(&self, ip: IpAddr) -> Result<(), String> {
        if self.ip_allowed(ip, false) {
            Ok(())
        } else if self.restricted() {
            Err(format!(
                "{ip} is not in the hub's webhook allow-list (--webhook-allow)"
            ))
        } else {
            Err(format!(
                "{ip} is not a public address; an operator can allow it with --webhook-allow"
            ))
        }
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// Not loopback, private, link-local (cloud metadata), shared, documentation, multicast or
/// otherwise special.
pub fn is_public(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(a) => {
            let o = a.octets();
            !(a.is_loopback()
                || a.is_private()
                || a.is_link_local()
                || a.is_unspecified()
                || a.is_broadcast()
                || a.is_multicast()
                || a.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || (o[0] == 198 && (o[1] == 18 || o[1] == 19))
                || o[0] >= 240)
        }
        IpAddr::V6(a) => {
            let s = a.segments();
            !(a.is_loopback()
                || a.is_unspecified()
                || a.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] == 0x2001 && s[1] == 0x0db8)
                || (s[0] == 0x64 && s[1] == 0xff9b))
        }
    }
}

/// Resolves names for the webhook client, keeping only addresses the policy allows.
struct Resolver(Arc<Egress>);

impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let egress = self.0.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let by_name = egress.name_allowed(&host);
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = all
                .iter()
                .copied()
                .filter(|a| egress.ip_allowed(a.ip(), by_name))
                .collect();
            if allowed.is_empty() {
                return Err(format!(
                    "refused by the webhook egress policy: {host} resolves to no allowed address"
                )
                .into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

pub fn client(s: &Settings) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(s.timeout)
        .connect_timeout(s.timeout.min(Duration::from_secs(5)))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(Arc::new(Resolver(Arc::new(s.egress.clone()))))
        .user_agent(concat!("faultline-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()?)
}

/// Delivers until `stop`: claims due deliveries, sends them, records each attempt; sleeps until
/// the next is due, a notification (`faultline_webhooks`) or [`POLL`].
pub async fn run(
    pool: PgPool,
    settings: Settings,
    replica: String,
    wake: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    let client = match client(&settings) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "webhook client could not be built; no webhook is sent");
            return;
        }
    };
    // Longer than one attempt can take, so a live replica's attempt is never taken over.
    let lease = settings.timeout + Duration::from_secs(20);
    let mut pruned_at: Option<Instant> = None;
    loop {
        if *stop.borrow() {
            return;
        }
        if pruned_at.is_none_or(|t| t.elapsed() > PRUNE_EVERY) {
            pruned_at = Some(Instant::now());
            match outbox::prune(&pool, outbox::RETENTION).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(events = n, "pruned old webhook events"),
                Err(e) => tracing::warn!(error = %e, "pruning webhook events failed"),
            }
        }
        let claimed = match outbox::claim(&pool, BATCH, lease).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "claiming webhook deliveries failed");
                tokio::select! { _ = tokio::time::sleep(POLL) => continue, _ = stop.changed() => return }
            }
        };
        if claimed.is_empty() {
            let wait = match outbox::next_due(&pool).await {
                Ok(Some(d)) => d.clamp(Duration::from_millis(20), POLL),
                _ => POLL,
            };
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => return,
            }
            continue;
        }
        let sends = claimed
            .iter()
            .map(|c| send_and_record(&client, &pool, &settings, &replica, c));
        // On shutdown the attempts in flight are dropped: their lease expires and they are
        // sent again, by this hub after a restart or by another replica.
        tokio::select! {
            _ = futures::future::join_all(sends) => {}
            _ = stop.changed() => return,
        }
    }
}

async fn send_and_record(
    client: &reqwest::Client,
    pool: &PgPool,
    s: &Settings,
    replica: &str,
    c: &outbox::Claimed,
) {
    let o = send(client, s, c).await;
    let host = url::Url::parse(&c.url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    match outbox::record(pool, c, &o, s, replica).await {
        Ok(state) => {
            // An attempt that failed with retries left is a `retry`.
            let outcome = if state == "pending" { "retry" } else { state };
            crate::metrics::Metrics::outcome(&crate::metrics::get().webhook_deliveries, outcome);
            tracing::debug!(
            delivery = %c.delivery, attempt = c.attempt, %host, status = ?o.status,
            error = ?o.error, state, "webhook attempt"
            )
        }
        Err(e) => {
            tracing::warn!(delivery = %c.delivery, error = %e, "recording a webhook attempt failed")
        }
    }
}

/// One attempt: render, sign, POST, read a bounded response.
pub async fn send(client: &reqwest::Client, s: &Settings, c: &outbox::Claimed) -> outbox::Outcome {
    let link = formats::run_link(s.public_url.as_deref(), &c.event);
    let body = formats::body(c.format, &c.event, link.as_deref());
    let at = Utc::now();
    let started = Instant::now();
    let secret = match s.secrets.open(&c.secret, c.webhook.as_bytes()) {
        Ok(x) => x,
        Err(e) => return failed(at, started, format!("cannot sign: {e}")),
    };
    let sig = formats::signature(&secret, at.timestamp(), &body);
    let url = match url::Url::parse(&c.url) {
        Ok(u) => u,
        Err(e) => return failed(at, started, format!("invalid URL: {e}")),
    };
    // Literal addresses bypass the resolver: check them here (the policy may have changed
    // since the webhook was created).
    if let Err(e) = s.egress.check_url(&url) {
        return failed(
            at,
            started,
            format!("refused by the webhook egress policy: {e}"),
        );
    }
    let res = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(formats::SIGNATURE_HEADER, sig)
        .header("x-faultline-event", &c.event.kind)
        .header("x-faultline-event-id", c.event.id.to_string())
        .header("x-faultline-delivery", c.delivery.to_string())
        .header("x-faultline-attempt", c.attempt.to_string())
        .body(body)
        .send()
        .await;
    let mut resp = match res {
        Ok(r) => r,
        Err(e) => return failed(at, started, error_text(&e)),
    };
    let status = resp.status().as_u16();
    let mut buf: Vec<u8> = Vec::new();
    let mut error = None;
    while buf.len() < READ_LIMIT {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                buf.extend_from_slice(&chunk[..chunk.len().min(READ_LIMIT - buf.len())])
            }
            Ok(None) => break,
            Err(e) => {
                // The status counts; a broken body after it is noted only.
                error = (!(200..300).contains(&status)).then(|| error_text(&e));
                break;
            }
        }
    }
    outbox::Outcome {
        at,
        status: Some(status),
        latency: started.elapsed(),
        response: Some(excerpt(&buf)),
        error,
    }
}

fn failed(at: chrono::DateTime<Utc>, started: Instant, error: String) -> outbox::Outcome {
    outbox::Outcome {
        at,
        status: None,
        latency: started.elapsed(),
        response: None,
        error: Some(error),
    }
}

/// The error with its causes (reqwest's own message is often just "error sending request"),
/// without the URL, which may carry a token.
fn error_text(e: &reqwest::Error) -> String {
    // reqwest's own Display names the URL; its kind and causes do not.
    let mut out = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "reading the response failed"
    } else {
        "request failed"
    }
    .to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out.chars().take(EXCERPT).collect()
}

/// The first KiB of the response as text, cut at a character boundary.
fn excerpt(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(&b[..b.len().min(EXCERPT + 4)]);
    let mut out = String::new();
    for ch in s.chars() {
        if out.len() + ch.len_utf8() > EXCERPT {
            break;
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_policy_refuses_internal_addresses() {
        let e = Egress::default();
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "169.254.169.254",
            "::1",
            "fd00::1",
            "::ffff:192.168.1.1",
            "100.64.0.1",
        ] {
            assert!(!e.ip_allowed(ip.parse().unwrap(), false), "{ip}");
        }
        for ip in ["8.8.8.8", "2606:4700::1111"] {
            assert!(e.ip_allowed(ip.parse().unwrap(), false), "{ip}");
        }
        let u = url::Url::parse("http://127.0.0.1:9/x").unwrap();
        assert!(e.check_url(&u).unwrap_err().contains("--webhook-allow"));
    }

    #[test]
    fn allow_list_is_the_only_way_out_when_given() {
        let e = Egress::parse(&[
            "127.0.0.0/8".into(),
            "*.example.com".into(),
            "hooks.slack.com".into(),
        ])
        .unwrap();
        assert!(e.ip_allowed("127.0.0.1".parse().unwrap(), false));
        assert!(!e.ip_allowed("8.8.8.8".parse().unwrap(), false));
        assert!(e.name_allowed("a.b.example.com") && e.name_allowed("HOOKS.slack.com."));
        assert!(!e.name_allowed("example.com.evil.net"));
        assert!(Egress::parse(&["no/pe".into()]).is_err());
    }

    #[test]
    fn excerpt_is_at_most_a_kib_on_a_char_boundary() {
        let s = "é".repeat(2000);
        let x = excerpt(s.as_bytes());
        assert!(x.len() <= EXCERPT && x.len() >= EXCERPT - 1);
    }
}
