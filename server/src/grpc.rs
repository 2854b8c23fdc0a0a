//! The delegate endpoint (tonic): registration, and the one long-lived stream per delegate.
//! A session claims the delegate's pending runs from Postgres, forwards aborts, stores events and
//! acknowledges them. It holds no state another replica would need.
//!
//! Limits: messages of at most 4 MiB, at most [`MAX_BATCH`] events per batch (larger ones end
//! the stream with `INVALID_ARGUMENT`), events paced per stream by `--delegate-event-rate` (the
//! stream is not read while over the rate, so nothing is dropped), one live stream per delegate
//! (a newer one replaces the older), and [`REGISTER_PER_SEC`] registrations per address.
use crate::{
    bucket::Bucket, delegates, error::ApiError, halt, perimeter::ClientIp, runs, state::AppState,
};
use faultline_proto::v1::{self as pb, delegate_message::Msg as DMsg, hub_message::Msg as HMsg};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::{collections::HashSet, num::NonZeroU32, pin::Pin, time::Duration, time::Instant};
use tokio::sync::mpsc;
use tokio_stream::{wrappers::ReceiverStream, Stream};
use tonic::{Request, Response, Status, Streaming};
use uuid::Uuid;

/// Largest number of events accepted in one batch (delegates send at most 500).
pub const MAX_BATCH: usize = 1000;
/// Registrations per second from one address (bursts of [`REGISTER_BURST`]): a fleet
/// registers once, a token guesser gets nowhere.
pub const REGISTER_PER_SEC: NonZeroU32 = NonZeroU32::new(5).expect("not zero");
const REGISTER_BURST: NonZeroU32 = NonZeroU32::new(50).expect("not zero");

pub struct DelegateSvc {
    state: AppState,
    /// Register calls per client address.
    registrations: DefaultKeyedRateLimiter<std::net::IpAddr>,
}

impl DelegateSvc {
    pub fn server(state: AppState) -> pb::delegate_service_server::DelegateServiceServer<Self> {
        let quota = Quota::per_second(REGISTER_PER_SEC).allow_burst(REGISTER_BURST);
        let registrations = RateLimiter::keyed(quota);
        pb::delegate_service_server::DelegateServiceServer::new(DelegateSvc {
            state,
            registrations,
        })
        .max_decoding_message_size(4 << 20)
        .max_encoding_message_size(16 << 20)
    }
}

fn capabilities_json(c: Option<&pb::Capabilities>) -> serde_json::Value {
    let c = c.cloned().unwrap_or_default();
    serde_json::json!({ "faults": c.faults, "probes": c.probes, "allow": c.allow })
}

fn check_labels(labels: &std::collections::HashMap<String, String>) -> Result<(), Status> {
    if labels.len() > 64
        || labels
            .iter()
            .any(|(k, v)| k.is_empty() || k.len() > 63 || v.len() > 255)
    {
        return Err(Status::invalid_argument(
            "labels: at most 64, keys 1-63 characters, values up to 255",
        ));
    }
    Ok(())
}

/// `major.minor.patch` compared numerically; anything unparsable is too old.
fn version_ok(v: &str) -> bool {
    let parse = |s: &str| {
        s.split('.')
            .map(|p| p.parse::<u64>().ok())
            .collect::<Option<Vec<_>>>()
    };
    match (parse(v), parse(faultline_proto::MIN_DELEGATE_VERSION)) {
        (Some(a), Some(b)) => a >= b,
        _ => false,
    }
}

#[tonic::async_trait]
impl pb::delegate_service_server::DelegateService for DelegateSvc {
    async fn register(
        &self,
        req: Request<pb::RegisterRequest>,
    ) -> Result<Response<pb::RegisterResponse>, Status> {
        let ip = req.extensions().get::<ClientIp>().map(|c| c.0);
        if let Some(ip) = ip {
            if self.registrations.check_key(&ip).is_err() {
                tracing::warn!(%ip, "delegate registrations from this address are over the limit");
                return Err(ApiError::RateLimited(format!(
                    "too many registrations from this address (at most {REGISTER_PER_SEC} a second); retry later"
                ))
                .into());
            }
        }
        let r = req.into_inner();
        if r.token.is_empty() || r.token.len() > 256 {
            return Err(Status::unauthenticated("token: missing or too long"));
        }
        check_labels(&r.labels)?;
        let labels = r.labels.into_iter().collect();
        let reg = delegates::register(
            &self.state.pool,
            &r.token,
            &r.name,
            &labels,
            &r.version,
            &capabilities_json(r.capabilities.as_ref()),
        )
        .await?;
        tracing::info!(delegate = %reg.delegate_id, name = %r.name, project = %reg.project, "delegate registered");
        Ok(Response::new(pb::RegisterResponse {
            delegate_id: reg.delegate_id.to_string(),
            credential: reg.credential,
            project: reg.project,
        }))
    }

    type SessionStream = Pin<Box<dyn Stream<Item = Result<pb::HubMessage, Status>> + Send>>;

    async fn session(
        &self,
        req: Request<Streaming<pb::DelegateMessage>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        let mut inbound = req.into_inner();
        let first = tokio::time::timeout(Duration::from_secs(10), inbound.message())
            .await
            .map_err(|_| Status::deadline_exceeded("no Hello within 10s"))??;
        let Some(pb::DelegateMessage {
            msg: Some(DMsg::Hello(hello)),
        }) = first
        else {
            return Err(Status::invalid_argument("the first message must be Hello"));
        };
        let id: Uuid = hello
            .delegate_id
            .parse()
            .map_err(|_| Status::unauthenticated("delegate_id: not a UUID"))?;
        let project = delegates::authenticate(&self.state.pool, id, &hello.credential).await?;
        if !version_ok(&hello.version) {
            return Err(Status::failed_precondition(format!(
                "delegate version {:?} is older than the minimum {}",
                hello.version,
                faultline_proto::MIN_DELEGATE_VERSION
            )));
        }
        check_labels(&hello.labels)?;
        let labels = hello.labels.clone().into_iter().collect();
        let session = Uuid::new_v4();
        delegates::mark_connected(
            &self.state.pool,
            id,
            session,
            &self.state.replica,
            &labels,
            &hello.version.chars().take(64).collect::<String>(),
            &capabilities_json(hello.capabilities.as_ref()),
        )
        .await?;
        let inflight: Vec<Uuid> = hello
            .inflight_runs
            .iter()
            .filter_map(|r| r.parse().ok())
            .collect();
        // Runs the delegate still executes but the hub has already ended get stopped now.
        let stale = runs::reconcile(&self.state.pool, id, &project, &inflight).await?;
        let (tx, rx) = mpsc::channel(256);
        let welcome = pb::Welcome {
            replica_id: self.state.replica.clone(),
            min_delegate_version: faultline_proto::MIN_DELEGATE_VERSION.into(),
            heartbeat_interval_ms: self.state.timing.heartbeat.as_millis() as u32,
            heartbeat_echo: true,
        };
        let _ = tx.send(Ok(hub(HMsg::Welcome(welcome)))).await;
        for run in &stale {
            let abort = pb::AbortRun {
                run_id: run.to_string(),
                reason: "the hub already ended this run".into(),
            };
            let _ = tx.send(Ok(hub(HMsg::Abort(abort)))).await;
        }
        tracing::info!(delegate = %id, %project, replica = %self.state.replica, inflight = inflight.len(), "delegate connected");
        tokio::spawn(
            Session {
                _task: self.state.hub.session_task(),
                state: self.state.clone(),
                id,
                project,
                session,
                tx,
                sent_aborts: stale.into_iter().collect(),
                sent_halt: 0,
                events: Bucket::new(
                    self.state.timing.delegate_event_rate,
                    self.state.timing.delegate_event_rate.saturating_mul(2),
                    Instant::now(),
                ),
                paused_until: None,
            }
            .run(inbound),
        );
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// Resolves at `at`; never when there is none (its `select!` branch is disabled then anyway).
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Resolves once the replica is shutting down (at once if it already is).
async fn stopping(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

fn hub(msg: HMsg) -> pb::HubMessage {
    pb::HubMessage { msg: Some(msg) }
}

struct Session {
    /// Counts this task until it ends (after its stream is marked disconnected).
    _task: crate::notify::SessionTask,
    state: AppState,
    id: Uuid,
    /// The delegate's project, for log lines.
    project: String,
    /// This stream's id in `delegates.session_id`; a newer stream replaces it.
    session: Uuid,
    tx: mpsc::Sender<Result<pb::HubMessage, Status>>,
    /// Aborts already forwarded on this stream; a new stream forwards them again.
    sent_aborts: HashSet<Uuid>,
    /// The project's `halt_seq` last passed on as `HaltAll` on this stream.
    sent_halt: i64,
    /// This stream's event rate (`None`: no limit).
    events: Option<Bucket>,
    /// While set, the stream is not read (backpressure for a delegate over its event rate).
    paused_until: Option<tokio::time::Instant>,
}

impl Session {
    async fn run(mut self, mut inbound: Streaming<pb::DelegateMessage>) {
        let local = self.state.hub.register_delegate(self.id);
        crate::metrics::get().stream(1);
        // Work arrives through `local.wake` (NOTIFY or the replica's poll); this tick only
        // watches for a silent delegate.
        let mut tick = tokio::time::interval(self.state.timing.heartbeat);
        let mut stop = self.state.stop.clone();
        let silence = self.state.timing.heartbeat * 3;
        let mut last_seen = Instant::now();
        local.wake.notify_one();
        loop {
            let step = tokio::select! {
                _ = stopping(&mut stop) => {
                    // This replica is shutting down (its listener is already closed). Every batch
                    // read so far is stored and acknowledged; the delegate reconnects at once and
                    // lands on another replica, where it resends what is unacknowledged.
                    let bye = pb::GoingAway { reason: "this hub replica is shutting down".into() };
                    let _ = self.tx.try_send(Ok(hub(HMsg::GoingAway(bye))));
                    tracing::info!(delegate = %self.id, "replica shutting down: told the delegate to reconnect");
                    break;
                }
                _ = local.wake.notified() => {
                    if local.superseded() {
                        tracing::info!(delegate = %self.id, "a newer stream of this delegate connected; closing this one");
                        break;
                    }
                    let span = tracing::info_span!("dispatch", delegate = %self.id);
                    let began = Instant::now();
                    let r = tracing::Instrument::instrument(self.dispatch(), span).await;
                    // The stream was not read meanwhile: that time is not the delegate's silence.
                    last_seen += began.elapsed();
                    r
                }
                _ = tick.tick() => {
                    if self.state.liveness.take_dead(self.session) {
                        tracing::info!(delegate = %self.id, "this stream was replaced or its delegate revoked; closing it");
                        break;
                    }
                    if last_seen.elapsed() > silence && self.paused_until.is_none() {
                        // A loaded replica can get here before reading what has already
                        // arrived: look once more before calling the delegate silent.
                        match tokio::time::timeout(Duration::from_millis(200), inbound.message()).await {
                            Ok(Ok(Some(m))) => {
                                let r = self.handle(m).await;
                                last_seen = Instant::now();
                                r
                            }
                            Ok(Ok(None)) => break,
                            Ok(Err(status)) => { tracing::info!(delegate = %self.id, %status, "delegate stream ended"); break }
                            Err(_) => {
                                tracing::warn!(delegate = %self.id, "delegate silent for three heartbeat intervals; closing its stream");
                                break;
                            }
                        }
                    } else {
                        Ok(true)
                    }
                }
                _ = sleep_until(self.paused_until), if self.paused_until.is_some() => {
                    self.paused_until = None;
                    // Not reading was our doing, not the delegate's silence.
                    last_seen = Instant::now();
                    Ok(true)
                }
                msg = inbound.message(), if self.paused_until.is_none() => match msg {
                    // Seen again once handled: a slow store (the hub's or its database's
                    // doing) is not the delegate's silence.
                    Ok(Some(m)) => { let r = self.handle(m).await; last_seen = Instant::now(); r }
                    Ok(None) => break,
                    Err(status) => { tracing::info!(delegate = %self.id, %status, "delegate stream ended"); break }
                },
            };
            match step {
                Ok(true) => {}
                Ok(false) => {
                    tracing::info!(delegate = %self.id, "closing the stream (superseded, revoked, or events could not be stored)");
                    break;
                }
                // A database hiccup must not drop every stream: log it and carry on; the poll
                // retries the work, and unacknowledged events are resent by the delegate.
                Err(ApiError::Internal(e)) => {
                    tracing::error!(delegate = %self.id, error = ?e, "delegate session step failed");
                }
                Err(ApiError::Unavailable(why)) => {
                    tracing::warn!(delegate = %self.id, why, "database unavailable; the stream stays open");
                }
                Err(other) => {
                    let _ = self.tx.send(Err(other.into())).await;
                    break;
                }
            }
        }
        self.state.hub.unregister_delegate(self.id, &local);
        self.state.liveness.forget(self.id, self.session);
        crate::metrics::get().stream(-1);
        if let Err(e) = delegates::mark_disconnected(&self.state.pool, self.id, self.session).await
        {
            tracing::warn!(delegate = %self.id, error = ?e, "failed to mark delegate disconnected");
        }
        tracing::info!(delegate = %self.id, "delegate disconnected");
    }

    /// Sends newly claimed runs and not-yet-forwarded aborts.
    async fn dispatch(&mut self) -> Result<bool, ApiError> {
        // A revoked delegate is told so and its stream closed at once.
        if delegates::is_revoked(&self.state.pool, self.id).await? {
            let msg = HMsg::Revoked(pb::Revoked {
                reason: "this delegate was revoked by an owner of its project".into(),
            });
            let _ = self.tx.send(Ok(hub(msg))).await;
            tracing::warn!(delegate = %self.id, "delegate revoked: closing its stream");
            return Ok(false);
        }
        // An emergency stop first: the delegate reverts everything before anything else.
        if let Some((seq, reason)) = halt::for_delegate(&self.state.pool, self.id).await? {
            if seq > self.sent_halt {
                if self
                    .tx
                    .send(Ok(hub(HMsg::HaltAll(pb::HaltAll { reason }))))
                    .await
                    .is_err()
                {
                    return Ok(false);
                }
                self.sent_halt = seq;
                tracing::warn!(delegate = %self.id, "project halted: told the delegate to stop everything");
            }
        }
        let claimed = runs::claim(&self.state.pool, self.id, self.session).await?;
        let mut claimed = claimed.into_iter();
        while let Some(a) = claimed.next() {
            let msg = pb::AssignRun {
                run_id: a.run_id.to_string(),
                spec_json: serde_json::to_string(&a.spec).map_err(anyhow::Error::from)?,
                template_name: a.template_name,
                template_version: a.template_version as u32,
                dry_run: a.dry_run,
                project: a.project,
            };
            if self.tx.send(Ok(hub(HMsg::Assign(msg)))).await.is_err() {
                // The stream is gone: hand this run and the rest of the batch back.
                for run in std::iter::once(a.run_id).chain(claimed.map(|c| c.run_id)) {
                    runs::unclaim(&self.state.pool, run).await?;
                }
                return Ok(false);
            }
            tracing::info!(run_id = %a.run_id, delegate = %self.id, project = %self.project, "run dispatched");
        }
        for (run, reason) in runs::aborting(&self.state.pool, self.id).await? {
            if self.sent_aborts.insert(run) {
                let _ = self
                    .tx
                    .send(Ok(hub(HMsg::Abort(pb::AbortRun {
                        run_id: run.to_string(),
                        reason,
                    }))))
                    .await;
            }
        }
        Ok(true)
    }

    /// Handles one message; `Ok(false)` ends the stream (it was superseded).
    async fn handle(&mut self, m: pb::DelegateMessage) -> Result<bool, ApiError> {
        let pool = &self.state.pool;
        let parse = |s: &str| {
            s.parse::<Uuid>()
                .map_err(|_| ApiError::bad("run_id", "not a UUID"))
        };
        match m.msg {
            Some(DMsg::Heartbeat(h)) => {
                // Stored with the replica's next batch (liveness.rs); a stream found replaced or
                // revoked then ends on its next tick.
                self.state.liveness.beat(self.id, self.session);
                // Echo it: the delegate counts the hub's silence towards its dead-man timeout.
                // The hub answers even while its database is away: the delegate keeps its
                // faults and its events, which are stored when the database returns.
                let _ = self.tx.send(Ok(hub(HMsg::Heartbeat(h)))).await;
            }
            Some(DMsg::Events(batch)) => {
                if batch.events.len() > MAX_BATCH {
                    return Err(ApiError::bad(
                        "events",
                        format!("at most {MAX_BATCH} events per batch"),
                    ));
                }
                let count = batch.events.len();
                let started = std::time::Instant::now();
                let span = tracing::info_span!("ingest", delegate = %self.id, events = count);
                let stored = tracing::Instrument::instrument(
                    crate::ingest::ingest(pool, self.id, batch.events),
                    span,
                );
                let acks = match stored.await {
                    Ok(a) => {
                        crate::metrics::get().ingested(started.elapsed().as_secs_f64());
                        a
                    }
                    // Unstored events stay unacknowledged; reconnecting makes the delegate resend.
                    Err(ApiError::Internal(e)) => {
                        tracing::error!(delegate = %self.id, error = ?e, "failed to store events; closing the stream");
                        return Ok(false);
                    }
                    Err(ApiError::Unavailable(why)) => {
                        tracing::warn!(delegate = %self.id, why, "database unavailable: events not stored; closing the stream so the delegate resends them");
                        return Ok(false);
                    }
                    Err(e) => return Err(e),
                };
                for (run, seq) in acks {
                    let _ = self
                        .tx
                        .send(Ok(hub(HMsg::Ack(pb::Ack {
                            run_id: run.to_string(),
                            seq,
                        }))))
                        .await;
                }
                if let Some(bucket) = &mut self.events {
                    let wait = bucket.take(count, Instant::now());
                    if !wait.is_zero() {
                        tracing::debug!(delegate = %self.id, ?wait, "delegate over its event rate: pausing its stream");
                        self.paused_until = Some(tokio::time::Instant::now() + wait);
                    }
                }
            }
            Some(DMsg::RunAccepted(a)) => runs::accepted(pool, self.id, parse(&a.run_id)?).await?,
            Some(DMsg::RunRejected(r)) => {
                let reason: String = r.reason.chars().take(1024).collect();
                runs::rejected(pool, self.id, parse(&r.run_id)?, &reason).await?
            }
            Some(DMsg::Aborted(a)) => {
                let run = parse(&a.run_id)?;
                runs::aborted(pool, self.id, run).await?;
                tracing::info!(run_id = %run, delegate = %self.id, project = %self.project, "abort confirmed");
            }
            Some(DMsg::Hello(_)) | None => {}
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn versions_compare_numerically() {
        assert!(super::version_ok("0.1.0"));
        assert!(super::version_ok("0.10.0"));
        assert!(super::version_ok("1.0.0"));
        assert!(!super::version_ok("0.0.9"));
        assert!(!super::version_ok("garbage"));
    }
}
