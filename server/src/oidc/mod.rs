//! OpenID Connect login building blocks, free of any HTTP framework: [`Oidc::begin`] makes the
//! authorization URL (code flow, PKCE S256, random `state` and `nonce`) and stores the pending
//! login in Postgres; [`Oidc::finish`] takes it back once (by `state`), exchanges the code and
//! verifies the ID token. [`map_roles`] turns the identity's claims into project roles.
//!
//! Owns: providers' discovery and keys (`provider.rs`), the bounded HTTP client (`http.rs`),
//! pending logins (`store.rs`), claim → role mapping (`roles.rs`). Does not own: users,
//! sessions, cookies or routes; the caller creates the user and session from [`SsoIdentity`].
//! Configuration (`[[oidc]]`) is read by `config_file.rs`.
mod http;
mod provider;
mod roles;
mod store;

pub use http::{BoundedHttp, HttpError, MAX_BODY, TIMEOUT};
pub use provider::{GroupClaims, GroupIdToken};
pub use roles::{map_roles, MappedRoles, RoleGrant};

use crate::config_file::ProviderConfig;
use chrono::{DateTime, Utc};
use openidconnect::{
    core::{CoreAuthenticationFlow, CoreClient},
    AuthorizationCode, CsrfToken, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    RequestTokenError, Scope, TokenResponse,
};
use provider::Provider;
use sqlx::PgPool;
use std::{fmt, sync::Arc, time::Duration};
use url::Url;

/// A login must come back from the provider within this long.
pub const PENDING_TTL: Duration = Duration::from_secs(600);

/// Who logged in, as the provider vouches in a verified ID token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoIdentity {
    /// The configured provider name.
    pub provider: String,
    /// `sub`: stable per provider (with Entra ID, per application); the key to link users by.
    pub subject: String,
    pub email: Option<String>,
    pub name: Option<String>,
    /// `groups` claim (Entra ID: group object ids; needs the groups claim configured).
    pub groups: Vec<String>,
    /// `roles` claim (Entra ID: app roles assigned to the user).
    pub roles: Vec<String>,
}

/// A login between [`Oidc::begin`] and [`Oidc::finish`], stored in `oidc_logins`.
#[derive(Clone)]
pub struct Pending {
    pub provider: String,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub redirect_uri: String,
    pub created_at: DateTime<Utc>,
}

impl fmt::Debug for Pending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pending")
            .field("provider", &self.provider)
            .field("state", &self.state)
            .field("redirect_uri", &self.redirect_uri)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// Why a login was refused; each says what to look at.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("unknown identity provider {0:?}")]
    UnknownProvider(String),
    #[error("invalid redirect URI {uri:?}: {reason}")]
    BadRedirectUri { uri: String, reason: String },
    #[error("unknown or already used login state (start the login again)")]
    BadState,
    #[error("this login was started with provider {started:?}, not {callback:?}")]
    WrongProvider { started: String, callback: String },
    #[error("the login took too long ({age_secs} s, the limit is {limit_secs} s); start it again")]
    Expired { age_secs: u64, limit_secs: u64 },
    #[error("identity provider {provider} is unavailable: {reason}")]
    Discovery { provider: String, reason: String },
    #[error("the identity provider refused the code exchange: {0}")]
    TokenExchange(String),
    #[error("the identity provider's token response has no ID token")]
    MissingIdToken,
    #[error("ID token signature is invalid: {0}")]
    BadSignature(String),
    #[error("ID token is signed with a key the provider does not publish, even after fetching its keys again")]
    UnknownKey,
    #[error("ID token audience does not include client id {client_id} ({detail})")]
    WrongAudience { client_id: String, detail: String },
    #[error("ID token issuer is wrong: {0}")]
    WrongIssuer(String),
    #[error("ID token has expired: {0}")]
    IdTokenExpired(String),
    #[error("ID token nonce does not match the one this login sent")]
    NonceMismatch,
    #[error("invalid ID token: {reason}")]
    InvalidIdToken { reason: String },
    #[error("failed to store or load the pending login")]
    Store(#[from] sqlx::Error),
}

/// The configured providers, their caches and the pool pending logins live in. One per replica.
#[derive(Clone)]
pub struct Oidc {
    providers: Arc<Vec<Provider>>,
    http: BoundedHttp,
    pool: PgPool,
}

impl Oidc {
    /// Reads every provider's client secret now, so a missing one stops the hub at start.
    /// Discovery waits for the first login: a provider that is down does not stop the hub.
    pub fn new(configs: Vec<ProviderConfig>, pool: PgPool) -> anyhow::Result<Oidc> {
        let providers = configs
            .into_iter()
            .map(Provider::new)
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Oidc {
            providers: Arc::new(providers),
            http: BoundedHttp::new()?,
            pool,
        })
    }

    /// The configured providers, in file order (for a login page).
    pub fn providers(&self) -> impl Iterator<Item = &ProviderConfig> {
        self.providers.iter().map(|p| &p.config)
    }

    fn provider(&self, name: &str) -> Result<&Provider, OidcError> {
        self.providers
            .iter()
            .find(|p| p.config.name == name)
            .ok_or_else(|| OidcError::UnknownProvider(name.to_string()))
    }

    /// How many times this replica fetched the provider's key set (discovery included).
    pub fn jwks_fetches(&self, provider: &str) -> Result<u64, OidcError> {
        Ok(self.provider(provider)?.jwks_fetches())
    }

    fn client(
        p: &Provider,
        metadata: &openidconnect::core::CoreProviderMetadata,
        redirect_uri: &str,
    ) -> Result<
        openidconnect::core::CoreClient<
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointMaybeSet,
            openidconnect::EndpointMaybeSet,
        >,
        OidcError,
    > {
        let redirect =
            RedirectUrl::new(redirect_uri.to_string()).map_err(|e| OidcError::BadRedirectUri {
                uri: redirect_uri.to_string(),
                reason: e.to_string(),
            })?;
        Ok(CoreClient::from_provider_metadata(
            metadata.clone(),
            p.client_id.clone(),
            Some(p.secret.clone()),
        )
        .set_redirect_uri(redirect))
    }

    /// Starts a login: the URL to send the browser to, and the pending login (already stored).
    /// `redirect_uri` is the hub's callback, e.g. `https://hub/auth/oidc/<name>/callback`; it must
    /// be registered with the provider.
    #[tracing::instrument(skip_all, fields(provider = provider_name))]
    pub async fn begin(
        &self,
        provider_name: &str,
        redirect_uri: &str,
    ) -> Result<(Url, Pending), OidcError> {
        let p = self.provider(provider_name)?;
        let metadata = p.metadata(&self.http).await?;
        let client = Self::client(p, &metadata, redirect_uri)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (state, nonce) = (CsrfToken::new_random(), Nonce::new_random());
        let (s, n) = (state.clone(), nonce.clone());
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                move || s,
                move || n,
            )
            .set_pkce_challenge(challenge);
        // `openid` is always added by the library.
        for scope in p.config.scopes.iter().filter(|s| *s != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, _, _) = request.url();
        let mut pending = Pending {
            provider: p.config.name.clone(),
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
            redirect_uri: redirect_uri.to_string(),
            created_at: Utc::now(),
        };
        pending.created_at = store::insert(&self.pool, &pending).await?;
        Ok((url, pending))
    }

    /// Finishes a login from the provider's callback (`state` and `code` query parameters): takes
    /// the pending login (once), exchanges the code and verifies the ID token.
    #[tracing::instrument(skip_all, fields(provider = provider_name))]
    pub async fn finish(
        &self,
        provider_name: &str,
        state: &str,
        code: &str,
    ) -> Result<SsoIdentity, OidcError> {
        let result = async {
            let pending = self.take_pending(provider_name, state).await?;
            let id_token = self.exchange_code(&pending, code).await?;
            self.verify_id_token(provider_name, &id_token, &pending.nonce)
                .await
        }
        .await;
        match &result {
            Ok(who) => tracing::info!(subject = %who.subject, "oidc login verified"),
            Err(e) => tracing::warn!(error = %e, "oidc login refused"),
        }
        result
    }

    /// Removes the pending login with this state; refuses unknown, used, foreign or expired ones.
    pub async fn take_pending(
        &self,
        provider_name: &str,
        state: &str,
    ) -> Result<Pending, OidcError> {
        self.provider(provider_name)?;
        let (pending, age) = store::take(&self.pool, state)
            .await?
            .ok_or(OidcError::BadState)?;
        if pending.provider != provider_name {
            return Err(OidcError::WrongProvider {
                started: pending.provider,
                callback: provider_name.to_string(),
            });
        }
        if age > PENDING_TTL.as_secs_f64() {
            return Err(OidcError::Expired {
                age_secs: age as u64,
                limit_secs: PENDING_TTL.as_secs(),
            });
        }
        Ok(pending)
    }

    /// Exchanges the authorization code (with the PKCE verifier) and returns the raw ID token,
    /// not yet verified.
    pub async fn exchange_code(&self, pending: &Pending, code: &str) -> Result<String, OidcError> {
        let p = self.provider(&pending.provider)?;
        let metadata = p.metadata(&self.http).await?;
        let client = Self::client(p, &metadata, &pending.redirect_uri)?;
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|e| OidcError::Discovery {
                provider: p.config.name.clone(),
                reason: e.to_string(),
            })?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier.clone()))
            .request_async(&self.http)
            .await
            .map_err(|e| OidcError::TokenExchange(token_error(e)))?;
        let id_token = response.id_token().ok_or(OidcError::MissingIdToken)?;
        Ok(id_token.to_string())
    }

    /// Verifies a raw ID token of this provider (signature, issuer, audience = client id, expiry,
    /// nonce) and reads the identity. A token signed by a key not in the cache makes the keys be
    /// fetched once more before it is refused.
    pub async fn verify_id_token(
        &self,
        provider_name: &str,
        id_token: &str,
        nonce: &str,
    ) -> Result<SsoIdentity, OidcError> {
        let p = self.provider(provider_name)?;
        let token: GroupIdToken = id_token.parse().map_err(|e| OidcError::InvalidIdToken {
            reason: format!("not a signed JWT: {e}"),
        })?;
        let nonce = Nonce::new(nonce.to_string());
        let metadata = p.metadata(&self.http).await?;
        match p.verify(&metadata, &token, &nonce) {
            Err(OidcError::UnknownKey) => {
                let fresh = p.refresh_keys(&self.http, &metadata).await?;
                p.verify(&fresh, &token, &nonce)
            }
            other => other,
        }
    }
}

fn token_error<RE: std::error::Error + 'static>(
    e: RequestTokenError<
        RE,
        openidconnect::StandardErrorResponse<openidconnect::core::CoreErrorResponseType>,
    >,
) -> String {
    match e {
        RequestTokenError::ServerResponse(r) => match r.error_description() {
            Some(d) => format!("{}: {d}", r.error()),
            None => r.error().to_string(),
        },
        RequestTokenError::Request(e) => e.to_string(),
        RequestTokenError::Parse(e, _) => format!("unreadable token response: {e}"),
        RequestTokenError::Other(e) => e,
    }
}
