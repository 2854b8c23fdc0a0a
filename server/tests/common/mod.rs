//! What the hub's integration tests share.
use std::time::Duration;

/// A fresh, migrated database on the shared test server (`FAULTLINE_TEST_PG`); its pool and URL.
pub async fn fresh_pool() -> (sqlx::PgPool, String) {
    use sqlx::Connection;
    let admin = std::env::var("FAULTLINE_TEST_PG")
        .expect("FAULTLINE_TEST_PG is not set: run the tests with ./scripts/test.sh");
    let mut c = sqlx::PgConnection::connect(&admin).await.unwrap();
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut c)
        .await
        .unwrap();
    let (head, query) = admin.split_once('?').unwrap_or((&admin, ""));
    let base = head.rsplit_once('/').map(|(b, _)| b).unwrap_or(head);
    let url = if query.is_empty() {
        format!("{base}/{name}")
    } else {
        format!("{base}/{name}?{query}")
    };
    let pool = faultline_hub::db::connect(&url, 4, Duration::from_secs(10))
        .await
        .unwrap();
    faultline_hub::db::migrate(&pool).await.unwrap();
    (pool, url)
}

/// A template named `name` in `project` with one empty version 1; its id.
#[allow(dead_code)] // each test binary compiles this module; not all of them make templates
pub async fn template(pool: &sqlx::PgPool, project: uuid::Uuid, name: &str) -> uuid::Uuid {
    let t = uuid::Uuid::new_v4();
    sqlx::query("INSERT INTO templates (id, project_id, name) VALUES ($1, $2, $3)")
        .bind(t)
        .bind(project)
        .bind(name)
        .execute(pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO template_versions (template_id, version, yaml, spec, created_by) VALUES ($1, 1, '', '{}', 'test')",
    )
    .bind(t)
    .execute(pool)
    .await
    .unwrap();
    t
}
