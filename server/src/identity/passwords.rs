//! Password hashing for local users: argon2id with the crate's recommended parameters, stored
//! as a PHC string (algorithm, parameters and salt travel with the hash).
use argon2::{
    password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Argon2,
};

/// Shortest password accepted for a local user.
pub const MIN_LEN: usize = 12;
/// Longest password accepted (hashing cost grows with it; this bounds a request's work).
pub const MAX_LEN: usize = 256;

pub fn hash(password: &str) -> anyhow::Result<String> {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    let salt = SaltString::encode_b64(&bytes).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))
}

/// True when `password` matches the stored PHC `hash`. A malformed hash never matches.
pub fn verify(password: &str, hash: &str) -> bool {
    if password.len() > MAX_LEN {
        return false;
    }
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Why a new password is refused, if it is.
pub fn check_new(password: &str) -> Result<(), String> {
    let n = password.chars().count();
    if n < MIN_LEN {
        return Err(format!("must be at least {MIN_LEN} characters (got {n})"));
    }
    if password.len() > MAX_LEN {
        return Err(format!("must be at most {MAX_LEN} bytes"));
    }
    Ok(())
}

/// A random password for a generated account (24 characters of URL-safe base64).
pub fn generate() -> String {
    use rand::RngCore;
    let mut b = [0u8; 18];
    rand::rng().fill_bytes(&mut b);
    base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_salted_and_verify() {
        let h1 = hash("correct horse battery").unwrap();
        let h2 = hash("correct horse battery").unwrap();
        assert!(h1.starts_with("$argon2id$"), "{h1}");
        assert_ne!(h1, h2, "each hash has its own salt");
        assert!(verify("correct horse battery", &h1));
        assert!(!verify("correct horse batterY", &h1));
        assert!(!verify("correct horse battery", "not a phc string"));
    }

    #[test]
    fn new_passwords_have_a_minimum_length() {
        assert!(check_new("short").unwrap_err().contains("at least 12"));
        assert!(check_new("long enough password").is_ok());
        assert_eq!(generate().len(), 24);
    }
}
