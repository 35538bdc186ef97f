//! 投票码: the one-time access codes of restricted respondent groups (人大代表, 政协委员,
//! staff). This module owns their shape, so the app (checking a typed code offline), the
//! server (redeeming it) and the CLI (issuing it) agree:
//!
//! - eight characters from a 32-letter alphabet without the look-alikes 0/O and 1/I
//!   (`23456789ABCDEFGHJKLMNPQRSTUVWXYZ`): seven random, then a check character;
//! - shown as two groups of four (`K7QM-3XWD`); typed in any case, with or without
//!   spaces and hyphens;
//! - the check character is Luhn mod 32 over the alphabet, which catches every single
//!   mistyped character and every swap of two neighbours but one (`2` and `Z`, the
//!   first and last letters, which Luhn's folding maps to the same sum).
//!
//! Seven random characters give 32⁷ ≈ 3.4 × 10¹⁰ codes: guessing one of 60 issued codes
//! takes about 5.7 × 10⁸ tries on average.

use std::fmt;

use crate::error::quoted;

/// The characters of a code, in the order the check character is computed with.
pub const ALPHABET: &[u8; 32] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";

/// Random characters in a code (the eighth is the check character).
pub const RANDOM_CHARS: usize = 7;

/// Characters in a code, check character included.
pub const LEN: usize = RANDOM_CHARS + 1;

/// A well-formed code: eight characters of [`ALPHABET`] whose check character agrees.
/// Well-formed is not valid: only the server knows which codes were issued and used.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccessCode(String);

/// Why a typed code is not well-formed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeError {
    /// Nothing was typed.
    Empty,
    /// Not eight characters (spaces and hyphens not counted).
    Length { found: usize },
    /// A character outside the alphabet, with its position (1-based, after removing
    /// spaces and hyphens).
    Char { ch: char, position: usize },
    /// Every character is allowed but the check character disagrees: a typo.
    Check,
}

impl fmt::Display for CodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodeError::Empty => write!(f, "the access code is empty, expected {LEN} characters such as K7QM-3XWD"),
            CodeError::Length { found } => write!(
                f,
                "the access code has {found} characters, expected {LEN} such as K7QM-3XWD"
            ),
            CodeError::Char { ch, position } => write!(
                f,
                "character {position} of the access code is {}, which codes never use; expected one of {}",
                quoted(&ch.to_string()),
                std::str::from_utf8(ALPHABET).unwrap_or_default()
            ),
            CodeError::Check => f.write_str(
                "the access code's check character does not match: a character was mistyped",
            ),
        }
    }
}

impl std::error::Error for CodeError {}

fn value_of(c: u8) -> Option<usize> {
    ALPHABET.iter().position(|&a| a == c)
}

/// Luhn mod 32: the check character that makes `digits` (values 0..32) valid.
fn check_value(digits: impl DoubleEndedIterator<Item = usize>) -> usize {
    let n = ALPHABET.len();
    let mut sum = 0;
    // From the right, every other digit (starting with the rightmost data digit) is doubled.
    for (i, d) in digits.rev().enumerate() {
        let v = if i % 2 == 0 { d * 2 } else { d };
        sum += v / n + v % n;
    }
    (n - sum % n) % n
}

impl AccessCode {
    /// Reads a code as a person typed it: case, spaces and hyphens do not matter.
    pub fn parse(typed: &str) -> Result<AccessCode, CodeError> {
        let chars: Vec<char> = typed
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        if chars.is_empty() {
            return Err(CodeError::Empty);
        }
        if chars.len() != LEN {
            return Err(CodeError::Length { found: chars.len() });
        }
        let mut values = Vec::with_capacity(LEN);
        for (i, &ch) in chars.iter().enumerate() {
            let v = u8::try_from(ch).ok().and_then(value_of);
            match v {
                Some(v) => values.push(v),
                None => {
                    return Err(CodeError::Char {
                        ch,
                        position: i + 1,
                    })
                }
            }
        }
        if check_value(values[..RANDOM_CHARS].iter().copied()) != values[RANDOM_CHARS] {
            return Err(CodeError::Check);
        }
        Ok(AccessCode(chars.into_iter().collect()))
    }

    /// A code from random bytes (one per character; only the low five bits are used,
    /// so uniform bytes give uniform characters). The caller supplies the randomness
    /// (the server uses the operating system's generator).
    pub fn from_random(bytes: [u8; RANDOM_CHARS]) -> AccessCode {
        let values: Vec<usize> = bytes.iter().map(|b| usize::from(b & 31)).collect();
        let check = check_value(values.iter().copied());
        let s = values
            .iter()
            .chain(std::iter::once(&check))
            .map(|&v| char::from(ALPHABET[v]))
            .collect();
        AccessCode(s)
    }

    /// The eight characters without the hyphen, as hashed and stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccessCode {
    /// `K7QM-3XWD`, as printed on a slip.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", &self.0[..4], &self.0[4..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(seed: u8) -> AccessCode {
        let mut bytes = [0u8; RANDOM_CHARS];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = seed.wrapping_mul(37).wrapping_add(i as u8 * 11);
        }
        AccessCode::from_random(bytes)
    }

    #[test]
    fn a_made_code_reads_back_in_any_spelling() {
        for seed in 0..=255 {
            let c = code(seed);
            let shown = c.to_string();
            assert_eq!(shown.len(), 9, "{shown}");
            assert_eq!(AccessCode::parse(&shown), Ok(c.clone()));
            assert_eq!(AccessCode::parse(&shown.to_lowercase()), Ok(c.clone()));
            let spaced: String = c.as_str().chars().flat_map(|ch| [ch, ' ']).collect();
            assert_eq!(AccessCode::parse(&spaced), Ok(c));
        }
    }

    #[test]
    fn codes_never_use_look_alikes() {
        for seed in 0..=255 {
            let c = code(seed);
            assert!(!c.as_str().contains(['0', 'O', '1', 'I']), "{c}");
        }
        assert_eq!(
            AccessCode::parse("K7QM-3XW0"),
            Err(CodeError::Char {
                ch: '0',
                position: 8
            })
        );
    }

    #[test]
    fn every_single_typo_and_every_neighbour_swap_but_2_z_is_caught() {
        for seed in 0..=255 {
            let c = code(seed);
            let chars: Vec<u8> = c.as_str().bytes().collect();
            for i in 0..LEN {
                for &other in ALPHABET.iter().filter(|&&a| a != chars[i]) {
                    let mut typo = chars.clone();
                    typo[i] = other;
                    let typo = String::from_utf8(typo).unwrap();
                    assert_eq!(AccessCode::parse(&typo), Err(CodeError::Check), "{typo}");
                }
                let pair = [chars[i], chars.get(i + 1).copied().unwrap_or(chars[i])];
                let blind_spot = pair == *b"2Z" || pair == *b"Z2";
                if i + 1 < LEN && chars[i] != chars[i + 1] && !blind_spot {
                    let mut swap = chars.clone();
                    swap.swap(i, i + 1);
                    let swap = String::from_utf8(swap).unwrap();
                    assert_eq!(AccessCode::parse(&swap), Err(CodeError::Check), "{swap}");
                }
            }
        }
    }

    #[test]
    fn short_long_and_empty_codes_say_what_is_wrong() {
        assert_eq!(AccessCode::parse(" - "), Err(CodeError::Empty));
        assert_eq!(
            AccessCode::parse("K7QM-3XW"),
            Err(CodeError::Length { found: 7 })
        );
        assert_eq!(
            AccessCode::parse("评议码"),
            Err(CodeError::Length { found: 3 })
        );
        let e = AccessCode::parse("K7QM-3XWé").unwrap_err();
        assert!(e.to_string().contains("character 8"), "{e}");
    }
}
