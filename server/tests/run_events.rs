//! run_events has no foreign key to runs (migration 0014: the per-row check cost 38 % of every
//! insert); a statement trigger deletes a run's events with the run, however the run goes.
mod common;

use faultline_hub::db::DEFAULT_PROJECT;
use uuid::Uuid;

/// A project with one template and `runs` runs of 3 events each; returns the runs' ids.
async fn runs_with_events(pool: &sqlx::PgPool, project: Uuid, runs: usize) -> Vec<Uuid> {
    let t = common::template(pool, project, &format!("t-{}", Uuid::new_v4())).await;
    let ids: Vec<Uuid> = (0..runs).map(|_| Uuid::new_v4()).collect();
    sqlx::query(
        "INSERT INTO runs (id, project_id, template_id, template_version, state, planned_ms, created_by) \
         SELECT id, $2, $3, 1, 'PASSED', 1000, 'test' FROM UNNEST($1::uuid[]) AS u(id)",
    )
    .bind(&ids)
    .bind(project)
    .bind(t)
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO run_events (run_id, seq, at, kind, payload) \
         SELECT id, s, now(), 'probe.check', '{}' FROM UNNEST($1::uuid[]) AS u(id), generate_series(1, 3) s",
    )
    .bind(&ids)
    .execute(pool)
    .await
    .unwrap();
    ids
}

async fn events_of(pool: &sqlx::PgPool, runs: &[Uuid]) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM run_events WHERE run_id = ANY($1)")
        .bind(runs)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn deleting_runs_deletes_their_events_and_only_theirs() {
    let (pool, _) = common::fresh_pool().await;
    let fk: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_constraint WHERE conrelid = 'run_events'::regclass AND contype = 'f'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(fk, 0, "no per-row foreign key check on run_events");

    let ids = runs_with_events(&pool, DEFAULT_PROJECT, 5).await;
    assert_eq!(events_of(&pool, &ids).await, 15);
    // Two runs in one statement.
    sqlx::query("DELETE FROM runs WHERE id = ANY($1)")
        .bind(&ids[..2])
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(
        events_of(&pool, &ids[..2]).await,
        0,
        "the deleted runs' events"
    );
    assert_eq!(
        events_of(&pool, &ids[2..]).await,
        9,
        "the other runs keep theirs"
    );
}

#[tokio::test]
async fn deleting_a_project_deletes_its_runs_events_through_the_cascade() {
    let (pool, _) = common::fresh_pool().await;
    let project = Uuid::new_v4();
    sqlx::query("INSERT INTO projects (id, name) VALUES ($1, 'doomed')")
        .bind(project)
        .execute(&pool)
        .await
        .unwrap();
    let doomed = runs_with_events(&pool, project, 3).await;
    let kept = runs_with_events(&pool, DEFAULT_PROJECT, 2).await;
    // projects → runs is ON DELETE CASCADE; the cascade's DELETE fires the trigger.
    sqlx::query("DELETE FROM projects WHERE id = $1")
        .bind(project)
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(events_of(&pool, &doomed).await, 0);
    assert_eq!(events_of(&pool, &kept).await, 6);
}
