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
