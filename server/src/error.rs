//! One error type for the API boundary and the single table that maps it to GraphQL codes and
//! gRPC statuses. Internal errors are logged in full and shown to users as a generic message.
use faultline_experiment::{import::ImportErrors, SpecErrors};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{field}: {message}")]
    BadInput { field: String, message: String },
    #[error("invalid template: {0}")]
    InvalidTemplate(SpecErrors),
    /// A source in another tool's format that cannot be converted; each problem names its path
    /// in that source.
    #[error("cannot import: {}", .0.0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    InvalidImport(ImportErrors),
    #[error("{0} not found")]
    NotFound(String),
    #[error("authentication required: {0}")]
    Unauthenticated(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    /// The project is halted (emergency stop); nothing starts until an owner lifts it.
    #[error("{0}")]
    Halted(String),
    /// Too many attempts (failed logins from one address, requests from one client).
    #[error("{0}")]
    RateLimited(String),
    /// A single sign-on login was refused (bad state, token checks, provider errors).
    #[error("single sign-on failed: {0}")]
    Sso(String),
    /// The database cannot be reached (down, restarting, or every connection busy): nothing
    /// was done, and the same request can be sent again shortly.
    #[error("the hub's database is unavailable ({0}); retry shortly")]
    Unavailable(&'static str),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl From<crate::oidc::OidcError> for ApiError {
    fn from(e: crate::oidc::OidcError) -> Self {
        use crate::oidc::OidcError;
        match e {
            OidcError::Store(e) => ApiError::Internal(anyhow::Error::new(e)),
            OidcError::UnknownProvider(name) => {
                ApiError::NotFound(format!("identity provider {name:?}"))
            }
            other => ApiError::Sso(other.to_string()),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        match unavailable(&e) {
            Some(why) => {
                // Each caller logs the failure in its own words; this keeps the cause.
                tracing::debug!(error = %e, "database unavailable");
                ApiError::Unavailable(why)
            }
            None => ApiError::Internal(anyhow::Error::new(e)),
        }
    }
}

/// Why `e` means the database cannot be reached now (rather than that a statement failed), in
/// words that name no host or address.
pub fn unavailable(e: &sqlx::Error) -> Option<&'static str> {
    match e {
        sqlx::Error::PoolTimedOut => Some("no connection within the acquire timeout"),
        sqlx::Error::PoolClosed => Some("the connection pool is closed"),
        sqlx::Error::Io(_) => Some("the connection failed"),
        sqlx::Error::Tls(_) => Some("the connection's TLS failed"),
        sqlx::Error::Database(d) => match d.code().as_deref() {
            // Class 08: connection exception; 57P01-57P03: the server is shutting down,
            // crashed, or still starting; 53300: too many connections.
            Some(c) if c.starts_with("08") => Some("the connection failed"),
            Some("57P01" | "57P02" | "57P03") => Some("the database is restarting"),
            Some("53300") => Some("the database has no free connection"),
            _ => None,
        },
        _ => None,
    }
}

impl ApiError {
    pub fn bad(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::BadInput {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The stable machine-readable code (GraphQL `extensions.code`).
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadInput { .. } => "BAD_USER_INPUT",
            ApiError::InvalidTemplate(_) => "INVALID_TEMPLATE",
            ApiError::InvalidImport(_) => "INVALID_IMPORT",
            ApiError::NotFound(_) => "NOT_FOUND",
            ApiError::Unauthenticated(_) => "UNAUTHENTICATED",
            ApiError::Forbidden(_) => "FORBIDDEN",
            ApiError::Conflict(_) => "CONFLICT",
            ApiError::Halted(_) => "PROJECT_HALTED",
            ApiError::RateLimited(_) => "RATE_LIMITED",
            ApiError::Sso(_) => "SSO_FAILED",
            ApiError::Unavailable(_) => "UNAVAILABLE",
            ApiError::Internal(_) => "INTERNAL",
        }
    }

    /// The HTTP status of the plain-HTTP endpoints (`/auth`, a refused GraphQL request).
    pub fn http_status(&self) -> axum::http::StatusCode {
        use axum::http::StatusCode;
        match self {
            ApiError::Unauthenticated(_) | ApiError::Sso(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    pub fn grpc_code(&self) -> tonic::Code {
        match self {
            ApiError::BadInput { .. }
            | ApiError::InvalidTemplate(_)
            | ApiError::InvalidImport(_) => tonic::Code::InvalidArgument,
            ApiError::NotFound(_) => tonic::Code::NotFound,
            ApiError::Unauthenticated(_) | ApiError::Sso(_) => tonic::Code::Unauthenticated,
            ApiError::Forbidden(_) => tonic::Code::PermissionDenied,
            ApiError::Conflict(_) => tonic::Code::AlreadyExists,
            ApiError::Halted(_) => tonic::Code::FailedPrecondition,
            ApiError::RateLimited(_) => tonic::Code::ResourceExhausted,
            ApiError::Unavailable(_) => tonic::Code::Unavailable,
            ApiError::Internal(_) => tonic::Code::Internal,
        }
    }

    fn log_internal(&self) {
        if let ApiError::Internal(e) = self {
            tracing::error!(error = ?e, "internal error");
        }
    }
}

impl ApiError {
    /// Fills GraphQL `extensions` (code, field, line, column, errors) of an error whose source is
    /// an `ApiError`. Called once for every response, by [`crate::graphql::ErrorCodes`].
    pub fn annotate(err: &mut async_graphql::ServerError) {
        let src = err.source.clone();
        let Some(e) = src.as_deref().and_then(|s| s.downcast_ref::<ApiError>()) else {
            return;
        };
        e.log_internal();
        let mut ext = err.extensions.take().unwrap_or_default();
        ext.set("code", e.code());
        match e {
            ApiError::BadInput { field, .. } => ext.set("field", field.as_str()),
            ApiError::InvalidTemplate(errs) => {
                if let Some(first) = errs.0.first() {
                    ext.set("field", first.field.as_str());
                    if let Some(h) = &first.hint {
                        ext.set("hint", h.as_str());
                    }
                    if let (Some(l), Some(c)) = (first.line, first.column) {
                        ext.set("line", l as u64);
                        ext.set("column", c as u64);
                    }
                }
                set_list(&mut ext, &errs.0);
            }
            ApiError::InvalidImport(errs) => {
                if let Some(first) = errs.0.first() {
                    ext.set("field", first.path.as_str());
                }
                set_list(&mut ext, &errs.0);
            }
            _ => {}
        }
        err.extensions = Some(ext);
    }
}

/// `extensions.errors`: every problem, not just the first.
fn set_list<T: serde::Serialize>(ext: &mut async_graphql::ErrorExtensionValues, list: &[T]) {
    let list = serde_json::to_value(list).unwrap_or_default();
    ext.set(
        "errors",
        async_graphql::Value::from_json(list).unwrap_or_default(),
    );
}

impl ApiError {
    /// The answer of a plain-HTTP endpoint (`/auth`, the run report): `{"error": message,
    /// "code": CODE}` with [`ApiError::http_status`], and `Retry-After` when rate limited.
    pub fn http_response(&self) -> axum::response::Response {
        use axum::{http::header, response::IntoResponse};
        let body = serde_json::json!({"error": self.to_string(), "code": self.code()});
        let mut r = (self.http_status(), axum::Json(body)).into_response();
        let retry = match self {
            ApiError::RateLimited(_) => Some("60"),
            ApiError::Unavailable(_) => Some("5"),
            _ => None,
        };
        if let Some(secs) = retry {
            r.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static(secs));
        }
        r
    }
}

impl axum::response::IntoResponse for ApiError {
    fn into_response(self) -> axum::response::Response {
        self.log_internal();
        self.http_response()
    }
}

impl From<ApiError> for tonic::Status {
    fn from(e: ApiError) -> Self {
        e.log_internal();
        tonic::Status::new(e.grpc_code(), e.to_string())
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
