//! 投票码 on the server's side: making codes from the operating system's random
//! generator, and the keyed hash that is all the database ever holds of a code.
//!
//! A code's shape (alphabet, check character) belongs to `analysis::access_code`; this
//! module owns what makes a code a secret: the 32-byte key (kept in the `secrets` table
//! as `code_key`, made once) and `HMAC-SHA256(key, code)`. Without the key, the hashes
//! in a copied database cannot be tried against the 3.4 × 10¹⁰ possible codes.

pub mod font;
pub mod sheet;

use std::fmt::Write as _;

use analysis::access_code::{AccessCode, RANDOM_CHARS};
use analysis::error::quoted;
use analysis::form::Form;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The name of the key's row in `secrets`.
pub const KEY_NAME: &str = "code_key";

/// Bytes in the key.
pub const KEY_BYTES: usize = 32;

/// Why no randomness could be had.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random generator failed: {0}")]
pub struct RandomError(String);

/// `n` random bytes from the operating system.
fn random<const N: usize>() -> Result<[u8; N], RandomError> {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes).map_err(|e| RandomError(e.to_string()))?;
    Ok(bytes)
}

/// A new key, hex-encoded as stored in `secrets`.
pub fn new_key() -> Result<String, RandomError> {
    Ok(hex(&random::<KEY_BYTES>()?))
}

/// A new random code (seven random characters and the check character).
pub fn new_code() -> Result<AccessCode, RandomError> {
    Ok(AccessCode::from_random(random::<RANDOM_CHARS>()?))
}

/// The stored form of a code: hex HMAC-SHA256 of its eight characters under the key
/// (`key_hex` as stored in `secrets`).
pub fn keyed_hash(key_hex: &str, code: &AccessCode) -> String {
    let key = unhex(key_hex);
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes a key of any length");
    mac.update(code.as_str().as_bytes());
    hex(&mac.finalize().into_bytes())
}

/// Most codes issued at once (a meeting of 2000 is a large 人大).
pub const MAX_COUNT: usize = 2000;

/// The groups of a form that vote with access codes (`"code_required": true`).
pub fn code_groups(form: &Form) -> Vec<String> {
    form.groups
        .iter()
        .filter(|g| g.code_required)
        .map(|g| g.id.clone())
        .collect()
}

/// Checks a request to issue `count` codes for `group` of a form: the group exists and
/// votes with codes, and the count is 1 to [`MAX_COUNT`]. Answers the group's name.
pub fn check_request(form: &Form, group: &str, count: usize) -> Result<String, String> {
    let with_codes = code_groups(form);
    let listed = if with_codes.is_empty() {
        "none (mark a group with \"code_required\": true in the form)".to_string()
    } else {
        with_codes.join(", ")
    };
    let Some(found) = form.groups.iter().find(|g| g.id == group) else {
        let all: Vec<&str> = form.groups.iter().map(|g| g.id.as_str()).collect();
        return Err(format!(
            "form {} version {} has no group {}; its groups are {}, and those that vote with \
             codes: {listed}",
            quoted(&form.id),
            quoted(&form.version),
            quoted(group),
            all.join(", ")
        ));
    };
    if !found.code_required {
        return Err(format!(
            "group {} votes without codes (the form does not mark it \"code_required\": \
             true); groups that vote with codes: {listed}",
            quoted(group)
        ));
    }
    if count == 0 || count > MAX_COUNT {
        return Err(format!(
            "the count is {count}, expected 1 to {MAX_COUNT} codes"
        ));
    }
    Ok(found.label.get("zh-CN").to_string())
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// The key's bytes. A value that is not hex (never written by Pingyi) is used as its
/// own bytes, so a hand-edited key still hashes consistently rather than failing.
fn unhex(text: &str) -> Vec<u8> {
    let digits: Option<Vec<u8>> = (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|d| u8::from_str_radix(d, 16).ok())
        })
        .collect();
    match digits {
        Some(bytes) if text.len() % 2 == 0 => bytes,
        _ => text.as_bytes().to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_depends_on_the_key_and_the_code_and_never_holds_the_code() {
        let a = new_key().unwrap();
        let b = new_key().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        let code = new_code().unwrap();
        let other = new_code().unwrap();
        assert_eq!(keyed_hash(&a, &code), keyed_hash(&a, &code));
        assert_ne!(keyed_hash(&a, &code), keyed_hash(&b, &code));
        assert_ne!(keyed_hash(&a, &code), keyed_hash(&a, &other));
        assert!(!keyed_hash(&a, &code).contains(code.as_str()));
        assert_eq!(keyed_hash(&a, &code).len(), 64);
    }

    #[test]
    fn hmac_matches_the_rfc_4231_test_vector() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex(&mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(unhex("4a656665"), b"Jefe");
    }
}
