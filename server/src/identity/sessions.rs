//! Sessions: a signed JWT (HS256) that names a row of `sessions`, carried in an HttpOnly cookie
//! by browsers or as a Bearer token by other clients. The row is what makes logout real: a
//! revoked or expired session is refused by every replica, whatever its JWT says.
//!
//! Signing keys come from configuration (`--session-key KID:BASE64`, the first one signs and
//! all of them verify, so a key is rotated by putting the new one first and dropping the old one
//! once its sessions have expired) or, when none is configured, from `signing_keys` in Postgres,
//! made once and shared by every replica.
use super::{users::UserRow, Actor, Principal};
use crate::error::{ApiError, ApiResult};
use base64::Engine;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use std::{collections::HashMap, net::IpAddr, time::Duration};
use uuid::Uuid;

/// The browser session cookie.
pub const COOKIE: &str = "faultline_session";
const ISSUER: &str = "faultline";
/// Shortest key accepted (HS256 wants at least the hash's size).
const MIN_KEY_BYTES: usize = 32;

/// The keys and lifetimes of sessions, shared by the replica's handlers.
pub struct Sessions {
    /// Key id and secret that sign new sessions.
    signing: (String, Vec<u8>),
    /// Every key that may verify, by key id.
    verifying: HashMap<String, Vec<u8>>,
    pub ttl: Duration,
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    iss: String,
    /// The user id.
    sub: String,
    /// The session id.
    sid: String,
    iat: i64,
    exp: i64,
}

/// A session just started.
pub struct Issued {
    pub token: String,
    pub session: Uuid,
    pub expires_at: DateTime<Utc>,
}

/// Parses `KID:BASE64` (standard or URL-safe base64, at least 32 bytes).
pub fn parse_key(s: &str) -> Result<(String, Vec<u8>), String> {
    let (kid, b64) = s
        .split_once(':')
        .ok_or_else(|| "write a session key as KID:BASE64".to_string())?;
    if kid.is_empty()
        || !kid
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(format!(
            "key id {kid:?}: use letters, digits, '-', '_' or '.'"
        ));
    }
    let b64 = b64.trim();
    let secret = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(b64))
        .map_err(|e| format!("key {kid}: not base64 ({e})"))?;
    if secret.len() < MIN_KEY_BYTES {
        return Err(format!(
            "key {kid}: {} bytes; use at least {MIN_KEY_BYTES} random bytes",
            secret.len()
        ));
    }
    Ok((kid.to_string(), secret))
}

impl Sessions {
    /// The configured keys (first signs), or the shared ones in Postgres.
    pub async fn load(
        pool: &PgPool,
        configured: &[(String, Vec<u8>)],
        ttl: Duration,
    ) -> anyhow::Result<Sessions> {
        let keys: Vec<(String, Vec<u8>)> = if configured.is_empty() {
            stored_keys(pool).await?
        } else {
            configured.to_vec()
        };
        let signing = keys
            .first()
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("no session signing key"))?;
        Ok(Sessions {
            signing,
            verifying: keys.into_iter().collect(),
            ttl,
        })
    }

    /// Starts a session for `user` and signs its token.
    pub async fn start(
        &self,
        pool: &PgPool,
        user: &UserRow,
        method: &str,
        address: Option<IpAddr>,
    ) -> ApiResult<Issued> {
        if user.disabled_at.is_some() {
            return Err(ApiError::Unauthenticated("this account is disabled".into()));
        }
        let id = Uuid::new_v4();
        let now = Utc::now();
        let expires_at = now + chrono::Duration::from_std(self.ttl).unwrap_or_default();
        sqlx::query(
            "INSERT INTO sessions (id, user_id, method, address, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(user.id)
        .bind(method)
        .bind(address.map(|a| a.to_string()))
        .bind(expires_at)
        .execute(pool)
        .await?;
        let claims = Claims {
            iss: ISSUER.into(),
            sub: user.id.to_string(),
            sid: id.to_string(),
            iat: now.timestamp(),
            exp: expires_at.timestamp(),
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.signing.0.clone());
        let token =
            jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(&self.signing.1))
                .map_err(|e| ApiError::Internal(anyhow::anyhow!("signing a session: {e}")))?;
        Ok(Issued {
            token,
            session: id,
            expires_at,
        })
    }

    /// The principal of a session token, if its signature, expiry and session row hold.
    pub async fn verify(
        &self,
        pool: &PgPool,
        token: &str,
        address: Option<IpAddr>,
    ) -> ApiResult<Principal> {
        let bad = |why: &str| ApiError::Unauthenticated(format!("session {why}; sign in again"));
        let header = jsonwebtoken::decode_header(token).map_err(|_| bad("token is malformed"))?;
        let key = header
            .kid
            .as_deref()
            .and_then(|k| self.verifying.get(k))
            .ok_or_else(|| bad("was signed with a key this hub no longer accepts"))?;
        let mut v = Validation::new(Algorithm::HS256);
        v.set_issuer(&[ISSUER]);
        v.set_required_spec_claims(&["exp", "iss", "sub"]);
        v.leeway = 0;
        let data = jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(key), &v)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => bad("expired"),
                _ => bad("token is invalid"),
            })?;
        let (user, sid) = match (
            data.claims.sub.parse::<Uuid>(),
            data.claims.sid.parse::<Uuid>(),
        ) {
            (Ok(u), Ok(s)) => (u, s),
            _ => return Err(bad("token is invalid")),
        };
        let row: Option<(String, bool, bool)> = sqlx::query_as(
            "SELECT u.email, u.is_admin, s.last_seen_at < now() - interval '1 minute' \
             FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.id = $1 AND s.user_id = $2 AND s.revoked_at IS NULL AND s.expires_at > now() \
               AND u.disabled_at IS NULL",
        )
        .bind(sid)
        .bind(user)
        .fetch_optional(pool)
        .await?;
        let (email, admin, stale) = row.ok_or_else(|| bad("has ended"))?;
        if stale {
            sqlx::query("UPDATE sessions SET last_seen_at = now() WHERE id = $1")
                .bind(sid)
                .execute(pool)
                .await?;
        }
        Ok(Principal {
            actor: Actor::User {
                id: user,
                email,
                session: sid,
            },
            admin,
            address,
        })
    }
}

/// Whether a session still holds (not revoked, not expired, its user not disabled) and, if so,
/// whether its user is an administrator now. One lookup by primary key: long-lived requests
/// (subscriptions) call it every few seconds, since their token was verified only once.
pub async fn still_valid(pool: &PgPool, session: Uuid, user: Uuid) -> ApiResult<bool> {
    let row: Option<(bool,)> = sqlx::query_as(
        "SELECT u.is_admin FROM sessions s JOIN users u ON u.id = s.user_id \
         WHERE s.id = $1 AND s.user_id = $2 AND s.revoked_at IS NULL AND s.expires_at > now() \
           AND u.disabled_at IS NULL",
    )
    .bind(session)
    .bind(user)
    .fetch_optional(pool)
    .await?;
    row.map(|(admin,)| admin).ok_or_else(|| {
        ApiError::Unauthenticated("session has ended (signed out or expired); sign in again".into())
    })
}

/// Ends a session for every replica. Ending one that has already ended changes nothing.
pub async fn revoke(pool: &PgPool, session: Uuid) -> ApiResult<()> {
    sqlx::query("UPDATE sessions SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL")
        .bind(session)
        .execute(pool)
        .await?;
    Ok(())
}

/// Ends every session of a user (a password change, a disabled account).
pub async fn revoke_all(pool: &PgPool, user: Uuid) -> ApiResult<u64> {
    Ok(sqlx::query(
        "UPDATE sessions SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL",
    )
    .bind(user)
    .execute(pool)
    .await?
    .rows_affected())
}

/// `Set-Cookie` for a new session: HttpOnly, Secure, SameSite=Lax (sent on the top-level
/// navigation back from an SSO provider, never on cross-site requests from scripts).
pub fn set_cookie(issued: &Issued, ttl: Duration) -> String {
    cookie::Cookie::build((COOKIE, issued.token.clone()))
        .http_only(true)
        .secure(true)
        .same_site(cookie::SameSite::Lax)
        .path("/")
        .max_age(cookie::time::Duration::seconds(ttl.as_secs() as i64))
        .build()
        .to_string()
}

/// `Set-Cookie` that removes the session cookie.
pub fn clear_cookie() -> String {
    cookie::Cookie::build((COOKIE, ""))
        .http_only(true)
        .secure(true)
        .same_site(cookie::SameSite::Lax)
        .path("/")
        .max_age(cookie::time::Duration::ZERO)
        .build()
        .to_string()
}

/// The session token in a `Cookie` header, if any.
pub fn from_cookie_header(header: &str) -> Option<String> {
    cookie::Cookie::split_parse(header)
        .filter_map(Result::ok)
        .find(|c| c.name() == COOKIE)
        .map(|c| c.value().to_string())
        .filter(|v| !v.is_empty())
}

/// The shared keys in Postgres, making the first one when there is none.
async fn stored_keys(pool: &PgPool) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(7710002)")
        .execute(&mut *tx)
        .await?;
    let mut keys: Vec<(String, Vec<u8>)> =
        sqlx::query_as("SELECT kid, secret FROM signing_keys ORDER BY created_at DESC")
            .fetch_all(&mut *tx)
            .await?;
    if keys.is_empty() {
        use rand::RngCore;
        let mut secret = vec![0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        let kid = format!("db-{}", &Uuid::new_v4().simple().to_string()[..8]);
        sqlx::query("INSERT INTO signing_keys (kid, secret) VALUES ($1, $2)")
            .bind(&kid)
            .bind(&secret)
            .execute(&mut *tx)
            .await?;
        keys.push((kid, secret));
    }
    tx.commit().await?;
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_or_say_what_is_wrong() {
        let secret = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        let (kid, bytes) = parse_key(&format!("k1:{secret}")).unwrap();
        assert_eq!((kid.as_str(), bytes.len()), ("k1", 32));
        assert!(parse_key("nokid").unwrap_err().contains("KID:BASE64"));
        assert!(parse_key("k1:!!!").unwrap_err().contains("not base64"));
        let short = base64::engine::general_purpose::STANDARD.encode([7u8; 8]);
        assert!(parse_key(&format!("k1:{short}"))
            .unwrap_err()
            .contains("at least 32"));
    }

    #[test]
    fn cookies_are_httponly_secure_lax_and_parse_back() {
        let issued = Issued {
            token: "abc.def.ghi".into(),
            session: Uuid::nil(),
            expires_at: Utc::now(),
        };
        let c = set_cookie(&issued, Duration::from_secs(3600));
        for part in [
            "faultline_session=abc.def.ghi",
            "HttpOnly",
            "Secure",
            "SameSite=Lax",
            "Path=/",
            "Max-Age=3600",
        ] {
            assert!(c.contains(part), "{c} lacks {part}");
        }
        assert_eq!(
            from_cookie_header("a=1; faultline_session=abc.def.ghi; b=2").as_deref(),
            Some("abc.def.ghi")
        );
        assert_eq!(from_cookie_header("a=1"), None);
        assert!(clear_cookie().contains("Max-Age=0"));
    }
}
