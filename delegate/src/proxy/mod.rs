//! The TCP fault proxy: named proxies (a listener and an upstream) whose connections pass through
//! chains of Toxiproxy-style toxics, one chain per direction.
//!
//! [`Registry`] owns the proxies; the `tcp-proxy` fault and the Toxiproxy-compatible HTTP API
//! ([`api`]) share one ([`Registry::global`]). Each [`Proxy`] publishes its toxics on a watch
//! channel, so toxics added, changed or removed reach established connections at once, without
//! dropping them. The data path (two pumps per connection) lives in [`link`]. Proxies live in
//! this process only: they die with it, and nothing here outlives the delegate.
use faultline_experiment::faults::{Stream, ToxicSpec};
use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, LazyLock, Mutex,
    },
    time::Duration,
};
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};

pub mod api;
mod link;
pub mod standalone;

/// How long connecting to the upstream may take before the client's connection is closed.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("proxy not found")]
    NotFound,
    #[error("proxy already exists")]
    AlreadyExists,
    #[error("toxic not found")]
    ToxicNotFound,
    #[error("toxic already exists")]
    ToxicExists,
    #[error("listen tcp {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

/// Delegate shutdown, after the faults' reverts (which stop the proxies of `tcp-proxy` steps):
/// the API drains and stops the proxies made through it.
pub async fn shut_down(api: Option<api::Running>) {
    if let Some(api) = api {
        api.stop().await;
    }
}

/// All proxies of this process, by name. Clones share the proxies; an [`Registry::owner`]
/// handle also marks the proxies it creates as its own, so whoever made them (the API) can stop
/// exactly those and leave the others alone.
#[derive(Clone, Default)]
pub struct Registry {
    proxies: Arc<Mutex<BTreeMap<String, Arc<Proxy>>>>,
    /// Stamped on the proxies this handle creates; 0 for the shared handle.
    owner: u64,
    /// Busy-poll window in microseconds ([`Registry::set_busy_poll`]), shared by all handles.
    busy_poll_us: Arc<AtomicU64>,
}

static OWNERS: AtomicU64 = AtomicU64::new(1);

static GLOBAL: LazyLock<Registry> = LazyLock::new(Registry::default);

impl Registry {
    /// The registry the `tcp-proxy` fault and the delegate's Toxiproxy API share.
    pub fn global() -> &'static Registry {
        &GLOBAL
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Arc<Proxy>>> {
        self.proxies.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The same proxies, through a handle whose creations are its own (see
    /// [`Registry::remove_own`]).
    pub fn owner(&self) -> Registry {
        Registry {
            proxies: self.proxies.clone(),
            owner: OWNERS.fetch_add(1, Ordering::Relaxed),
            busy_poll_us: self.busy_poll_us.clone(),
        }
    }

    /// How long a connection's idle pump keeps polling its socket before it parks, for proxies
    /// created from now on (0, the default, never polls). Polling trades CPU for latency: on a
    /// virtual machine, waking a parked thread from an idle vCPU costs tens of microseconds per
    /// hop (what haproxy's `busy-polling` option addresses).
    pub fn set_busy_poll(&self, window: Duration) {
        self.busy_poll_us.store(
            window.as_micros().min(u64::MAX as u128) as u64,
            Ordering::Relaxed,
        );
    }

    /// Stops and forgets the proxies this handle created (none for the shared handle).
    pub fn remove_own(&self) -> Vec<JoinHandle<()>> {
        if self.owner == 0 {
            return Vec::new();
        }
        let mut proxies = self.lock();
        let own: Vec<String> = proxies
            .iter()
            .filter(|(_, p)| p.owner == self.owner)
            .map(|(n, _)| n.clone())
            .collect();
        own.iter()
            .filter_map(|n| proxies.remove(n))
            .filter_map(|p| p.stop())
            .collect()
    }

    /// Creates a proxy and, when `enabled`, binds its listener (so a bad address fails here).
    /// Needs a tokio runtime.
    pub fn create(
        &self,
        name: &str,
        listen: &str,
        upstream: &str,
        enabled: bool,
    ) -> Result<Arc<Proxy>, ProxyError> {
        let mut proxies = self.lock();
        if proxies.contains_key(name) {
            return Err(ProxyError::AlreadyExists);
        }
        let mut proxy = Proxy::new(name, listen, upstream);
        proxy.owner = self.owner;
        proxy.busy_poll = Duration::from_micros(self.busy_poll_us.load(Ordering::Relaxed));
        let proxy = Arc::new(proxy);
        if enabled {
            proxy.start()?;
        }
        proxies.insert(name.to_string(), proxy.clone());
        Ok(proxy)
    }

    pub fn get(&self, name: &str) -> Result<Arc<Proxy>, ProxyError> {
        self.lock().get(name).cloned().ok_or(ProxyError::NotFound)
    }

    /// Every proxy, by name.
    pub fn list(&self) -> Vec<Arc<Proxy>> {
        self.lock().values().cloned().collect()
    }

    /// Removes the proxy and stops it (listener and connections closed). The handle resolves
    /// once the listener is closed.
    pub fn remove(&self, name: &str) -> Result<Option<JoinHandle<()>>, ProxyError> {
        let proxy = self.lock().remove(name).ok_or(ProxyError::NotFound)?;
        Ok(proxy.stop())
    }

    /// Removes `proxy` only if it is still the one registered under its name.
    pub fn remove_exact(&self, proxy: &Arc<Proxy>) -> bool {
        let mut proxies = self.lock();
        match proxies.get(&proxy.name) {
            Some(p) if Arc::ptr_eq(p, proxy) => {
                proxies.remove(&proxy.name);
                drop(proxies);
                proxy.stop();
                true
            }
            _ => false,
        }
    }

    /// Stops and forgets every proxy (delegate shutdown).
    pub fn clear(&self) -> Vec<JoinHandle<()>> {
        let all = std::mem::take(&mut *self.lock());
        all.into_values().filter_map(|p| p.stop()).collect()
    }
}

/// One proxy: where it listens, where it forwards, and its toxics.
pub struct Proxy {
    pub name: String,
    state: Mutex<ProxyState>,
    /// The toxics of both directions in the order they were added; each pump takes its own.
    toxics: watch::Sender<Vec<ToxicSpec>>,
    /// Connections accepted since the proxy was created, for the fault's detail.
    accepted: Arc<AtomicU64>,
    /// The registry handle that created it ([`Registry::owner`]).
    owner: u64,
    /// Its connections' busy-poll window ([`Registry::set_busy_poll`]).
    busy_poll: Duration,
}

struct ProxyState {
    /// As configured, then the bound address once listening (so port 0 shows the real port).
    listen: String,
    upstream: String,
    /// The running listener: its stop signal (also seen by its connections) and its task.
    running: Option<(watch::Sender<bool>, JoinHandle<()>)>,
}

/// A proxy as the Toxiproxy API shows it (without toxics).
#[derive(Clone, Debug, PartialEq)]
pub struct ProxyInfo {
    pub name: String,
    pub listen: String,
    pub upstream: String,
    pub enabled: bool,
}

impl Proxy {
    fn new(name: &str, listen: &str, upstream: &str) -> Proxy {
        Proxy {
            name: name.to_string(),
            state: Mutex::new(ProxyState {
                listen: listen.to_string(),
                upstream: upstream.to_string(),
                running: None,
            }),
            toxics: watch::channel(Vec::new()).0,
            accepted: Arc::default(),
            owner: 0,
            busy_poll: Duration::ZERO,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ProxyState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn info(&self) -> ProxyInfo {
        let s = self.lock();
        ProxyInfo {
            name: self.name.clone(),
            listen: s.listen.clone(),
            upstream: s.upstream.clone(),
            enabled: s.running.is_some(),
        }
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Binds the listener and starts accepting (nothing if already running). Needs a runtime.
    pub fn start(&self) -> Result<(), ProxyError> {
        let mut s = self.lock();
        if s.running.is_some() {
            return Ok(());
        }
        let listen = if s.listen.is_empty() {
            "127.0.0.1:0".to_string()
        } else {
            s.listen.clone()
        };
        let bind_err = |source| ProxyError::Listen {
            addr: listen.clone(),
            source,
        };
        let std_listener = std::net::TcpListener::bind(&listen).map_err(bind_err)?;
        std_listener.set_nonblocking(true).map_err(bind_err)?;
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| ProxyError::Invalid("the proxy needs a tokio runtime".into()))?;
        let listener = {
            let _guard = handle.enter();
            TcpListener::from_std(std_listener).map_err(bind_err)?
        };
        if let Ok(addr) = listener.local_addr() {
            s.listen = addr.to_string();
        }
        let (stop_tx, stop_rx) = watch::channel(false);
        let task = handle.spawn(link::accept_loop(
            listener,
            self.name.clone(),
            s.upstream.clone(),
            self.toxics.subscribe(),
            stop_rx,
            self.accepted.clone(),
            self.busy_poll,
        ));
        s.running = Some((stop_tx, task));
        Ok(())
    }

    /// Closes the listener and every connection. The handle resolves once the listener is
    /// closed; `None` when it was not running.
    pub fn stop(&self) -> Option<JoinHandle<()>> {
        let (stop, task) = self.lock().running.take()?;
        let _ = stop.send(true);
        Some(task)
    }

    /// Changes where it listens or forwards; a running proxy restarts when either changed.
    pub async fn update(
        &self,
        listen: &str,
        upstream: &str,
        enabled: bool,
    ) -> Result<(), ProxyError> {
        let changed = {
            let s = self.lock();
            s.listen != listen || s.upstream != upstream
        };
        if changed || !enabled {
            if let Some(task) = self.stop() {
                let _ = task.await;
            }
        }
        {
            let mut s = self.lock();
            s.listen = listen.to_string();
            s.upstream = upstream.to_string();
        }
        if enabled {
            self.start()?;
        }
        Ok(())
    }

    /// The toxics, upstream ones first, each direction in chain order (as Toxiproxy lists them).
    pub fn toxics(&self) -> Vec<ToxicSpec> {
        let all = self.toxics.borrow();
        [Stream::Upstream, Stream::Downstream]
            .into_iter()
            .flat_map(|dir| all.iter().filter(move |t| t.stream == dir).cloned())
            .collect()
    }

    pub fn toxic(&self, name: &str) -> Option<ToxicSpec> {
        self.toxics
            .borrow()
            .iter()
            .find(|t| t.name == name)
            .cloned()
    }

    /// Adds toxics at the end of their chains, all or none; live connections get them at once.
    pub fn add_toxics(&self, new: &[ToxicSpec]) -> Result<(), ProxyError> {
        let mut result = Ok(());
        self.toxics.send_if_modified(|all| {
            let clash = new.iter().enumerate().any(|(i, t)| {
                all.iter().any(|x| x.name == t.name) || new[..i].iter().any(|x| x.name == t.name)
            });
            if clash {
                result = Err(ProxyError::ToxicExists);
                return false;
            }
            all.extend(new.iter().cloned());
            true
        });
        result
    }

    /// Replaces the toxic named `name` (same name and stream, new attributes or toxicity).
    pub fn update_toxic(
        &self,
        name: &str,
        update: impl FnOnce(&ToxicSpec) -> Result<ToxicSpec, ProxyError>,
    ) -> Result<ToxicSpec, ProxyError> {
        let mut result = Err(ProxyError::ToxicNotFound);
        self.toxics.send_if_modified(|all| {
            let Some(t) = all.iter_mut().find(|t| t.name == name) else {
                return false;
            };
            match update(t) {
                Ok(new) => {
                    *t = new.clone();
                    result = Ok(new);
                    true
                }
                Err(e) => {
                    result = Err(e);
                    false
                }
            }
        });
        result
    }

    /// Removes the named toxics that exist; returns the names removed.
    pub fn remove_toxics(&self, names: &[String]) -> Vec<String> {
        let mut removed = Vec::new();
        self.toxics.send_if_modified(|all| {
            all.retain(|t| {
                let gone = names.contains(&t.name);
                if gone {
                    removed.push(t.name.clone());
                }
                !gone
            });
            !removed.is_empty()
        });
        removed
    }

    pub fn reset_toxics(&self) {
        self.toxics.send_if_modified(|all| {
            let had = !all.is_empty();
            all.clear();
            had
        });
    }
}
