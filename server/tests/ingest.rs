//! Event ingest against the shared test Postgres: every event is stored exactly once whatever
//! arrives twice, out of order, after a gap, or from two streams of the same run at the same
//! time; the acknowledged prefix is the highest seq up to which everything is stored; a check
//! counts once in the run's tally.
mod common;

use faultline_hub::{db::DEFAULT_PROJECT, ingest::ingest};
use faultline_proto::v1 as pb;
use std::collections::BTreeSet;
use uuid::Uuid;

struct Fixture {
    pool: sqlx::PgPool,
    delegate: Uuid,
    run: Uuid,
}

async fn fixture() -> Fixture {
    let (pool, _) = common::fresh_pool().await;
    let delegate = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO delegates (id, project_id, name, labels, credential_hash) VALUES ($1, $2, 'd', '{}', 'h')",
    )
    .bind(delegate)
    .bind(DEFAULT_PROJECT)
    .execute(&pool)
    .await
    .unwrap();
    let t = common::template(&pool, DEFAULT_PROJECT, "t").await;
    let run = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO runs (id, project_id, template_id, template_version, delegate_id, state, planned_ms, created_by) \
         VALUES ($1, $2, $3, 1, $4, 'RUNNING', 60000, 'test')",
    )
    .bind(run)
    .bind(DEFAULT_PROJECT)
    .bind(t)
    .bind(delegate)
    .execute(&pool)
    .await
    .unwrap();
    Fixture {
        pool,
        delegate,
        run,
    }
}

/// A passing check with seq `seq` (latency = seq ms, so the sum tells which were stored).
fn check(run: Uuid, seq: u64) -> pb::Event {
    pb::Event {
        run_id: run.to_string(),
        seq,
        at_ms: chrono::Utc::now().timestamp_millis(),
        kind: "probe.check".into(),
        payload_json: serde_json::json!({"probe": "web", "phase": "during", "step": 0, "ok": true,
            "latencyMs": seq as f64, "detail": "200 OK", "mode": "continuous", "attempts": 1,
            "countsFor": [0]})
        .to_string(),
    }
}

impl Fixture {
    /// Ingests `seqs` as one batch; returns the run's acknowledged prefix.
    async fn send(&self, seqs: impl IntoIterator<Item = u64>) -> u64 {
        let batch = seqs.into_iter().map(|s| check(self.run, s)).collect();
        let acks = ingest(&self.pool, self.delegate, batch).await.unwrap();
        assert_eq!(acks.len(), 1, "{acks:?}");
        assert_eq!(acks[0].0, self.run);
        acks[0].1
    }

    /// The stored seqs (asserting none twice), and the run's acked seq and passed-check tally.
    async fn stored(&self) -> (BTreeSet<i64>, i64, i32) {
        let seqs: Vec<i64> = sqlx::query_scalar("SELECT seq FROM run_events WHERE run_id = $1")
            .bind(self.run)
            .fetch_all(&self.pool)
            .await
            .unwrap();
        let set: BTreeSet<i64> = seqs.iter().copied().collect();
        assert_eq!(set.len(), seqs.len(), "a seq stored twice: {seqs:?}");
        let (acked, ok): (i64, i32) =
            sqlx::query_as("SELECT acked_seq, checks_ok FROM runs WHERE id = $1")
                .bind(self.run)
                .fetch_one(&self.pool)
                .await
                .unwrap();
        (set, acked, ok)
    }
}

fn range(a: i64, b: i64) -> BTreeSet<i64> {
    (a..=b).collect()
}

#[tokio::test]
async fn duplicates_gaps_and_reordering_store_each_event_once() {
    let f = fixture().await;
    assert_eq!(f.send(1..=5).await, 5);
    // The same batch again (its ack was lost): nothing new, same prefix.
    assert_eq!(f.send(1..=5).await, 5);
    assert_eq!(f.stored().await, (range(1, 5), 5, 5));
    // After a gap: stored, not acknowledged past the gap.
    assert_eq!(f.send(8..=10).await, 5);
    assert_eq!(
        f.stored().await.0,
        range(1, 5).union(&range(8, 10)).copied().collect()
    );
    // The gap filled, with replays from below the prefix and from above the gap in the batch:
    // the prefix runs through what was stored above the gap.
    assert_eq!(f.send([4, 5, 6, 9, 7]).await, 10);
    assert_eq!(f.stored().await, (range(1, 10), 10, 10));
    // Stored above a gap, then replayed with the gap's seq: still once each.
    assert_eq!(f.send([12, 13]).await, 10);
    assert_eq!(f.send([13, 11, 12]).await, 13);
    assert_eq!(f.stored().await, (range(1, 13), 13, 13));
    // A batch entirely below the prefix changes nothing.
    assert_eq!(f.send([2, 3]).await, 13);
    assert_eq!(f.stored().await, (range(1, 13), 13, 13));
}

#[tokio::test]
async fn two_streams_sending_overlapping_batches_at_once_store_each_event_once() {
    let f = fixture().await;
    assert_eq!(f.send(1..=10).await, 10);
    // A delegate that moved to another replica while its old stream still had batches in
    // flight: both replicas ingest overlapping ranges of the same run at the same time.
    let mut tasks = Vec::new();
    for i in 0..8u64 {
        let (pool, delegate, run) = (f.pool.clone(), f.delegate, f.run);
        tasks.push(tokio::spawn(async move {
            let lo = 11 + i * 25;
            let batch = (lo..lo + 60).map(|s| check(run, s)).collect();
            ingest(&pool, delegate, batch).await.unwrap()
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // 11 + 7 × 25 + 59 = 245
    assert_eq!(f.stored().await, (range(1, 245), 245, 245));
}
