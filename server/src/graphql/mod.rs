//! The GraphQL API: one module per area (templates, delegates, runs), merged here. Resolvers
//! stay thin: parse arguments, call the store module of their concept, map the result.
mod delegates;
mod halt;
mod runs;
mod templates;

use crate::{auth::Principal, error::ApiError, state::AppState};
use async_graphql::{Context, MergedObject, MergedSubscription, Schema, ID};
use uuid::Uuid;

pub use runs::Run;

pub type FaultlineSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

#[derive(MergedObject, Default)]
pub struct QueryRoot(
    templates::TemplateQuery,
    delegates::DelegateQuery,
    runs::RunQuery,
    halt::HaltQuery,
);

#[derive(MergedObject, Default)]
pub struct MutationRoot(
    templates::TemplateMutation,
    delegates::DelegateMutation,
    runs::RunMutation,
    halt::HaltMutation,
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
    .limit_depth(12)
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

/// Project scope of a request: the named project (checked against the token), else the token's.
pub(crate) async fn scope(
    state: &AppState,
    p: &Principal,
    project: Option<&str>,
) -> Result<Option<Uuid>, ApiError> {
    match project {
        Some(name) => {
            let id = crate::db::project_id(&state.pool, name).await?;
            p.require_project(id)?;
            Ok(Some(id))
        }
        None => Ok(p.project_id),
    }
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
}
