//! A small TCP load balancer for the tests: one loopback address in front of several hub
//! replicas, as a Kubernetes Service or an L4 balancer puts them. TLS passes through untouched
//! (the replicas share one certificate). Each new connection goes to the next backend in
//! round-robin order; a backend that refuses (or does not answer within a second) is skipped for
//! the next one, so a replica that is down or shutting down gets no new connections.
//!
//! It also plays the network's part in the soak: [`Balancer::reset_client`] cuts one client's
//! connection with a TCP reset, as a dropped link or a NAT timeout does.
use anyhow::{Context, Result};
use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::oneshot,
};

/// How long one backend gets to accept a connection before the next is tried.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Counters the tests read.
#[derive(Debug, Default)]
pub struct LbStats {
    /// Connections relayed, per backend index.
    pub relayed: Vec<AtomicU64>,
    /// Backend connection attempts that failed (and went on to the next backend).
    pub skipped: AtomicU64,
    /// Clients closed because no backend accepted.
    pub refused: AtomicU64,
    /// Connections cut by [`Balancer::reset_client`].
    pub resets: AtomicU64,
}

struct Conn {
    /// Cuts this connection with a reset.
    kill: oneshot::Sender<()>,
}

pub struct Balancer {
    pub addr: SocketAddr,
    pub stats: Arc<LbStats>,
    /// Live connections by the client's address.
    conns: Arc<Mutex<HashMap<SocketAddr, Conn>>>,
    stop: Option<oneshot::Sender<()>>,
}

impl Balancer {
    /// Listens on `127.0.0.1:port` (0: any free port) in front of `backends`.
    pub async fn start(port: u16, backends: Vec<SocketAddr>) -> Result<Balancer> {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .context("bind the load balancer")?;
        let addr = listener.local_addr()?;
        let stats = Arc::new(LbStats {
            relayed: backends.iter().map(|_| AtomicU64::new(0)).collect(),
            ..Default::default()
        });
        let conns: Arc<Mutex<HashMap<SocketAddr, Conn>>> = Arc::default();
        let (stop_tx, mut stop_rx) = oneshot::channel();
        let next = Arc::new(AtomicUsize::new(0));
        let backends = Arc::new(backends);
        let (s2, c2) = (stats.clone(), conns.clone());
        tokio::spawn(async move {
            loop {
                let (client, peer) = tokio::select! {
                    r = listener.accept() => match r {
                        Ok(c) => c,
                        Err(_) => { tokio::time::sleep(Duration::from_millis(20)).await; continue }
                    },
                    _ = &mut stop_rx => return,
                };
                let (stats, conns, backends, next) =
                    (s2.clone(), c2.clone(), backends.clone(), next.clone());
                tokio::spawn(async move {
                    let first = next.fetch_add(1, Ordering::Relaxed);
                    let mut upstream = None;
                    for i in 0..backends.len() {
                        let at = (first + i) % backends.len();
                        match tokio::time::timeout(
                            CONNECT_TIMEOUT,
                            TcpStream::connect(backends[at]),
                        )
                        .await
                        {
                            Ok(Ok(s)) => {
                                upstream = Some((at, s));
                                break;
                            }
                            _ => {
                                stats.skipped.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    let Some((at, mut server)) = upstream else {
                        stats.refused.fetch_add(1, Ordering::Relaxed);
                        return;
                    };
                    stats.relayed[at].fetch_add(1, Ordering::Relaxed);
                    let _ = server.set_nodelay(true);
                    let mut client = client;
                    let _ = client.set_nodelay(true);
                    let (kill, mut killed) = oneshot::channel();
                    conns.lock().unwrap().insert(peer, Conn { kill });
                    let cut = tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => false,
                        _ = &mut killed => true,
                    };
                    conns.lock().unwrap().remove(&peer);
                    if cut {
                        // A reset both ways, not a clean close: what a broken link looks like.
                        let _ = socket2::SockRef::from(&client).set_linger(Some(Duration::ZERO));
                        let _ = socket2::SockRef::from(&server).set_linger(Some(Duration::ZERO));
                        stats.resets.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
        });
        Ok(Balancer {
            addr,
            stats,
            conns,
            stop: Some(stop_tx),
        })
    }

    /// `https://127.0.0.1:PORT`: the one address clients are given.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// Cuts the connection whose client side is `127.0.0.1:port` with a TCP reset; false if
    /// there is none.
    pub fn reset_client(&self, port: u16) -> bool {
        let peer = SocketAddr::from(([127, 0, 0, 1], port));
        match self.conns.lock().unwrap().remove(&peer) {
            Some(c) => c.kill.send(()).is_ok(),
            None => false,
        }
    }

    /// Client addresses of the connections being relayed now.
    pub fn clients(&self) -> Vec<SocketAddr> {
        self.conns.lock().unwrap().keys().copied().collect()
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        for (_, c) in self.conns.lock().unwrap().drain() {
            let _ = c.kill.send(());
        }
    }
}

/// The local ports of `pid`'s TCP connections to `remote` (from /proc/PID/fd and
/// /proc/net/tcp): how the soak finds which relayed connection is a given delegate's.
pub fn tcp_ports_to(pid: i32, remote: SocketAddr) -> Vec<u16> {
    let inodes: std::collections::HashSet<u64> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter_map(|l| {
            l.to_str()?
                .strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect();
    let want = format!("0100007F:{:04X}", remote.port());
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (local, rem, inode) = (f.get(1)?, f.get(2)?, f.get(9)?.parse::<u64>().ok()?);
            if *rem != want || !inodes.contains(&inode) {
                return None;
            }
            u16::from_str_radix(local.rsplit_once(':')?.1, 16).ok()
        })
        .collect()
}
