//! Secrets the hub must be able to use again (webhook signing secrets), sealed at rest with
//! AES-256-GCM under the operator's `--secret-key` (ring, already in the build through rustls).
//!
//! A sealed value is `enc:v1:<kid>:<nonce>:<ciphertext+tag>` (base64url), bound by the
//! associated data to the row it belongs to, so a value copied to another row does not open.
//! The first key seals, every key opens (rotate by putting a new key first; `reseal` at start
//! moves old values to it). Without a key, values are stored as given and the hub says so at
//! start; such values are sealed as soon as a key is configured.
use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64, Engine};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use sha2::{Digest, Sha256};
use std::sync::Arc;

const PREFIX: &str = "enc:v1:";

/// The configured keys (none: values are kept as given).
#[derive(Clone, Default)]
pub struct SecretBox {
    keys: Arc<Vec<(String, LessSafeKey)>>,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<&str> = self.keys.iter().map(|k| k.0.as_str()).collect();
        f.debug_struct("SecretBox").field("kids", &kids).finish()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OpenError {
    #[error("sealed with key {0}, which the hub does not have (--secret-key)")]
    UnknownKey(String),
    #[error("the sealed value is damaged or belongs to another row")]
    Damaged,
}

impl SecretBox {
    /// Keys as base64 (standard or URL-safe) of exactly 32 bytes; the first one seals.
    pub fn new(keys: &[String]) -> Result<SecretBox, String> {
        let mut out = Vec::new();
        for (i, k) in keys.iter().map(|k| k.trim()).enumerate() {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(k)
                .or_else(|_| B64.decode(k.trim_end_matches('=')))
                .map_err(|_| format!("secret key {}: not base64", i + 1))?;
            if bytes.len() != 32 {
                return Err(format!(
                    "secret key {}: decodes to {} bytes; use 32 random bytes (`openssl rand -base64 32`)",
                    i + 1,
                    bytes.len()
                ));
            }
            let kid = hex::encode(&Sha256::digest(&bytes)[..4]);
            let key = LessSafeKey::new(
                UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| "secret key rejected")?,
            );
            out.push((kid, key));
        }
        Ok(SecretBox {
            keys: Arc::new(out),
        })
    }

    pub fn enabled(&self) -> bool {
        !self.keys.is_empty()
    }

    /// Seals `plain` for the row `aad`; without a key, returns it as given.
    pub fn seal(&self, plain: &str, aad: &[u8]) -> String {
        let Some((kid, key)) = self.keys.first() else {
            return plain.to_string();
        };
        let mut nonce = [0u8; NONCE_LEN];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut nonce);
        let mut buf = plain.as_bytes().to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut buf,
        )
        .expect("AES-GCM seals any message the hub stores");
        format!("{PREFIX}{kid}:{}:{}", B64.encode(nonce), B64.encode(buf))
    }

    /// Opens a sealed value (a value that is not sealed is returned as it is).
    pub fn open(&self, stored: &str, aad: &[u8]) -> Result<String, OpenError> {
        let Some(rest) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_string());
        };
        let mut parts = rest.splitn(3, ':');
        let (Some(kid), Some(nonce), Some(ct)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(OpenError::Damaged);
        };
        let key = self
            .keys
            .iter()
            .find(|k| k.0 == kid)
            .ok_or_else(|| OpenError::UnknownKey(kid.to_string()))?;
        let nonce: [u8; NONCE_LEN] = B64
            .decode(nonce)
            .ok()
            .and_then(|n| n.try_into().ok())
            .ok_or(OpenError::Damaged)?;
        let mut buf = B64.decode(ct).map_err(|_| OpenError::Damaged)?;
        let plain = key
            .1
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut buf,
            )
            .map_err(|_| OpenError::Damaged)?;
        String::from_utf8(plain.to_vec()).map_err(|_| OpenError::Damaged)
    }

    /// Whether `stored` should be sealed again: kept as given, or sealed by another key than the
    /// first.
    pub fn stale(&self, stored: &str) -> bool {
        match (self.keys.first(), stored.strip_prefix(PREFIX)) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some((kid, _)), Some(rest)) => !rest.starts_with(&format!("{kid}:")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> String {
        base64::engine::general_purpose::STANDARD.encode([b; 32])
    }

    #[test]
    fn seals_and_opens_bound_to_the_row() {
        let b = SecretBox::new(&[key(1)]).unwrap();
        let s = b.seal("whsec_abc", b"row-1");
        assert!(s.starts_with("enc:v1:") && !s.contains("whsec"), "{s}");
        assert_ne!(s, b.seal("whsec_abc", b"row-1"), "fresh nonce each time");
        assert_eq!(b.open(&s, b"row-1").unwrap(), "whsec_abc");
        assert_eq!(b.open(&s, b"row-2"), Err(OpenError::Damaged));
        assert_eq!(b.open("plain", b"row-1").unwrap(), "plain");
        assert!(!b.stale(&s) && b.stale("plain"));
    }

    #[test]
    fn rotation_opens_old_values_and_marks_them_stale() {
        let old = SecretBox::new(&[key(1)]).unwrap();
        let s = old.seal("x", b"r");
        let new = SecretBox::new(&[key(2), key(1)]).unwrap();
        assert_eq!(new.open(&s, b"r").unwrap(), "x");
        assert!(new.stale(&s));
        let only_new = SecretBox::new(&[key(2)]).unwrap();
        assert!(matches!(
            only_new.open(&s, b"r"),
            Err(OpenError::UnknownKey(_))
        ));
    }

    #[test]
    fn without_a_key_values_stay_as_given() {
        let b = SecretBox::default();
        assert_eq!(b.seal("x", b"r"), "x");
        assert!(!b.stale("x"));
        assert!(SecretBox::new(&["c2hvcnQ=".into()])
            .unwrap_err()
            .contains("32"));
    }
}
