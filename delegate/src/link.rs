//! The link to the hub: registration, the one `Session` stream (Hello, heartbeats, event batches
//! from the outbox, executor messages), routing what the hub sends, and reconnecting with
//! exponential backoff. It publishes whether the hub is reachable, which the dead-man watches.
//!
//! Given several replicas' addresses, the link starts at a random one (a fleet spreads over the
//! replicas) and moves to the next after every ended connection: a failed connect, a lost
//! stream or a replica's `GoingAway`. It tries the next address at once and backs off only once
//! every address has failed in a row.
//!
//! The link decides nothing about runs: assignments, aborts and halts go to the executor, acks to
//! the outbox.
use crate::{
    config::Secret,
    executor::{Executor, Stop},
    outbox::{Outbox, MAX_BATCH},
    state::{Credential, StateDir},
};
use faultline_proto::v1::{
    self as pb, delegate_message::Msg as DMsg, delegate_service_client::DelegateServiceClient,
    hub_message::Msg as HMsg,
};
use rand::Rng;
use std::{collections::BTreeMap, collections::VecDeque, io::Write, sync::Arc, time::Duration};
use tokio::{
    sync::{mpsc, watch},
    time::{interval_at, sleep, sleep_until, timeout, Instant, Interval, MissedTickBehavior},
};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint},
    Code, Status,
};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound on a unary call or on opening the stream.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a shutdown waits for the hub to acknowledge the final events.
const DRAIN_GRACE: Duration = Duration::from_secs(5);
const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// A stream that lived this long was healthy: the next reconnect starts from the shortest delay.
const HEALTHY_STREAM: Duration = Duration::from_secs(10);
/// Upper bound of the random delay before reconnecting after the hub's `GoingAway`.
const MOVE_JITTER_MS: u64 = 100;
/// Heartbeat intervals without any message from a hub that echoes heartbeats before the stream
/// counts as lost (a frozen hub keeps its connection open).
const SILENT_BEATS: u32 = 3;

/// What the link needs from the configuration.
#[derive(Clone, Debug)]
pub struct LinkConfig {
    /// The hub replicas' addresses, tried in turn; at least one.
    pub hubs: Vec<String>,
    /// PEM of the CA that signed the hub's certificate; `None` trusts the webpki roots.
    pub hub_ca: Option<Vec<u8>>,
    pub token: Option<Secret>,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub heartbeat: Duration,
    pub capabilities: pb::Capabilities,
}

/// Reasons to stop for good rather than reconnect.
#[derive(Debug, thiserror::Error)]
pub enum Fatal {
    #[error("registration token is invalid, expired or already used")]
    BadToken,
    #[error("the state directory holds no credential and no registration token was given (--token or FAULTLINE_DELEGATE_TOKEN)")]
    NoToken,
    #[error("the hub refused the registration: {0}")]
    RegistrationRefused(String),
    #[error("the hub rejected this delegate's credential ({0}); it was revoked or the hub does not know this delegate")]
    CredentialRejected(String),
    #[error("the hub revoked this delegate's credential: {0}")]
    Revoked(String),
    #[error("invalid hub address {url:?}: {reason}")]
    BadHub { url: String, reason: String },
    #[error("{0:#}")]
    Local(anyhow::Error),
}

/// How one connection attempt or stream ended.
enum End {
    /// Shutdown: stop reconnecting.
    Stopped,
    /// Try again after a delay.
    Retry(String),
    /// The stream was up and broke.
    Lost(String),
    /// The hub replica is shutting down and said so: reconnect at once.
    Moved(String),
}

pub struct Link {
    cfg: LinkConfig,
    /// One endpoint per address of `cfg.hubs`, in that order.
    endpoints: Vec<Endpoint>,
    /// The address the next connection goes to.
    at: usize,
    state: Arc<StateDir>,
    exec: Executor,
    outbox: Arc<Outbox>,
    from_exec: mpsc::UnboundedReceiver<DMsg>,
    /// Executor messages not yet sent; kept across reconnects. They go after pending events:
    /// `Aborted` must not overtake the run's final events, or the hub would end the run before
    /// storing its score.
    queued: VecDeque<DMsg>,
    /// `None` while a stream is up, else since when the hub has been unreachable.
    down_since: watch::Sender<Option<Instant>>,
    /// When the hub was last heard from, if the last stream ended because the hub fell silent.
    silent_since: Option<Instant>,
    /// The "connected" line is printed once.
    announced: bool,
}

impl Link {
    pub fn new(
        cfg: LinkConfig,
        state: Arc<StateDir>,
        exec: Executor,
        outbox: Arc<Outbox>,
        from_exec: mpsc::UnboundedReceiver<DMsg>,
        down_since: watch::Sender<Option<Instant>>,
    ) -> Result<Self, Fatal> {
        if cfg.hubs.is_empty() {
            return Err(Fatal::BadHub {
                url: String::new(),
                reason: "no hub address given".into(),
            });
        }
        let endpoints = cfg
            .hubs
            .iter()
            .map(|url| endpoint(url, cfg.hub_ca.as_deref()))
            .collect::<Result<Vec<_>, _>>()?;
        let at = rand::rng().random_range(0..endpoints.len());
        Ok(Link {
            cfg,
            endpoints,
            at,
            state,
            exec,
            outbox,
            from_exec,
            queued: VecDeque::new(),
            down_since,
            announced: false,
            silent_since: None,
        })
    }

    /// Connects, serves the stream and reconnects until `stop` turns true (Ok) or something
    /// fatal happens (Err). Running runs are left to the caller.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) -> Result<(), Fatal> {
        let mut backoff = Backoff::default();
        // Connections in a row that ended without a stream staying up, since the last one that
        // did: the link backs off only after trying every address once.
        let mut failures = 0usize;
        loop {
            if *stop.borrow() {
                return Ok(());
            }
            let began = Instant::now();
            let mut moved = false;
            let hub = self.hub().to_string();
            match self.session(&mut stop).await? {
                End::Stopped => return Ok(()),
                End::Retry(why) => {
                    failures += 1;
                    tracing::warn!(hub = %hub, error = %why, "cannot reach the hub")
                }
                End::Lost(why) => {
                    failures = 1;
                    tracing::warn!(hub = %hub, reason = %why, "lost the hub; reconnecting");
                    if began.elapsed() >= HEALTHY_STREAM {
                        backoff.reset();
                    }
                }
                End::Moved(why) => {
                    failures = 0;
                    tracing::info!(hub = %hub, reason = %why, "the hub replica is going away; reconnecting now");
                    backoff.reset();
                    moved = true;
                }
            }
            // Whatever ended, the next connection goes to the next address.
            self.at = (self.at + 1) % self.endpoints.len();
            // The hub is unreachable since it was last heard from, when the stream ended for
            // its silence; otherwise since now.
            let since = self.silent_since.take().unwrap_or_else(Instant::now);
            self.down_since.send_if_modified(|d| {
                let was_up = d.is_none();
                if was_up {
                    *d = Some(since);
                }
                was_up
            });
            // After a replica's `GoingAway` no backoff (it asked), only a little jitter that
            // spreads a fleet's reconnects.
            // The same for the next address while some have not been tried since the last
            // stream; once all have failed in a row, the backoff.
            let delay = if moved || !failures.is_multiple_of(self.endpoints.len()) {
                Duration::from_millis(rand::rng().random_range(0..=MOVE_JITTER_MS))
            } else {
                backoff.next()
            };
            tokio::select! {
                _ = sleep(delay) => {}
                _ = stopped(&mut stop) => return Ok(()),
            }
        }
    }

    /// One connection: register if needed, open the stream, serve it until it ends.
    async fn session(&mut self, stop: &mut watch::Receiver<bool>) -> Result<End, Fatal> {
        let opened = tokio::select! {
            r = self.open() => r?,
            _ = stopped(stop) => return Ok(End::Stopped),
        };
        let (cred, tx, inbound) = match opened {
            Ok(o) => o,
            Err(why) => return Ok(End::Retry(why)),
        };
        self.down_since.send_replace(None);
        if !self.announced {
            self.announced = true;
            println!(
                "faultline-delegate connected delegate_id={}",
                cred.delegate_id
            );
            let _ = std::io::stdout().flush();
        }
        tracing::info!(hub = %self.hub(), delegate = %cred.delegate_id, "connected to the hub");
        self.outbox.rewind();
        self.serve(stop, tx, inbound).await
    }

    /// Connects, registers if there is no credential yet, and opens `Session` with `Hello`.
    /// The inner error is retryable.
    #[allow(clippy::type_complexity)]
    async fn open(
        &mut self,
    ) -> Result<
        Result<
            (
                Credential,
                mpsc::Sender<pb::DelegateMessage>,
                tonic::Streaming<pb::HubMessage>,
            ),
            String,
        >,
        Fatal,
    > {
        let channel = match self.endpoints[self.at].connect().await {
            Ok(c) => c,
            Err(e) => return Ok(Err(error_chain(&e))),
        };
        let mut client = DelegateServiceClient::new(channel);
        let cred = match self.credential(&mut client).await? {
            Ok(c) => c,
            Err(why) => return Ok(Err(why)),
        };
        let (tx, rx) = mpsc::channel(8);
        let hello = pb::Hello {
            delegate_id: cred.delegate_id.clone(),
            credential: cred.credential.clone(),
            version: VERSION.into(),
            inflight_runs: self.exec.inflight(),
            capabilities: Some(self.cfg.capabilities.clone()),
            labels: self.cfg.labels.clone().into_iter().collect(),
        };
        let _ = tx.send(message(DMsg::Hello(hello))).await;
        match timeout(REQUEST_TIMEOUT, client.session(ReceiverStream::new(rx))).await {
            Err(_) => Ok(Err("the hub did not open the session in time".into())),
            Ok(Err(s)) if s.code() == Code::Unauthenticated => {
                Err(Fatal::CredentialRejected(s.message().to_string()))
            }
            Ok(Err(s)) => Ok(Err(status_text(&s))),
            Ok(Ok(resp)) => Ok(Ok((cred, tx, resp.into_inner()))),
        }
    }

    /// The stored credential, or a fresh one from `Register`.
    async fn credential(
        &mut self,
        client: &mut DelegateServiceClient<Channel>,
    ) -> Result<Result<Credential, String>, Fatal> {
        if let Some(c) = self.state.load_credential().map_err(Fatal::Local)? {
            return Ok(Ok(c));
        }
        let Some(token) = &self.cfg.token else {
            return Err(Fatal::NoToken);
        };
        let req = pb::RegisterRequest {
            token: token.expose().to_string(),
            name: self.cfg.name.clone(),
            labels: self.cfg.labels.clone().into_iter().collect(),
            version: VERSION.into(),
            capabilities: Some(self.cfg.capabilities.clone()),
        };
        let resp = match timeout(REQUEST_TIMEOUT, client.register(req)).await {
            Err(_) => return Ok(Err("registration timed out".into())),
            Ok(Err(s)) => {
                return match s.code() {
                    Code::Unauthenticated => Err(Fatal::BadToken),
                    Code::InvalidArgument | Code::PermissionDenied | Code::FailedPrecondition => {
                        Err(Fatal::RegistrationRefused(s.message().to_string()))
                    }
                    _ => Ok(Err(status_text(&s))),
                }
            }
            Ok(Ok(r)) => r.into_inner(),
        };
        if resp.delegate_id.is_empty() || resp.credential.is_empty() {
            return Err(Fatal::RegistrationRefused(
                "the hub answered without a delegate id or credential".into(),
            ));
        }
        let cred = Credential {
            delegate_id: resp.delegate_id,
            credential: resp.credential,
        };
        self.state.save_credential(&cred).map_err(Fatal::Local)?;
        tracing::info!(delegate = %cred.delegate_id, project = %resp.project, name = %self.cfg.name, "registered with the hub");
        Ok(Ok(cred))
    }

    /// Serves an open stream until it ends, the hub says something fatal, or shutdown has
    /// drained the outbox.
    async fn serve(
        &mut self,
        stop: &mut watch::Receiver<bool>,
        tx: mpsc::Sender<pb::DelegateMessage>,
        mut inbound: tonic::Streaming<pb::HubMessage>,
    ) -> Result<End, Fatal> {
        let mut heartbeat = ticker(self.cfg.heartbeat);
        let mut heartbeat_due = false;
        // Set once the hub says it echoes heartbeats (or echoes one): only then is its silence
        // a sign it is gone (an older hub does not echo).
        let mut echoes = false;
        let mut last_heard = Instant::now();
        let mut drain_until: Option<Instant> = None;
        loop {
            if let Some(until) = drain_until {
                let flushed = self.outbox.unacked() == 0
                    && self.queued.is_empty()
                    && self.exec.running().is_empty();
                if flushed || Instant::now() >= until {
                    return Ok(End::Stopped);
                }
            }
            let want_send = heartbeat_due || !self.queued.is_empty() || self.outbox.has_unsent();
            let silent_at = last_heard + heartbeat.period() * SILENT_BEATS;
            tokio::select! {
                biased;
                m = inbound.message() => match m {
                    Ok(Some(m)) => {
                        last_heard = Instant::now();
                        match m.msg {
                            Some(HMsg::Heartbeat(_)) => echoes = true,
                            Some(HMsg::GoingAway(g)) => return Ok(End::Moved(g.reason)),
                            Some(HMsg::Welcome(w)) => {
                                echoes |= w.heartbeat_echo;
                                self.handle(HMsg::Welcome(w), &mut heartbeat).await?
                            }
                            Some(msg) => self.handle(msg, &mut heartbeat).await?,
                            None => {}
                        }
                    }
                    Ok(None) => return Ok(End::Lost("the hub closed the stream".into())),
                    Err(s) => return self.stream_error(s),
                },
                permit = tx.reserve(), if want_send => {
                    let Ok(permit) = permit else {
                        return Ok(End::Lost("the stream's send side closed".into()));
                    };
                    let next = if heartbeat_due {
                        heartbeat_due = false;
                        Some(DMsg::Heartbeat(pb::Heartbeat { at_ms: crate::now_ms() }))
                    } else {
                        let events = self.outbox.next_batch(MAX_BATCH);
                        if events.is_empty() { self.queued.pop_front() } else { Some(DMsg::Events(pb::EventBatch { events })) }
                    };
                    if let Some(m) = next {
                        permit.send(message(m));
                    }
                }
                Some(m) = self.from_exec.recv() => self.queued.push_back(m),
                _ = heartbeat.tick() => {
                    heartbeat_due = true;
                    // Events a full disk held back are written (then sent) once it has room.
                    self.outbox.retry_unwritten();
                }
                _ = sleep_until(silent_at), if echoes => {
                    self.silent_since = Some(last_heard);
                    return Ok(End::Lost(format!(
                        "the hub has been silent for {} heartbeat intervals",
                        SILENT_BEATS
                    )));
                }
                _ = self.outbox.changed() => {}
                _ = stopped(stop), if drain_until.is_none() => {
                    tracing::info!("shutting down: stopping runs and flushing their events");
                    drain_until = Some(Instant::now() + DRAIN_GRACE);
                    self.exec.stop_all(Stop::Shutdown).await;
                }
                _ = sleep_until(drain_until.unwrap_or_else(Instant::now)), if drain_until.is_some() => {}
            }
        }
    }

    /// The address the current (or next) connection goes to.
    fn hub(&self) -> &str {
        &self.cfg.hubs[self.at]
    }

    async fn handle(&mut self, msg: HMsg, heartbeat: &mut Interval) -> Result<(), Fatal> {
        match msg {
            HMsg::Welcome(w) => {
                tracing::info!(replica = %w.replica_id, min_version = %w.min_delegate_version, "hub welcomed the delegate");
                if !version_at_least(VERSION, &w.min_delegate_version) {
                    tracing::error!(version = VERSION, min_version = %w.min_delegate_version, "this delegate is older than the hub supports; upgrade it");
                }
                if w.heartbeat_interval_ms > 0 {
                    *heartbeat = ticker(Duration::from_millis(w.heartbeat_interval_ms.into()));
                }
            }
            HMsg::Assign(a) => self.exec.assign(a),
            HMsg::Abort(a) => self.exec.abort(&a.run_id, &a.reason).await,
            HMsg::HaltAll(h) => {
                let reason = if h.reason.is_empty() {
                    "halted by the hub".to_string()
                } else {
                    h.reason
                };
                self.exec.stop_all(Stop::Abort(reason)).await;
            }
            HMsg::Ack(a) => self.outbox.ack(&a.run_id, a.seq),
            HMsg::Heartbeat(_) | HMsg::GoingAway(_) => {}
            HMsg::Revoked(r) => return Err(Fatal::Revoked(r.reason)),
        }
        Ok(())
    }

    fn stream_error(&self, s: Status) -> Result<End, Fatal> {
        match s.code() {
            Code::Unauthenticated => Err(Fatal::CredentialRejected(s.message().to_string())),
            Code::PermissionDenied => {
                // The hub refuses a run's events (say it was reassigned): without dropping them,
                // every new stream would fail the same way.
                for run in self.outbox.unsettled_runs() {
                    if s.message().contains(&run) {
                        self.outbox.discard(&run);
                    }
                }
                Ok(End::Lost(status_text(&s)))
            }
            _ => Ok(End::Lost(status_text(&s))),
        }
    }
}

/// The endpoint of one hub address; `hub_ca` is the PEM of the CA that signed its certificate.
fn endpoint(url: &str, hub_ca: Option<&[u8]>) -> Result<Endpoint, Fatal> {
    let bad = |reason: String| Fatal::BadHub {
        url: url.to_string(),
        reason,
    };
    let tls = if url.starts_with("https://") {
        true
    } else if url.starts_with("http://") {
        false
    } else {
        return Err(bad("must start with https:// or http://".into()));
    };
    let mut ep = Endpoint::from_shared(url.to_string())
        .map_err(|e| bad(e.to_string()))?
        .user_agent(concat!("faultline-delegate/", env!("CARGO_PKG_VERSION")))
        .map_err(|e| bad(e.to_string()))?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .tcp_keepalive(Some(Duration::from_secs(30)))
        .http2_keep_alive_interval(Duration::from_secs(15))
        .keep_alive_timeout(Duration::from_secs(10))
        .keep_alive_while_idle(true);
    if tls {
        let config = match hub_ca {
            Some(pem) => ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)),
            None => ClientTlsConfig::new().with_enabled_roots(),
        };
        ep = ep.tls_config(config).map_err(|e| bad(error_chain(&e)))?;
    }
    Ok(ep)
}

fn message(m: DMsg) -> pb::DelegateMessage {
    pb::DelegateMessage { msg: Some(m) }
}

fn ticker(every: Duration) -> Interval {
    let mut i = interval_at(Instant::now() + every, every);
    i.set_missed_tick_behavior(MissedTickBehavior::Delay);
    i
}

/// Resolves once shutdown is requested (never, if nobody can request it any more).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    if stop.wait_for(|s| *s).await.is_err() {
        std::future::pending::<()>().await;
    }
}

fn status_text(s: &Status) -> String {
    format!("{:?}: {}", s.code(), s.message())
}

/// An error with its causes, which is where transport errors say what actually went wrong.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

/// `major.minor.patch`, compared numerically; an unparsable minimum is not enforced.
fn version_at_least(have: &str, min: &str) -> bool {
    let parse = |s: &str| {
        s.split('.')
            .map(|p| p.parse::<u64>().ok())
            .collect::<Option<Vec<_>>>()
    };
    match (parse(have), parse(min)) {
        (Some(a), Some(b)) => a >= b,
        _ => true,
    }
}

/// Exponential backoff with jitter: 200ms doubling to 10s, each delay drawn from [d/2, d].
struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: BACKOFF_MIN }
    }
}

impl Backoff {
    fn next(&mut self) -> Duration {
        let d = self.next;
        self.next = (d * 2).min(BACKOFF_MAX);
        let half = d.as_millis() as u64 / 2;
        Duration::from_millis(half + rand::rng().random_range(0..=half))
    }

    fn reset(&mut self) {
        self.next = BACKOFF_MIN;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_with_jitter() {
        let mut b = Backoff::default();
        let first = b.next();
        assert!(
            first >= Duration::from_millis(100) && first <= BACKOFF_MIN,
            "{first:?}"
        );
        for _ in 0..20 {
            let d = b.next();
            assert!(d <= BACKOFF_MAX, "{d:?}");
        }
        assert!(b.next() >= BACKOFF_MAX / 2);
        b.reset();
        assert!(b.next() <= BACKOFF_MIN);
    }

    #[test]
    fn versions_compare_numerically() {
        assert!(version_at_least("0.10.0", "0.9.1"));
        assert!(!version_at_least("0.1.0", "0.2.0"));
        assert!(version_at_least("0.1.0", ""));
    }
}
