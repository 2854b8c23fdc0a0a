//! Authentication at the edge: the credentials of a request (a Bearer token, or the session
//! cookie) become its [`Principal`], once, before anything else sees the request.
use super::{sessions, tokens, Principal};
use crate::{
    error::{ApiError, ApiResult},
    state::AppState,
};
use axum::http::{header, HeaderMap};
use std::net::IpAddr;

/// Longest credential looked at.
const MAX_CREDENTIAL: usize = 4096;

/// What a request presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// `Authorization: Bearer …`: an API token or a session token.
    Bearer(String),
    /// The session cookie (browsers).
    Cookie(String),
}

impl Credential {
    /// The request's credential: the Authorization header wins over the cookie.
    pub fn from_headers(headers: &HeaderMap) -> Option<Credential> {
        if let Some(b) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer)
        {
            return Some(Credential::Bearer(b));
        }
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(sessions::from_cookie_header)
            .map(Credential::Cookie)
    }
}

/// The token of an `Authorization: Bearer …` value.
pub fn bearer(value: &str) -> Option<String> {
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
}

/// The principal of `cred`, or why there is none.
pub async fn authenticate(
    state: &AppState,
    cred: Option<&Credential>,
    address: Option<IpAddr>,
) -> ApiResult<Principal> {
    let token = match cred {
        None => {
            return Err(ApiError::Unauthenticated(
                "sign in, or send Authorization: Bearer <token>".into(),
            ))
        }
        Some(Credential::Bearer(t) | Credential::Cookie(t)) => t,
    };
    if token.len() > MAX_CREDENTIAL {
        return Err(ApiError::Unauthenticated("credential too long".into()));
    }
    if token.starts_with("fl_") {
        tokens::authenticate(&state.pool, token, address).await
    } else {
        state.sessions.verify(&state.pool, token, address).await
    }
}
