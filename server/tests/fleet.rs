//! Fleet lists against the shared test Postgres (one database per test): delegates page by
//! name with cursors, a selector picks in SQL (connected, then freshest), and runs page newest
//! first without gaps or repeats even when many share a creation time.
mod common;

use faultline_hub::{
    db::DEFAULT_PROJECT,
    delegates::{self, Page},
    error::ApiError,
    runs::{self, RunFilter},
};
use uuid::Uuid;

/// A delegate row: `connected` holds a stream with a heartbeat `beat_secs_ago`.
async fn delegate(
    pool: &sqlx::PgPool,
    name: &str,
    labels: serde_json::Value,
    connected: bool,
    beat_secs_ago: f64,
) -> Uuid {
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO delegates (id, project_id, name, labels, credential_hash, connected_replica, last_heartbeat_at) \
         VALUES ($1, $2, $3, $4, $5, $6, now() - make_interval(secs => $7))",
    )
    .bind(id)
    .bind(DEFAULT_PROJECT)
    .bind(name)
    .bind(labels)
    .bind(format!("hash-{id}"))
    .bind(connected.then_some("replica-a"))
    .bind(beat_secs_ago)
    .execute(pool)
    .await
    .unwrap();
    id
}

#[tokio::test]
async fn delegates_page_by_name_and_search_literally() {
    let (pool, _) = common::fresh_pool().await;
    for i in 0..250 {
        delegate(
            &pool,
            &format!("d-{i:03}"),
            serde_json::json!({}),
            true,
            0.0,
        )
        .await;
    }
    delegate(&pool, "a_b", serde_json::json!({}), false, 0.0).await;
    delegate(&pool, "axb", serde_json::json!({}), false, 0.0).await;
    let gone = delegate(&pool, "d-gone", serde_json::json!({}), false, 0.0).await;
    sqlx::query("UPDATE delegates SET revoked_at = now() WHERE id = $1")
        .bind(gone)
        .execute(&pool)
        .await
        .unwrap();

    let mut seen = Vec::new();
    let mut page = Page {
        first: 100,
        ..Page::default()
    };
    loop {
        let rows = delegates::list(&pool, Some(&[DEFAULT_PROJECT]), 15.0, &page)
            .await
            .unwrap();
        assert!(rows.len() <= 100);
        let Some(last) = rows.last() else { break };
        page.after = Some(delegates::parse_cursor("after", &delegates::cursor(last)).unwrap());
        seen.extend(rows.into_iter().map(|d| d.name));
    }
    assert_eq!(
        seen.len(),
        252,
        "every live delegate once, the revoked one never"
    );
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(seen, sorted, "in name order without repeats");

    // `_` and `%` in a search are the characters, not patterns.
    let found = delegates::list(
        &pool,
        None,
        15.0,
        &Page {
            first: 10,
            search: Some("A_B".into()),
            ..Page::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        found.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(),
        ["a_b"]
    );
    let e = delegates::parse_cursor("after", "not-a-cursor").unwrap_err();
    assert!(e.to_string().starts_with("after:"), "{e}");
}

#[tokio::test]
async fn a_selector_prefers_connected_then_freshest() {
    let (pool, _) = common::fresh_pool().await;
    let prod = serde_json::json!({"env": "prod", "zone": "a"});
    delegate(&pool, "stale", prod.clone(), false, 1.0).await;
    delegate(&pool, "old", prod.clone(), true, 10.0).await;
    delegate(&pool, "new", prod.clone(), true, 2.0).await;
    delegate(&pool, "other", serde_json::json!({"env": "dev"}), true, 0.0).await;

    let pick = |sel: &'static str| {
        let pool = pool.clone();
        async move { delegates::select(&pool, DEFAULT_PROJECT, sel, 15.0).await }
    };
    assert_eq!(pick("env=prod").await.unwrap().name, "new");
    assert_eq!(pick("env=prod,zone=a").await.unwrap().name, "new");
    assert_eq!(pick("old").await.unwrap().name, "old");
    match pick("env=qa").await {
        Err(ApiError::NotFound(m)) => assert!(m.contains("env=qa"), "{m}"),
        other => panic!("{other:?}"),
    }
    match pick("nobody").await {
        Err(ApiError::NotFound(m)) => assert!(m.contains("nobody"), "{m}"),
        other => panic!("{other:?}"),
    }
    // With fresh heartbeats counted only within 5 s, "old" is not connected: "new" still wins,
    // and once both are stale the freshest beat decides.
    let picked = delegates::with_labels(
        &pool,
        DEFAULT_PROJECT,
        &delegates::parse_selector("env=prod").unwrap(),
        0.5,
        10,
    )
    .await
    .unwrap();
    assert_eq!(
        picked.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(),
        ["stale", "new", "old"]
    );
}

#[tokio::test]
async fn runs_page_newest_first_without_gaps_or_repeats() {
    let (pool, _) = common::fresh_pool().await;
    let d = delegate(&pool, "d", serde_json::json!({}), true, 0.0).await;
    let t = common::template(&pool, DEFAULT_PROJECT, "t").await;
    // 300 runs over 30 distinct creation times: ten share each.
    sqlx::query(
        "INSERT INTO runs (id, project_id, template_id, template_version, delegate_id, state, planned_ms, created_by, created_at) \
         SELECT gen_random_uuid(), $1, $2, 1, $3, 'PASSED', 1000, 'test', \
                timestamptz '2026-01-01' + (g / 10) * interval '1 minute' \
         FROM generate_series(0, 299) g",
    )
    .bind(DEFAULT_PROJECT)
    .bind(t)
    .bind(d)
    .execute(&pool)
    .await
    .unwrap();

    let mut filter = RunFilter {
        template: Some(t),
        ..RunFilter::default()
    };
    let mut seen: Vec<(chrono::DateTime<chrono::Utc>, Uuid)> = Vec::new();
    loop {
        let page = runs::list(&pool, Some(&[DEFAULT_PROJECT]), &filter, 47)
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        filter.before = Some(last.id);
        seen.extend(page.iter().map(|r| (r.created_at, r.id)));
    }
    assert_eq!(seen.len(), 300);
    let mut want = seen.clone();
    want.sort_by(|a, b| b.cmp(a));
    want.dedup();
    assert_eq!(seen, want, "newest first, ties by id, no repeats");
}
