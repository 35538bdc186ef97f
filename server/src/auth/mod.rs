//! Who an official is and how the server knows: roles, password hashing (argon2id, PHC
//! strings), session tokens (32 random bytes in the cookie, only their SHA-256 stored),
//! and the throttling of failed sign-ins ([`throttle`]).

pub mod sign_in;
pub mod throttle;

use std::fmt;
use std::sync::OnceLock;

use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How long a session lasts after sign-in.
pub const SESSION_HOURS: i64 = 12;

/// The shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// What an official may do: `admin` everything, `viewer` only look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }

    /// Reads `admin` or `viewer`; the error says what was expected.
    pub fn parse(s: &str) -> Result<Role, String> {
        match s {
            "admin" => Ok(Role::Admin),
            "viewer" => Ok(Role::Viewer),
            other => Err(format!(
                "the role {} is not known, expected admin or viewer",
                analysis::error::quoted(other)
            )),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The longest official's name, in characters.
pub const MAX_NAME_CHARS: usize = 64;

/// Checks a new official's name: 1 to 64 characters, no control characters, no spaces
/// at either end (they would make two names that look the same).
pub fn check_name(name: &str) -> Result<(), String> {
    let n = name.chars().count();
    if n == 0 || n > MAX_NAME_CHARS {
        return Err(format!(
            "the name {} has {n} characters, expected 1 to {MAX_NAME_CHARS}",
            analysis::error::quoted(name)
        ));
    }
    if name.chars().any(char::is_control) || name.trim() != name {
        return Err(format!(
            "the name {} has control characters or spaces at an end, expected a plain name \
             such as wang.fang or 王芳",
            analysis::error::quoted(name)
        ));
    }
    Ok(())
}

/// Checks a new password's length (in characters, so 中文 passwords count fairly).
pub fn check_new_password(password: &str) -> Result<(), String> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_CHARS {
        return Err(format!(
            "the password has {n} characters, expected at least {MIN_PASSWORD_CHARS}"
        ));
    }
    Ok(())
}

/// Hashes a password with argon2id and a fresh random salt, as a PHC string. Slow on
/// purpose (tens of milliseconds): call it from a blocking thread.
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("cannot hash the password: {e}"))
}

/// Whether `password` matches the PHC string `stored`. With `None` (no such user) the
/// same work is done against a hash of nothing, so a wrong name takes as long to refuse
/// as a wrong password. Slow on purpose: call it from a blocking thread.
pub fn verify_password(password: &str, stored: Option<&str>) -> bool {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let dummy = DUMMY.get_or_init(|| {
        hash_password("no such official").expect("argon2 hashes with its default parameters")
    });
    let (phc, real) = match stored {
        Some(s) => (s, true),
        None => (dummy.as_str(), false),
    };
    let Ok(parsed) = PasswordHash::new(phc) else {
        tracing::error!("a stored password hash is not a PHC string; that official cannot sign in");
        return false;
    };
    let matches = Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    matches && real
}

/// A new session token: 32 bytes from the OS's random generator, base64url for the cookie.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What the database keeps of a token: its hex SHA-256, so a copy of the database does
/// not let anyone in.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_hash_only() {
        let phc = hash_password("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(verify_password("correct horse", Some(&phc)));
        assert!(!verify_password("correct hors", Some(&phc)));
        assert!(!verify_password("correct horse", None));
        assert!(!verify_password("correct horse", Some("not a phc string")));
    }

    #[test]
    fn tokens_are_32_random_bytes_and_differ() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).unwrap().len(), 32);
        assert_eq!(token_hash(&a).len(), 64);
        assert_ne!(token_hash(&a), token_hash(&b));
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("王芳").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name(" wang").unwrap_err().contains("\" wang\""));
        assert!(check_name(&"x".repeat(65)).is_err());
    }

    #[test]
    fn short_passwords_are_refused_by_characters() {
        assert!(check_new_password("1234567").is_err());
        assert!(check_new_password("评议评议评议评议").is_ok());
    }
}
