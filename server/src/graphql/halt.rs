//! GraphQL: halt-all, the project's emergency stop (`haltAll`, `liftHalt`, `halt`).
use super::{ctx, project_or_default};
use crate::{audit, halt, identity::Role};
use async_graphql::{Context, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

/// A project's halt state.
#[derive(SimpleObject)]
pub struct Halt {
    pub project: String,
    /// Whether the project is halted now: no run starts until an owner lifts it.
    pub halted: bool,
    pub halted_at: Option<DateTime<Utc>>,
    pub halted_by: Option<String>,
    pub reason: Option<String>,
    /// Unfinished runs this halt aborted (0 when reading or lifting).
    pub aborted_runs: i64,
    /// Delegates of the project told to stop everything (0 when reading or lifting).
    pub delegates: i64,
}

impl From<halt::HaltRow> for Halt {
    fn from(r: halt::HaltRow) -> Self {
        Halt {
            project: r.project,
            halted: r.halted_at.is_some(),
            halted_at: r.halted_at,
            halted_by: r.halted_by,
            reason: r.halt_reason,
            aborted_runs: 0,
            delegates: 0,
        }
    }
}

#[derive(Default)]
pub struct HaltQuery;

#[Object]
impl HaltQuery {
    /// Whether the project (default: the token's, else `default`) is halted, since when, by whom and why.
    async fn halt(&self, c: &Context<'_>, project: Option<String>) -> Result<Halt> {
        let (s, p) = ctx(c)?;
        let id = project_or_default(s, p, project.as_deref(), Role::Viewer).await?;
        Ok(halt::status(&s.pool, id).await?.into())
    }
}

#[derive(Default)]
pub struct HaltMutation;

#[Object]
impl HaltMutation {
    /// Emergency stop (owners): aborts every unfinished run of the project, tells every delegate of the
    /// project to revert every fault at once (a delegate offline now is told when it
    /// reconnects), and refuses new runs (`PROJECT_HALTED`) until an owner calls `liftHalt`.
    async fn halt_all(
        &self,
        c: &Context<'_>,
        project: Option<String>,
        reason: String,
    ) -> Result<Halt> {
        let (s, p) = ctx(c)?;
        let id = project_or_default(s, p, project.as_deref(), Role::Viewer).await?;
        let res = match p.require(&s.pool, id, Role::Owner).await {
            Ok(_) => halt::halt(&s.pool, id, &p.actor(), &reason).await,
            Err(e) => Err(e),
        };
        audit::record(&s.pool, p, Some(id), "project.halt", reason.clone(), &res).await;
        let h = res?;
        Ok(Halt {
            aborted_runs: h.aborted_runs,
            delegates: h.delegates,
            ..h.row.into()
        })
    }

    /// Lifts the halt so runs may start again (owners only).
    async fn lift_halt(&self, c: &Context<'_>, project: Option<String>) -> Result<Halt> {
        let (s, p) = ctx(c)?;
        let id = project_or_default(s, p, project.as_deref(), Role::Viewer).await?;
        let res = match p.require(&s.pool, id, Role::Owner).await {
            Ok(_) => halt::lift(&s.pool, id, &p.actor()).await,
            Err(e) => Err(e),
        };
        audit::record(
            &s.pool,
            p,
            Some(id),
            "project.lift_halt",
            String::new(),
            &res,
        )
        .await;
        Ok(res?.into())
    }
}
