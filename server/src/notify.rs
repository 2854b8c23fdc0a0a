//! Cross-replica wake-ups through Postgres LISTEN/NOTIFY, so any replica can serve any request:
//! `faultline_work` (payload: delegate id) wakes the replica holding that delegate's stream, and
//! `faultline_events` (payload: run id) wakes `runEvents` subscribers, and
//! `faultline_schedules` (payload: schedule id) wakes every replica's scheduler, and
//! `faultline_webhooks` (payload: event id) wakes every replica's webhook delivery loop. Notifications are only
//! hints: one poll per replica ([`Hub::poll`]) finds work a lost notification would have
//! announced, so a lost one delays work but never loses it.
use sqlx::{postgres::PgListener, PgExecutor, PgPool};
use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};
use tokio::sync::{broadcast, watch, Notify};
use uuid::Uuid;

pub const WORK: &str = "faultline_work";
pub const EVENTS: &str = "faultline_events";

/// One delegate stream held by this replica.
#[derive(Default)]
pub struct LocalStream {
    pub wake: Notify,
    /// Set when a newer stream of the same delegate connected here; the old one then ends.
    superseded: AtomicBool,
}

impl LocalStream {
    pub fn superseded(&self) -> bool {
        self.superseded.load(Ordering::Relaxed)
    }
}

/// One running delegate session task; see [`Hub::session_task`].
pub struct SessionTask(Arc<watch::Sender<usize>>);

impl Drop for SessionTask {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

pub struct Hub {
    streams: Mutex<HashMap<Uuid, Arc<LocalStream>>>,
    /// Delegate session tasks still running (counted until their stream is marked
    /// disconnected), so a shutdown closes the pool only after they let go.
    sessions: Arc<watch::Sender<usize>>,
    events: broadcast::Sender<Uuid>,
    /// Wakes this replica's scheduler: a schedule was created or changed (`faultline_schedules`).
    pub schedules: Arc<Notify>,
    /// Wakes this replica's webhook delivery loop: an event was enqueued (`faultline_webhooks`).
    pub webhooks: Arc<Notify>,
}

impl Hub {
    pub fn new() -> Arc<Self> {
        Arc::new(Hub {
            streams: Mutex::default(),
            sessions: Arc::new(watch::channel(0).0),
            events: broadcast::channel(1024).0,
            schedules: Arc::new(Notify::new()),
            webhooks: Arc::new(Notify::new()),
        })
    }

    /// Registers a new stream for `id`, superseding (and waking) any older one.
    pub fn register_delegate(&self, id: Uuid) -> Arc<LocalStream> {
        let new = Arc::new(LocalStream::default());
        if let Some(old) = self.streams.lock().unwrap().insert(id, new.clone()) {
            old.superseded.store(true, Ordering::Relaxed);
            old.wake.notify_one();
        }
        new
    }

    pub fn unregister_delegate(&self, id: Uuid, s: &Arc<LocalStream>) {
        let mut map = self.streams.lock().unwrap();
        if map.get(&id).is_some_and(|cur| Arc::ptr_eq(cur, s)) {
            map.remove(&id);
        }
    }

    /// Counts one delegate session task until the returned guard drops.
    pub fn session_task(&self) -> SessionTask {
        self.sessions.send_modify(|n| *n += 1);
        SessionTask(self.sessions.clone())
    }

    /// Resolves once no delegate session task is left.
    pub async fn sessions_ended(&self) {
        let _ = self.sessions.subscribe().wait_for(|n| *n == 0).await;
    }

    pub fn connected_here(&self) -> usize {
        self.streams.lock().unwrap().len()
    }

    pub fn subscribe_events(&self) -> broadcast::Receiver<Uuid> {
        self.events.subscribe()
    }

    fn wake(&self, id: Uuid) {
        if let Some(s) = self.streams.lock().unwrap().get(&id) {
            s.wake.notify_one();
        }
    }

    fn dispatch(&self, channel: &str, payload: &str) {
        let Ok(id) = payload.parse::<Uuid>() else {
            return;
        };
        match channel {
            WORK => self.wake(id),
            EVENTS => {
                let _ = self.events.send(id);
            }
            crate::schedules::CHANNEL => self.schedules.notify_one(),
            crate::notifications::CHANNEL => self.webhooks.notify_one(),
            _ => {}
        }
    }

    /// Wakes the local streams whose delegate has work waiting (pending runs, aborts to
    /// forward, runs the hub ended that the delegate may still be executing). One query over
    /// the few runs in those states (two partial indexes), whatever the number of delegates
    /// connected here: a delegate held by another replica is not woken here.
    pub async fn poll(&self, pool: &PgPool) -> sqlx::Result<()> {
        if self.streams.lock().unwrap().is_empty() {
            return Ok(());
        }
        let busy: Vec<(Uuid,)> = sqlx::query_as(
            "SELECT delegate_id FROM runs WHERE state IN ('PENDING', 'ABORTING') AND delegate_id IS NOT NULL \
             UNION \
             SELECT delegate_id FROM runs WHERE state = 'ERROR' AND abort_requested_at IS NOT NULL \
               AND ended_at > now() - interval '2 minutes' AND delegate_id IS NOT NULL",
        )
        .fetch_all(pool)
        .await?;
        for (id,) in busy {
            self.wake(id);
        }
        Ok(())
    }

    /// Polls every `every` until `stop` fires.
    pub async fn poll_loop(
        self: Arc<Self>,
        pool: PgPool,
        every: Duration,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut tick = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = tick.tick() => if let Err(e) = self.poll(&pool).await {
                    tracing::warn!(error = %e, "work poll failed");
                },
                _ = stop.changed() => return,
            }
        }
    }

    /// Listens until `stop` fires, reconnecting on errors; after a reconnect it polls at once,
    /// since notifications may have been missed meanwhile.
    pub async fn listen(self: Arc<Self>, pool: PgPool, mut stop: watch::Receiver<bool>) {
        loop {
            let mut listener = match PgListener::connect_with(&pool).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "listen connection failed; retrying");
                    tokio::select! { _ = tokio::time::sleep(Duration::from_secs(1)) => continue, _ = stop.changed() => return }
                }
            };
            if let Err(e) = listener
                .listen_all([
                    WORK,
                    EVENTS,
                    crate::schedules::CHANNEL,
                    crate::notifications::CHANNEL,
                ])
                .await
            {
                tracing::warn!(error = %e, "LISTEN failed; retrying");
                tokio::select! { _ = tokio::time::sleep(Duration::from_secs(1)) => continue, _ = stop.changed() => return }
            }
            let _ = self.poll(&pool).await;
            loop {
                tokio::select! {
                    _ = stop.changed() => return,
                    msg = listener.try_recv() => match msg {
                        Ok(Some(n)) => self.dispatch(n.channel(), n.payload()),
                        Ok(None) => { tracing::warn!("listen connection lost; reconnecting"); let _ = self.poll(&pool).await; }
                        Err(e) => { tracing::warn!(error = %e, "listen failed; reconnecting"); break; }
                    }
                }
            }
        }
    }
}

/// `notify` for many ids in one statement.
pub async fn notify_many<'e>(
    exec: impl PgExecutor<'e>,
    channel: &str,
    ids: &[String],
) -> sqlx::Result<()> {
    sqlx::query("SELECT pg_notify($1, id) FROM unnest($2::text[]) AS id")
        .bind(channel)
        .bind(ids)
        .execute(exec)
        .await?;
    Ok(())
}

pub async fn notify<'e>(exec: impl PgExecutor<'e>, channel: &str, id: Uuid) -> sqlx::Result<()> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(channel)
        .bind(id.to_string())
        .execute(exec)
        .await?;
    Ok(())
}
