//! The connection pool and migrations. Every table comes from `migrations/`.
use anyhow::Context;
use sqlx::{postgres::PgPoolOptions, PgPool};
use std::time::Duration;

/// A pool of at most `max_connections`; a request waits up to `acquire` for one.
pub async fn connect(url: &str, max_connections: u32, acquire: Duration) -> anyhow::Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(acquire)
        .connect(url)
        .await
        .context("failed to connect to postgres")
}

/// Applies pending migrations; concurrent replicas serialise on sqlx's advisory lock.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    sqlx::migrate!("../migrations")
        .run(pool)
        .await
        .context("failed to apply migrations")
}

/// The id of the `default` project every fresh database has.
pub const DEFAULT_PROJECT: uuid::Uuid = uuid::Uuid::from_u128(1);

/// Resolves a project name to its id.
pub async fn project_id(pool: &PgPool, name: &str) -> crate::error::ApiResult<uuid::Uuid> {
    let row: Option<(uuid::Uuid,)> = sqlx::query_as("SELECT id FROM projects WHERE name = $1")
        .bind(name)
        .fetch_optional(pool)
        .await?;
    row.map(|r| r.0)
        .ok_or_else(|| crate::error::ApiError::NotFound(format!("project {name:?}")))
}

/// A project's name.
pub async fn project_name(pool: &PgPool, id: uuid::Uuid) -> crate::error::ApiResult<String> {
    let row: Option<(String,)> = sqlx::query_as("SELECT name FROM projects WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    row.map(|r| r.0)
        .ok_or_else(|| crate::error::ApiError::NotFound(format!("project {id}")))
}
