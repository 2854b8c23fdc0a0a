//! One configured identity provider: its discovery document and signing keys, cached in memory
//! and fetched again when older than `refresh_minutes` or when an ID token names a key the cache
//! lacks (the provider rotated its keys); and ID token verification against them.
use super::{http::BoundedHttp, OidcError, SsoIdentity};
use crate::config_file::ProviderConfig;
use openidconnect::{
    core::{
        CoreGenderClaim, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm,
        CoreJwsSigningAlgorithm, CoreProviderMetadata,
    },
    AdditionalClaims, ClaimsVerificationError, ClientId, ClientSecret, IdToken, IssuerUrl,
    JsonWebKeySet, Nonce, SignatureVerificationError,
};
use serde::{Deserialize, Deserializer, Serialize};
use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

/// The claims read beyond the standard ones. Both are optional lists of strings; a provider
/// that sends a single string is read as a list of one.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct GroupClaims {
    #[serde(default, deserialize_with = "one_or_many")]
    pub groups: Vec<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub roles: Vec<String>,
}

impl AdditionalClaims for GroupClaims {}

fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
        Null(()),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
        OneOrMany::Null(()) => Vec::new(),
    })
}

pub type GroupIdToken = IdToken<
    GroupClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

struct Cached {
    metadata: Arc<CoreProviderMetadata>,
    fetched_at: Instant,
}

pub struct Provider {
    pub config: ProviderConfig,
    pub issuer: IssuerUrl,
    pub client_id: ClientId,
    pub secret: ClientSecret,
    refresh: Duration,
    /// Held while fetching, so concurrent logins wait for one fetch instead of each starting one.
    cache: tokio::sync::Mutex<Option<Cached>>,
    /// Key sets fetched so far (discovery included), for logs and tests.
    jwks_fetches: AtomicU64,
}

impl Provider {
    pub fn new(config: ProviderConfig) -> anyhow::Result<Provider> {
        let secret = config.client_secret()?;
        Ok(Provider {
            issuer: IssuerUrl::new(config.issuer.clone())?,
            client_id: ClientId::new(config.client_id.clone()),
            secret: ClientSecret::new(secret.0),
            refresh: Duration::from_secs(config.refresh_minutes * 60),
            cache: tokio::sync::Mutex::new(None),
            jwks_fetches: AtomicU64::new(0),
            config,
        })
    }

    pub fn jwks_fetches(&self) -> u64 {
        self.jwks_fetches.load(Ordering::Relaxed)
    }

    fn discovery_error(&self, e: impl std::fmt::Display) -> OidcError {
        OidcError::Discovery {
            provider: self.config.name.clone(),
            reason: e.to_string(),
        }
    }

    /// The discovery document with its keys; fetched when missing or older than the refresh
    /// interval. A failed refresh keeps using the older copy (logged), so a provider's short
    /// outage does not stop logins whose keys have not changed.
    pub async fn metadata(
        &self,
        http: &BoundedHttp,
    ) -> Result<Arc<CoreProviderMetadata>, OidcError> {
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache
            .as_ref()
            .filter(|c| c.fetched_at.elapsed() < self.refresh)
        {
            return Ok(c.metadata.clone());
        }
        self.jwks_fetches.fetch_add(1, Ordering::Relaxed);
        match CoreProviderMetadata::discover_async(self.issuer.clone(), http).await {
            Ok(metadata) => {
                tracing::info!(provider = %self.config.name, keys = metadata.jwks().keys().len(), "oidc discovery fetched");
                let metadata = Arc::new(metadata);
                *cache = Some(Cached {
                    metadata: metadata.clone(),
                    fetched_at: Instant::now(),
                });
                Ok(metadata)
            }
            Err(e) => {
                let e = self.discovery_error(error_chain(&e));
                match cache.as_ref() {
                    Some(c) => {
                        tracing::warn!(provider = %self.config.name, error = %e, "oidc discovery refresh failed; keeping the previous document");
                        Ok(c.metadata.clone())
                    }
                    None => Err(e),
                }
            }
        }
    }

    /// Fetches the key set again after an ID token named a key `seen` lacks. When another login
    /// refreshed meanwhile, its result is used instead of fetching twice.
    pub async fn refresh_keys(
        &self,
        http: &BoundedHttp,
        seen: &Arc<CoreProviderMetadata>,
    ) -> Result<Arc<CoreProviderMetadata>, OidcError> {
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.as_ref().filter(|c| !Arc::ptr_eq(&c.metadata, seen)) {
            return Ok(c.metadata.clone());
        }
        self.jwks_fetches.fetch_add(1, Ordering::Relaxed);
        let jwks = JsonWebKeySet::fetch_async(seen.jwks_uri(), http)
            .await
            .map_err(|e| self.discovery_error(error_chain(&e)))?;
        tracing::info!(provider = %self.config.name, keys = jwks.keys().len(), "oidc signing keys fetched again (unknown key id)");
        let metadata = Arc::new((**seen).clone().set_jwks(jwks));
        let fetched_at = cache
            .as_ref()
            .map(|c| c.fetched_at)
            .unwrap_or_else(Instant::now);
        *cache = Some(Cached {
            metadata: metadata.clone(),
            fetched_at,
        });
        Ok(metadata)
    }

    /// Checks signature, issuer, audience, expiry and nonce against one key set.
    pub fn verify(
        &self,
        metadata: &CoreProviderMetadata,
        token: &GroupIdToken,
        nonce: &Nonce,
    ) -> Result<SsoIdentity, OidcError> {
        // Only the asymmetric algorithms the provider announces: an HMAC-signed token would be
        // checked with the client secret, which is no proof the provider issued it.
        let algs = metadata
            .id_token_signing_alg_values_supported()
            .iter()
            .filter(|a| {
                !matches!(
                    a,
                    CoreJwsSigningAlgorithm::HmacSha256
                        | CoreJwsSigningAlgorithm::HmacSha384
                        | CoreJwsSigningAlgorithm::HmacSha512
                        | CoreJwsSigningAlgorithm::None
                )
            })
            .cloned()
            .collect::<Vec<_>>();
        let verifier = openidconnect::IdTokenVerifier::<CoreJsonWebKey>::new_public_client(
            self.client_id.clone(),
            self.issuer.clone(),
            metadata.jwks().clone(),
        )
        .set_allowed_algs(algs);
        let claims = token
            .claims(&verifier, nonce)
            .map_err(|e| self.refusal(e))?;
        let extra = claims.additional_claims();
        Ok(SsoIdentity {
            provider: self.config.name.clone(),
            subject: claims.subject().to_string(),
            email: claims.email().map(|e| e.to_string()),
            name: claims
                .name()
                .and_then(|n| n.get(None))
                .map(|n| n.to_string()),
            groups: extra.groups.clone(),
            roles: extra.roles.clone(),
        })
    }

    fn refusal(&self, e: ClaimsVerificationError) -> OidcError {
        use ClaimsVerificationError as C;
        match e {
            C::SignatureVerification(SignatureVerificationError::NoMatchingKey) => {
                OidcError::UnknownKey
            }
            C::SignatureVerification(s) => OidcError::BadSignature(s.to_string()),
            C::InvalidAudience(found) => OidcError::WrongAudience {
                client_id: self.config.client_id.clone(),
                detail: found,
            },
            C::InvalidIssuer(detail) => OidcError::WrongIssuer(detail),
            C::Expired(detail) => OidcError::IdTokenExpired(detail),
            C::InvalidNonce(_) => OidcError::NonceMismatch,
            other => OidcError::InvalidIdToken {
                reason: other.to_string(),
            },
        }
    }
}

/// An error and its sources on one line (discovery errors wrap the useful part).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(cause) = src {
        let text = cause.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        src = cause.source();
    }
    s
}
