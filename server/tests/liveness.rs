//! Batched delegate heartbeats against the shared test Postgres (`FAULTLINE_TEST_PG`, one
//! database per test): one statement stores many beats, a replaced or revoked stream is found
//! dead, and beats survive a failed flush.
mod common;

use faultline_hub::{db::DEFAULT_PROJECT, liveness::Liveness};
use std::time::Duration;
use uuid::Uuid;

/// A connected delegate's row; returns (id, session).
async fn delegate(pool: &sqlx::PgPool, name: &str) -> (Uuid, Uuid) {
    let (id, session) = (Uuid::new_v4(), Uuid::new_v4());
    sqlx::query(
        "INSERT INTO delegates (id, project_id, name, credential_hash, session_id) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(DEFAULT_PROJECT)
    .bind(name)
    .bind(format!("hash-{id}"))
    .bind(session)
    .execute(pool)
    .await
    .unwrap();
    (id, session)
}

async fn beat_age(pool: &sqlx::PgPool, id: Uuid) -> Option<f64> {
    let (age,): (Option<f64>,) = sqlx::query_as(
        "SELECT EXTRACT(EPOCH FROM now() - last_heartbeat_at)::float8 FROM delegates WHERE id = $1",
    )
    .bind(id)
    .fetch_one(pool)
    .await
    .unwrap();
    age
}

#[tokio::test]
async fn one_flush_stores_every_beat_and_finds_replaced_and_revoked_streams() {
    let (pool, _) = common::fresh_pool().await;
    let live = Liveness::default();
    let mut all = Vec::new();
    for i in 0..500 {
        all.push(delegate(&pool, &format!("d{i}")).await);
    }
    for (id, session) in &all {
        live.beat(*id, *session);
    }
    // d0's stream was replaced by a newer one (on any replica); d1 was revoked.
    let (d0, s0) = all[0];
    let (d1, s1) = all[1];
    sqlx::query("UPDATE delegates SET session_id = $2 WHERE id = $1")
        .bind(d0)
        .bind(Uuid::new_v4())
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE delegates SET revoked_at = now() WHERE id = $1")
        .bind(d1)
        .execute(&pool)
        .await
        .unwrap();

    assert_eq!(live.flush(&pool).await.unwrap(), Some(498));
    assert!(beat_age(&pool, all[2].0).await.unwrap() < 5.0);
    assert!(beat_age(&pool, all[499].0).await.unwrap() < 5.0);
    assert_eq!(
        beat_age(&pool, d0).await,
        None,
        "a replaced stream's beat is not stored"
    );
    assert!(live.take_dead(s0), "the replaced stream is told to end");
    assert!(
        live.take_dead(s1),
        "the revoked delegate's stream is told to end"
    );
    assert!(!live.take_dead(s0), "told once");
    assert!(!live.take_dead(all[2].1));
    assert_eq!(
        live.flush(&pool).await.unwrap(),
        None,
        "nothing new to write"
    );
}

#[tokio::test]
async fn beats_are_kept_through_a_failed_flush() {
    let (pool, url) = common::fresh_pool().await;
    let (id, session) = delegate(&pool, "d").await;
    let live = Liveness::default();
    live.beat(id, session);
    // A pool whose database is gone: the flush fails and keeps the beat.
    let broken = faultline_hub::db::connect(&url, 1, Duration::from_millis(500))
        .await
        .unwrap();
    broken.close().await;
    let err = live.flush(&broken).await.expect_err("closed pool");
    assert!(faultline_hub::error::unavailable(&err).is_some(), "{err}");
    assert_eq!(beat_age(&pool, id).await, None);
    assert_eq!(
        live.flush(&pool).await.unwrap(),
        Some(1),
        "written on the next flush"
    );
    assert!(beat_age(&pool, id).await.unwrap() < 5.0);
}
