//! Delegate heartbeats, written to Postgres in batches: a stream records its delegate's beat in
//! memory and is answered at once; one `UPDATE … FROM UNNEST` per flush stores every beat of the
//! replica since the last one. 10,000 delegates beating every second cost one statement a
//! second, not 10,000, and a database outage does not stall the streams: the beats are kept
//! and written when it returns.
//!
//! A beat whose row did not change (another stream of the delegate took over on some replica, or
//! it was revoked) marks that stream dead; its session loop sees it on its next tick and ends.
use sqlx::PgPool;
use std::{
    collections::{HashMap, HashSet},
    sync::Mutex,
    time::Duration,
};
use uuid::Uuid;

#[derive(Default)]
pub struct Liveness {
    /// Beats since the last flush: delegate → its stream's session.
    beats: Mutex<HashMap<Uuid, Uuid>>,
    /// Sessions whose beat matched no row: superseded or revoked.
    dead: Mutex<HashSet<Uuid>>,
}

impl Liveness {
    /// Records that `delegate`'s stream `session` is alive.
    pub fn beat(&self, delegate: Uuid, session: Uuid) {
        self.beats.lock().unwrap().insert(delegate, session);
    }

    /// True (once) when `session`'s beats stopped matching its delegate's row.
    pub fn take_dead(&self, session: Uuid) -> bool {
        self.dead.lock().unwrap().remove(&session)
    }

    /// Forgets a stream that ended.
    pub fn forget(&self, delegate: Uuid, session: Uuid) {
        let mut beats = self.beats.lock().unwrap();
        if beats.get(&delegate) == Some(&session) {
            beats.remove(&delegate);
        }
        self.dead.lock().unwrap().remove(&session);
    }

    /// Writes the pending beats in one statement; returns how many rows it updated (`None`:
    /// there was nothing to write). On a database error the beats are kept (unless a newer one
    /// replaced them) for the next flush.
    pub async fn flush(&self, pool: &PgPool) -> sqlx::Result<Option<usize>> {
        let batch: Vec<(Uuid, Uuid)> = self.beats.lock().unwrap().drain().collect();
        if batch.is_empty() {
            return Ok(None);
        }
        let (ids, sessions): (Vec<Uuid>, Vec<Uuid>) = batch.iter().copied().unzip();
        let live: Vec<(Uuid,)> = match sqlx::query_as(
            "UPDATE delegates d SET last_heartbeat_at = now() \
             FROM UNNEST($1::uuid[], $2::uuid[]) AS u(id, session) \
             WHERE d.id = u.id AND d.session_id = u.session AND d.revoked_at IS NULL \
             RETURNING d.session_id",
        )
        .bind(&ids)
        .bind(&sessions)
        .fetch_all(pool)
        .await
        {
            Ok(rows) => rows,
            Err(e) => {
                let mut beats = self.beats.lock().unwrap();
                for (id, session) in batch {
                    beats.entry(id).or_insert(session);
                }
                return Err(e);
            }
        };
        let live: HashSet<Uuid> = live.into_iter().map(|r| r.0).collect();
        let mut dead = self.dead.lock().unwrap();
        for session in sessions.iter().filter(|s| !live.contains(s)) {
            dead.insert(*session);
        }
        Ok(Some(live.len()))
    }

    /// Flushes every `every` until `stop`, then once more.
    pub async fn run(
        self: std::sync::Arc<Self>,
        pool: PgPool,
        every: Duration,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                _ = tick.tick() => {}
            }
            match self.flush(&pool).await {
                Ok(Some(_)) if failing => {
                    failing = false;
                    tracing::info!("delegate heartbeats are stored again");
                }
                Ok(_) => {}
                Err(e) if !failing => {
                    failing = true;
                    tracing::warn!(error = %e, "cannot store delegate heartbeats; keeping them for the next try");
                }
                Err(_) => {}
            }
        }
        let _ = self.flush(&pool).await;
    }
}

/// How often a replica writes its delegates' beats: often enough that a delegate beating every
/// `heartbeat` never looks older than twice that (it counts as connected up to three times).
pub fn flush_interval(heartbeat: Duration) -> Duration {
    (heartbeat / 2).clamp(Duration::from_millis(100), Duration::from_secs(5))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newer_session_replaces_the_pending_beat_and_forget_keeps_it() {
        let l = Liveness::default();
        let (d, s1, s2) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        l.beat(d, s1);
        l.beat(d, s2);
        l.forget(d, s1); // the old stream ended: the new one's beat stays
        assert_eq!(l.beats.lock().unwrap().get(&d), Some(&s2));
        l.forget(d, s2);
        assert!(l.beats.lock().unwrap().is_empty());
    }

    #[test]
    fn the_flush_interval_is_half_the_heartbeat_within_bounds() {
        assert_eq!(
            flush_interval(Duration::from_secs(1)),
            Duration::from_millis(500)
        );
        assert_eq!(
            flush_interval(Duration::from_secs(60)),
            Duration::from_secs(5)
        );
        assert_eq!(
            flush_interval(Duration::from_millis(50)),
            Duration::from_millis(100)
        );
    }
}
