//! The `tcp` probe: one connection attempt to `host:port`, closed again at once. `expect: open`
//! passes when the connection is made; `expect: closed` passes when it is refused, unreachable
//! or unanswered within the timeout (a negative check, e.g. that a partition holds). A host that
//! does not resolve fails either way: that says nothing about the port. So does an address
//! the delegate's allow-list refuses: nothing is dialled.
use super::{io_error_text, ms, Check, Probe};
use crate::sandbox::Sandbox;
use faultline_experiment::probes::{split_host_port, Probe as ProbeSpec, TcpExpect};
use futures::future::BoxFuture;
use std::{io, net::SocketAddr, time::Instant};
use tokio::net::TcpStream;

pub struct TcpProbe {
    pub sandbox: Sandbox,
}

/// How an attempt ended, before the expectation is applied.
enum Outcome {
    Connected(SocketAddr),
    /// Refused or unreachable, in a few words.
    Closed(String),
    TimedOut,
}

impl TcpProbe {
    async fn run(&self, spec: &ProbeSpec) -> Check {
        let start = Instant::now();
        let Some(tcp) = &spec.tcp else {
            return Check::fail(start, "not a tcp probe");
        };
        let (host, port) = match split_host_port(&tcp.address) {
            Ok(hp) => hp,
            Err(e) => return Check::fail(start, e),
        };
        let deadline = tokio::time::Instant::from_std(start + spec.timeout.0);
        // Every address the name resolves to is checked; a refusal fails either expectation.
        let resolved = tokio::time::timeout_at(deadline, self.sandbox.resolve(&host, port)).await;
        let addrs: Vec<SocketAddr> = match resolved {
            Ok(Ok(a)) => a,
            Ok(Err(e)) => return Check::fail(start, e),
            Err(_) => {
                let why = format!("cannot resolve {host:?} within {}", spec.timeout);
                return Check::fail(start, why);
            }
        };
        let outcome = tokio::time::timeout_at(deadline, connect_any(&addrs))
            .await
            .unwrap_or(Outcome::TimedOut);
        let latency_ms = ms(start);
        let (ok, detail) = match (tcp.expect, outcome) {
            (TcpExpect::Open, Outcome::Connected(a)) => {
                (true, format!("connected to {a} in {latency_ms:.1}ms"))
            }
            (TcpExpect::Open, Outcome::Closed(why)) => (false, why),
            (TcpExpect::Open, Outcome::TimedOut) => {
                (false, format!("timed out after {}", spec.timeout))
            }
            (TcpExpect::Closed, Outcome::Connected(a)) => (
                false,
                format!("{a} is open (connected in {latency_ms:.1}ms), expected closed"),
            ),
            (TcpExpect::Closed, Outcome::Closed(why)) => (true, format!("closed: {why}")),
            (TcpExpect::Closed, Outcome::TimedOut) => {
                (true, format!("closed: no answer within {}", spec.timeout))
            }
        };
        Check::timed(ok, latency_ms, detail)
    }
}

/// Tries each address in turn, as a client would; the last error wins.
async fn connect_any(addrs: &[SocketAddr]) -> Outcome {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the host has no addresses");
    for addr in addrs {
        match TcpStream::connect(addr).await {
            // Dropped at once: the probe only asks whether the port takes connections.
            Ok(_) => return Outcome::Connected(*addr),
            Err(e) => last = e,
        }
    }
    Outcome::Closed(io_error_text(&last))
}

impl Probe for TcpProbe {
    fn kind(&self) -> &'static str {
        "tcp"
    }

    fn check<'a>(&'a self, spec: &'a ProbeSpec) -> BoxFuture<'a, Check> {
        Box::pin(self.run(spec))
    }
}
