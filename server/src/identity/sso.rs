//! The SSO endpoints: `/auth/providers`, `/auth/oidc/{name}/login` (redirects to the provider)
//! and `/auth/oidc/{name}/callback` (checks the answer, makes or updates the user, maps its
//! claims to project roles, starts a session). The OpenID Connect checks themselves live in
//! [`crate::oidc`].
use super::{routes::error_response, users, Role};
use crate::{audit, error::ApiError, oidc, perimeter::ClientIp, state::AppState};
use axum::{
    extract::{Path, Query, State},
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
    Json, Router,
};
use serde::Deserialize;
use serde_json::json;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/providers", get(providers))
        .route("/auth/oidc/{name}/login", get(login))
        .route("/auth/oidc/{name}/callback", get(callback))
}

/// The configured providers, for a login page's "Sign in with …" buttons.
async fn providers(State(s): State<AppState>) -> Json<serde_json::Value> {
    let list: Vec<_> = s
        .oidc
        .providers()
        .map(|p| {
            json!({
                "name": p.name,
                "displayName": p.display_name.clone().unwrap_or_else(|| p.name.clone()),
                "loginUrl": format!("/auth/oidc/{}/login", p.name),
            })
        })
        .collect();
    Json(json!(list))
}

/// Where the provider sends the browser back: `--public-url`, else the request's own host.
fn callback_url(s: &AppState, headers: &HeaderMap, name: &str) -> Result<String, ApiError> {
    let base = match &s.public_url {
        Some(u) => u.trim_end_matches('/').to_string(),
        None => {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .filter(|h| !h.is_empty() && !h.contains(['/', '@', ' ']))
                .ok_or_else(|| ApiError::bad("Host", "missing; set --public-url"))?;
            format!("https://{host}")
        }
    };
    Ok(format!("{base}/auth/oidc/{name}/callback"))
}

async fn login(
    State(s): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    let res = async {
        let redirect = callback_url(&s, &headers, &name)?;
        let (url, _pending) = s.oidc.begin(&name, &redirect).await?;
        Ok::<_, ApiError>(url)
    }
    .await;
    match res {
        Ok(url) => (StatusCode::SEE_OTHER, [(header::LOCATION, url.to_string())]).into_response(),
        Err(e) => error_response(&e),
    }
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

async fn callback(
    State(s): State<AppState>,
    Path(name): Path<String>,
    ClientIp(address): ClientIp,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Response {
    let res = finish(&s, &name, address, q).await;
    let (actor, outcome) = match &res {
        Ok((user, _)) => (format!("user:{}", user.email), "ok".to_string()),
        Err(e) => (format!("sso:{name}"), format!("error:{}", e.code())),
    };
    audit::write(
        &s.pool,
        audit::Entry {
            actor,
            project: None,
            action: "login",
            target: format!("oidc:{name}"),
            address: Some(address),
            outcome,
            detail: match &res {
                Err(e) => json!({"reason": e.to_string()}),
                Ok(_) => json!({}),
            },
        },
    )
    .await;
    match res {
        Ok((_, issued)) => {
            let cookie = super::sessions::set_cookie(&issued, s.sessions.ttl);
            let mut r = (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
            if let Ok(v) = header::HeaderValue::from_str(&cookie) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        // A browser goes back to the dashboard's login page, which shows why.
        Err(e) if wants_html(&headers) => {
            let to = url::form_urlencoded::Serializer::new(String::from("/login?"))
                .append_pair("error", &e.to_string())
                .finish();
            (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response()
        }
        Err(e) => error_response(&e),
    }
}

fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
}

/// The callback's work: the provider's answer checked, the user made or updated, its mapped
/// roles applied, a session started.
async fn finish(
    s: &AppState,
    name: &str,
    address: std::net::IpAddr,
    q: CallbackQuery,
) -> Result<(users::UserRow, super::sessions::Issued), ApiError> {
    super::routes::login_allowed(s, address).await?;
    if let Some(err) = q.error {
        let why = q.error_description.unwrap_or_default();
        return Err(ApiError::Sso(
            format!("the provider refused the login: {err} {why}")
                .trim()
                .into(),
        ));
    }
    let (code, state) = match (q.code, q.state) {
        (Some(c), Some(st)) if c.len() <= 4096 && st.len() <= 512 => (c, st),
        _ => return Err(ApiError::Sso("the callback lacks `code` or `state`".into())),
    };
    let id = s.oidc.finish(name, &state, &code).await?;
    let email = id.email.clone().ok_or_else(|| {
        ApiError::Sso("the ID token has no `email` claim (ask for the email scope)".into())
    })?;
    let provider = s
        .oidc
        .providers()
        .find(|p| p.name == name)
        .ok_or_else(|| ApiError::NotFound(format!("SSO provider {name:?}")))?;
    let mapped = oidc::map_roles(provider, &id);
    let user = users::upsert_sso(
        &s.pool,
        name,
        &id.subject,
        &email,
        id.name.as_deref().unwrap_or_default(),
        mapped.admin,
    )
    .await?;
    let mut grants = Vec::new();
    for g in &mapped.grants {
        match crate::db::project_id(&s.pool, &g.project).await {
            Ok(pid) => grants.push((pid, Role::parse("role", &g.role)?)),
            Err(_) => tracing::warn!(
                provider = name,
                project = g.project,
                "role mapping names a project that does not exist; skipped"
            ),
        }
    }
    users::sync_sso_memberships(&s.pool, user.id, name, &grants).await?;
    let issued = s
        .sessions
        .start(&s.pool, &user, &format!("oidc:{name}"), Some(address))
        .await?;
    Ok((user, issued))
}
