//! The GraphQL API: one module per area (templates, delegates, runs, schedules...), merged here. Resolvers
//! stay thin: parse arguments, call the store module of their concept, map the result.
mod access;
mod audit_log;
mod delegates;
mod gitops;
mod halt;
mod runs;
mod schedules;
mod templates;
mod webhooks;

use crate::{
    error::ApiError,
    identity::{Principal, Role},
    state::AppState,
};
use async_graphql::{Context, MergedObject, MergedSubscription, Schema, ID};
use uuid::Uuid;

pub use runs::Run;

pub type FaultlineSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

#[derive(MergedObject, Default)]
pub struct QueryRoot(
    templates::TemplateQuery,
    delegates::DelegateQuery,
    runs::RunQuery,
    schedules::ScheduleQuery,
    gitops::GitOpsQuery,
    halt::HaltQuery,
    access::AccessQuery,
    audit_log::AuditQuery,
    webhooks::WebhookQuery,
);

#[derive(MergedObject, Default)]
pub struct MutationRoot(
    templates::TemplateMutation,
    delegates::DelegateMutation,
    runs::RunMutation,
    schedules::ScheduleMutation,
    gitops::GitOpsMutation,
    halt::HaltMutation,
    access::AccessMutation,
    webhooks::WebhookMutation,
);

#[derive(MergedSubscription, Default)]
pub struct SubscriptionRoot(runs::RunSubscription);

/// Builds the schema; `state` is `None` only for printing the SDL.
pub fn schema(state: Option<AppState>) -> FaultlineSchema {
    let mut b = Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        SubscriptionRoot::default(),
    )
    // 15: the standard introspection query (GraphiQL's) nests 13 deep; the complexity limit
    // still bounds what a query may cost.
    .limit_depth(15)
    .limit_complexity(10_000)
    .extension(ErrorCodes);
    if let Some(s) = state {
        b = b.data(s);
    }
    b.finish()
}

/// The replica state and the caller, which every resolver needs.
pub(crate) fn ctx<'a>(c: &Context<'a>) -> async_graphql::Result<(&'a AppState, &'a Principal)> {
    let state = c.data::<AppState>()?;
    let p = c
        .data_opt::<Principal>()
        .ok_or_else(|| ApiError::Unauthenticated("no credentials".into()))?;
    Ok((state, p))
}

/// The id of the project named `name`, if the caller has at least `need` in it. A project the
/// caller has no role in is reported as not found.
pub(crate) async fn project(
    state: &AppState,
    p: &Principal,
    name: &str,
    need: Role,
) -> Result<Uuid, ApiError> {
    let id = crate::db::project_id(&state.pool, name).await?;
    p.require_on(&state.pool, id, need, &format!("project {name:?}"))
        .await?;
    Ok(id)
}

/// The projects a list covers: the named one (which the caller must be able to read), else
/// every project the caller can read (`None`: all of them).
pub(crate) async fn visible(
    state: &AppState,
    p: &Principal,
    name: Option<&str>,
) -> Result<Option<Vec<Uuid>>, ApiError> {
    match name {
        Some(n) => Ok(Some(vec![project(state, p, n, Role::Viewer).await?])),
        None => p.visible(&state.pool).await,
    }
}

/// The named project, else an API token's own project, else `default`; the caller needs `need`.
pub(crate) async fn project_or_default(
    state: &AppState,
    p: &Principal,
    name: Option<&str>,
    need: Role,
) -> Result<Uuid, ApiError> {
    if let (
        None,
        crate::identity::Actor::Token {
            scope: Some((id, _)),
            ..
        },
    ) = (name, &p.actor)
    {
        p.require(&state.pool, *id, need).await?;
        return Ok(*id);
    }
    project(state, p, name.unwrap_or("default"), need).await
}

pub(crate) fn parse_id(field: &str, id: &ID) -> Result<Uuid, ApiError> {
    id.parse::<Uuid>()
        .map_err(|_| ApiError::bad(field, format!("{:?} is not a valid id", id.as_str())))
}

/// Maps `ApiError`s to GraphQL error extensions once, for every response.
pub struct ErrorCodes;

impl async_graphql::extensions::ExtensionFactory for ErrorCodes {
    fn create(&self) -> std::sync::Arc<dyn async_graphql::extensions::Extension> {
        std::sync::Arc::new(ErrorCodes)
    }
}

#[async_trait::async_trait]
impl async_graphql::extensions::Extension for ErrorCodes {
    async fn request(
        &self,
        ctx: &async_graphql::extensions::ExtensionContext<'_>,
        next: async_graphql::extensions::NextRequest<'_>,
    ) -> async_graphql::Response {
        let mut resp = next.run(ctx).await;
        resp.errors.iter_mut().for_each(ApiError::annotate);
        resp
    }

    /// The same for every message of a subscription (e.g. the error that ends `runEvents`
    /// when its caller signs out).
    fn subscribe<'s>(
        &self,
        ctx: &async_graphql::extensions::ExtensionContext<'_>,
        stream: futures::stream::BoxStream<'s, async_graphql::Response>,
        next: async_graphql::extensions::NextSubscribe<'_>,
    ) -> futures::stream::BoxStream<'s, async_graphql::Response> {
        use futures::StreamExt;
        next.run(ctx, stream)
            .map(|mut resp| {
                resp.errors.iter_mut().for_each(ApiError::annotate);
                resp
            })
            .boxed()
    }
}
