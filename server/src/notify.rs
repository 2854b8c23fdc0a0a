//! Cross-replica wake-ups through Postgres LISTEN/NOTIFY, so any replica can serve any request:
//! `faultline_work` (payload: delegate id) wakes the replica holding that delegate's stream, and
//! `faultline_events` (payload: run id) wakes `runEvents` subscribers. Notifications are only
//! hints: every consumer also polls, so a lost one delays work but never loses it.
use sqlx::{postgres::PgListener, PgExecutor, PgPool};
use std::{collections::HashMap, sync::Arc, sync::Mutex, time::Duration};
use tokio::sync::{broadcast, Notify};
use uuid::Uuid;

pub const WORK: &str = "faultline_work";
pub const EVENTS: &str = "faultline_events";

#[derive(Default)]
pub struct Hub {
    /// One wake-up per delegate stream held by this replica.
    delegates: Mutex<HashMap<Uuid, Arc<Notify>>>,
    events: std::sync::OnceLock<broadcast::Sender<Uuid>>,
}

impl Hub {
    pub fn new() -> Arc<Self> {
        let hub = Hub::default();
        let _ = hub.events.set(broadcast::channel(1024).0);
        Arc::new(hub)
    }

    pub fn register_delegate(&self, id: Uuid) -> Arc<Notify> {
        self.delegates
            .lock()
            .unwrap()
            .entry(id)
            .or_default()
            .clone()
    }

    pub fn unregister_delegate(&self, id: Uuid, n: &Arc<Notify>) {
        let mut map = self.delegates.lock().unwrap();
        if map.get(&id).is_some_and(|cur| Arc::ptr_eq(cur, n)) {
            map.remove(&id);
        }
    }

    pub fn connected_here(&self) -> usize {
        self.delegates.lock().unwrap().len()
    }

    pub fn subscribe_events(&self) -> broadcast::Receiver<Uuid> {
        self.events.get().expect("set in new").subscribe()
    }

    fn dispatch(&self, channel: &str, payload: &str) {
        let Ok(id) = payload.parse::<Uuid>() else {
            return;
        };
        match channel {
            WORK => {
                if let Some(n) = self.delegates.lock().unwrap().get(&id) {
                    n.notify_one();
                }
            }
            EVENTS => {
                let _ = self.events.get().expect("set in new").send(id);
            }
            _ => {}
        }
    }

    fn wake_all(&self) {
        for n in self.delegates.lock().unwrap().values() {
            n.notify_one();
        }
    }

    /// Listens until `stop` fires, reconnecting on errors; after a reconnect every local stream
    /// re-polls, since notifications may have been missed meanwhile.
    pub async fn listen(
        self: Arc<Self>,
        pool: PgPool,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            let mut listener = match PgListener::connect_with(&pool).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "listen connection failed; retrying");
                    tokio::select! { _ = tokio::time::sleep(Duration::from_secs(1)) => continue, _ = stop.changed() => return }
                }
            };
            if let Err(e) = listener.listen_all([WORK, EVENTS]).await {
                tracing::warn!(error = %e, "LISTEN failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            self.wake_all();
            loop {
                tokio::select! {
                    _ = stop.changed() => return,
                    msg = listener.try_recv() => match msg {
                        Ok(Some(n)) => self.dispatch(n.channel(), n.payload()),
                        Ok(None) => { tracing::warn!("listen connection lost; reconnecting"); self.wake_all(); }
                        Err(e) => { tracing::warn!(error = %e, "listen failed; reconnecting"); break; }
                    }
                }
            }
        }
    }
}

pub async fn notify<'e>(exec: impl PgExecutor<'e>, channel: &str, id: Uuid) -> sqlx::Result<()> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(channel)
        .bind(id.to_string())
        .execute(exec)
        .await?;
    Ok(())
}
