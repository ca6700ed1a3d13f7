//! Join tokens in Docker's format:
//!
//! ```text
//! SWMTKN-1-<sha256 of the root CA DER, base36, 0-padded to 50>-<secret, base36, 0-padded to 25>
//! ```
//!
//! The digest lets a joining node pin the CA before it trusts anything; the secret (128
//! random bits, as swarmkit draws them) proves it may join with the token's role.

use rand::RngCore;
use sha2::Digest;

use super::{CaError, RootCa};

const PREFIX: &str = "SWMTKN";
const VERSION: &str = "1";
const DIGEST_LEN: usize = 50;
const SECRET_LEN: usize = 25;
const SECRET_BYTES: usize = 16;
const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// A parsed join token.
#[derive(Clone, PartialEq, Eq)]
pub struct JoinToken {
    /// The root CA's SHA-256, base36, 50 characters.
    pub ca_digest_b36: String,
    /// The secret, base36, 25 characters.
    pub secret: String,
}

impl std::fmt::Debug for JoinToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinToken")
            .field("ca_digest_b36", &self.ca_digest_b36)
            .field("secret", &"[elided]")
            .finish()
    }
}

impl std::fmt::Display for JoinToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{PREFIX}-{VERSION}-{}-{}",
            self.ca_digest_b36, self.secret
        )
    }
}

/// A fresh token for the cluster whose root is `ca`.
pub fn new_token(ca: &RootCa) -> String {
    let mut secret = [0u8; SECRET_BYTES];
    rand::rng().fill_bytes(&mut secret);
    JoinToken {
        ca_digest_b36: ca_digest_b36(ca.cert_der()),
        secret: padded_base36(&secret, SECRET_LEN),
    }
    .to_string()
}

impl JoinToken {
    /// Parses `SWMTKN-1-<digest>-<secret>` (surrounding whitespace is ignored).
    pub fn parse(text: &str) -> Result<JoinToken, CaError> {
        let bad = |reason: String| CaError::InvalidToken { reason };
        let text = text.trim();
        let parts: Vec<&str> = text.split('-').collect();
        if parts.first() != Some(&PREFIX) {
            return Err(bad(format!("expected it to start with {PREFIX}-")));
        }
        if parts.len() != 4 {
            return Err(bad(format!(
                "expected {PREFIX}-{VERSION}-<ca digest>-<secret>, found {} dash-separated parts",
                parts.len()
            )));
        }
        if parts[1] != VERSION {
            return Err(bad(format!(
                "unsupported version {:?}, expected {VERSION}",
                parts[1]
            )));
        }
        check_part(parts[2], "ca digest", DIGEST_LEN).map_err(bad)?;
        check_part(parts[3], "secret", SECRET_LEN).map_err(bad)?;
        Ok(JoinToken {
            ca_digest_b36: parts[2].to_owned(),
            secret: parts[3].to_owned(),
        })
    }

    /// Whether the token was made for the root CA whose DER is `ca_der`.
    pub fn matches_ca(&self, ca_der: &[u8]) -> bool {
        ca_digest_b36(ca_der) == self.ca_digest_b36
    }
}

/// Compares two secrets in time independent of where they differ. Their lengths are not
/// secret (every token secret is 25 characters), so a length mismatch returns at once.
pub fn secret_eq(a: &str, b: &str) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a
        .bytes()
        .zip(b.bytes())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

fn check_part(part: &str, what: &str, len: usize) -> Result<(), String> {
    if part.len() != len {
        return Err(format!(
            "the {what} has {} characters, expected {len}",
            part.len()
        ));
    }
    if !part
        .bytes()
        .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
    {
        return Err(format!("the {what} is not lowercase base36 ([0-9a-z])"));
    }
    Ok(())
}

/// The token form of a root CA's digest.
pub(super) fn ca_digest_b36(ca_der: &[u8]) -> String {
    padded_base36(&sha2::Sha256::digest(ca_der), DIGEST_LEN)
}

fn padded_base36(big_endian: &[u8], width: usize) -> String {
    format!("{:0>width$}", base36(big_endian))
}

/// The unsigned big-endian integer `bytes` in lowercase base36 ("0" for zero).
fn base36(bytes: &[u8]) -> String {
    let mut num = bytes.to_vec();
    let mut digits = Vec::new();
    while num.iter().any(|&b| b != 0) {
        let mut rem = 0u32;
        for byte in num.iter_mut() {
            let acc = (rem << 8) | u32::from(*byte);
            // acc < 36 * 256, so the quotient fits in a byte.
            *byte = u8::try_from(acc / 36).unwrap_or(u8::MAX);
            rem = acc % 36;
        }
        digits.push(ALPHABET[rem as usize]);
    }
    if digits.is_empty() {
        digits.push(b'0');
    }
    digits.reverse();
    digits.into_iter().map(char::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base36_matches_known_values() {
        assert_eq!(base36(&[]), "0");
        assert_eq!(base36(&[0, 0]), "0");
        assert_eq!(base36(&[35]), "z");
        assert_eq!(base36(&[36]), "10");
        assert_eq!(base36(&[0x01, 0x00]), "74");
        assert_eq!(base36(&u64::MAX.to_be_bytes()), "3w5e11264sgsf");
        // 2^256 - 1 needs 50 base36 digits, hence the token's width.
        assert_eq!(base36(&[0xff; 32]).len(), 50);
        assert_eq!(base36(&[0xff; 16]).len(), 25);
    }

    #[test]
    fn new_token_has_dockers_shape() {
        let root = RootCa::generate().expect("root");
        let token = new_token(&root);
        assert_eq!(token.len(), "SWMTKN-1-".len() + 50 + 1 + 25, "{token}");
        assert!(token.starts_with("SWMTKN-1-"));
        let parsed = JoinToken::parse(&token).expect("parse");
        assert_eq!(parsed.to_string(), token);
        assert!(parsed.matches_ca(root.cert_der()));
        let other = RootCa::generate().expect("other root");
        assert!(!parsed.matches_ca(other.cert_der()));
        assert_ne!(
            JoinToken::parse(&new_token(&root)).expect("again").secret,
            parsed.secret
        );
    }

    #[test]
    fn digest_part_is_the_root_digest_in_base36() {
        let root = RootCa::generate().expect("root");
        let digest = hex::decode(root.digest()).expect("hex");
        let token = JoinToken::parse(&new_token(&root)).expect("parse");
        assert_eq!(token.ca_digest_b36.trim_start_matches('0'), base36(&digest));
    }

    #[test]
    fn parse_names_what_is_wrong() {
        let digest = "0".repeat(50);
        let secret = "a".repeat(25);
        let cases = [
            ("SWMKEY-1-x-y".to_string(), "start with SWMTKN-"),
            (format!("SWMTKN-1-{digest}"), "3 dash-separated parts"),
            (
                format!("SWMTKN-2-{digest}-{secret}"),
                "unsupported version \"2\"",
            ),
            (
                format!("SWMTKN-1-{}-{secret}", "0".repeat(49)),
                "ca digest has 49",
            ),
            (
                format!("SWMTKN-1-{}-{secret}", "A".repeat(50)),
                "ca digest is not lowercase",
            ),
            (
                format!("SWMTKN-1-{digest}-{}", "a".repeat(26)),
                "secret has 26",
            ),
            (
                format!("SWMTKN-1-{digest}-{}", "_".repeat(25)),
                "secret is not lowercase",
            ),
        ];
        for (text, want) in cases {
            let err = JoinToken::parse(&text).expect_err(&text).to_string();
            assert!(err.starts_with("invalid join token: "), "{err}");
            assert!(err.contains(want), "{text}: {err}");
        }
        let ok = JoinToken::parse(&format!("  SWMTKN-1-{digest}-{secret}\n")).expect("trimmed");
        assert_eq!(ok.secret, secret);
        assert!(
            !format!("{ok:?}").contains(&secret),
            "debug hides the secret"
        );
    }

    #[test]
    fn secrets_compare_exactly() {
        assert!(secret_eq("abc", "abc"));
        assert!(!secret_eq("abc", "abd"));
        assert!(!secret_eq("abc", "abcd"));
        assert!(secret_eq("", ""));
    }
}
