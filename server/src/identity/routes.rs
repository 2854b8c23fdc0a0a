//! The `/auth` endpoints: password login, logout, and who am I. (SSO logins land in the same
//! session machinery.) Handlers are thin: parse, call users/sessions, audit, answer.
use super::{authn::Credential, users, Actor};
use crate::{audit, error::ApiError, perimeter::ClientIp, state::AppState};
use axum::{
    extract::State,
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use serde::Deserialize;
use serde_json::json;

/// Failed logins from one address within a minute before further attempts are refused.
pub const MAX_FAILED_LOGINS: i64 = 10;
/// Largest body of an `/auth` request.
const MAX_BODY: usize = 16 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/login", post(login))
        .route("/auth/logout", post(logout))
        .route("/auth/me", get(me))
        .route("/auth/session", get(session))
        .merge(super::sso::router())
        .layer(tower_http::limit::RequestBodyLimitLayer::new(MAX_BODY))
}

#[derive(Deserialize)]
struct LoginBody {
    email: String,
    password: String,
}

/// An error answer: `{"error": message, "code": CODE}` with the error's HTTP status.
pub fn error_response(e: &ApiError) -> Response {
    e.http_response()
}

/// Refuses a login attempt from an address with [`MAX_FAILED_LOGINS`] failures in the last
/// minute (password and SSO logins alike).
pub async fn login_allowed(s: &AppState, address: std::net::IpAddr) -> Result<(), ApiError> {
    if audit::recent_login_failures(&s.pool, Some(address)).await? >= MAX_FAILED_LOGINS {
        return Err(ApiError::RateLimited(
            "too many failed logins from this address; try again in a minute".into(),
        ));
    }
    Ok(())
}

async fn login(
    State(s): State<AppState>,
    ClientIp(address): ClientIp,
    body: Result<Json<LoginBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(body) = match body {
        Ok(b) => b,
        Err(e) => {
            return error_response(&ApiError::bad(
                "body",
                format!("send JSON {{\"email\", \"password\"}} ({})", e.body_text()),
            ))
        }
    };
    let entry = |outcome: String| audit::Entry {
        actor: format!("user:{}", body.email.trim().to_lowercase()),
        project: None,
        action: "login",
        target: "password".into(),
        address: Some(address),
        outcome,
        detail: json!({}),
    };
    let res = async {
        login_allowed(&s, address).await?;
        let user = users::check_password(&s.pool, &body.email, &body.password)
            .await?
            .ok_or_else(|| ApiError::Unauthenticated("invalid email or password".into()))?;
        let issued = s
            .sessions
            .start(&s.pool, &user, "password", Some(address))
            .await?;
        Ok((user, issued))
    }
    .await;
    audit::write(&s.pool, entry(audit::outcome(&res))).await;
    match res {
        Ok((user, issued)) => {
            let cookie = super::sessions::set_cookie(&issued, s.sessions.ttl);
            let mut r = Json(json!({
                "token": issued.token,
                "expiresAt": issued.expires_at,
                "user": {"id": user.id, "email": user.email, "name": user.name, "admin": user.is_admin},
            }))
            .into_response();
            if let Ok(v) = header::HeaderValue::from_str(&cookie) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Err(e) => error_response(&e),
    }
}

/// Ends the caller's session (cookie or Bearer session token) for every replica and clears the
/// cookie. Without a session it only clears the cookie.
async fn logout(
    State(s): State<AppState>,
    ClientIp(address): ClientIp,
    headers: HeaderMap,
) -> Response {
    let cred = Credential::from_headers(&headers);
    if let Ok(p) = super::authn::authenticate(&s, cred.as_ref(), Some(address)).await {
        if let Actor::User { session, .. } = p.actor {
            let res = super::sessions::revoke(&s.pool, session).await;
            audit::record(&s.pool, &p, None, "logout", session.to_string(), &res).await;
            if let Err(e) = res {
                return error_response(&e);
            }
        }
    }
    let mut r = StatusCode::NO_CONTENT.into_response();
    if let Ok(v) = header::HeaderValue::from_str(&super::sessions::clear_cookie()) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// The caller: `{actor, admin, kind}`, or 401.
async fn me(
    State(s): State<AppState>,
    ClientIp(address): ClientIp,
    headers: HeaderMap,
) -> Response {
    let cred = Credential::from_headers(&headers);
    match super::authn::authenticate(&s, cred.as_ref(), Some(address)).await {
        Ok(p) => Json(caller(&p)).into_response(),
        Err(e) => error_response(&e),
    }
}

/// For the dashboard's first request: `{"session": <as /auth/me>}`, or `{"session": null}`
/// (still 200) when the caller is not signed in, so a signed-out visit is not an error.
async fn session(
    State(s): State<AppState>,
    ClientIp(address): ClientIp,
    headers: HeaderMap,
) -> Response {
    let cred = Credential::from_headers(&headers);
    match super::authn::authenticate(&s, cred.as_ref(), Some(address)).await {
        Ok(p) => Json(json!({ "session": caller(&p) })).into_response(),
        Err(ApiError::Unauthenticated(_)) => Json(json!({ "session": null })).into_response(),
        Err(e) => error_response(&e),
    }
}

fn caller(p: &super::Principal) -> serde_json::Value {
    json!({
        "actor": p.actor(),
        "admin": p.admin,
        "kind": match p.actor { Actor::User { .. } => "user", Actor::Token { .. } => "token" },
    })
}
