//! Sealing of secrets at rest: the autolock key-encryption key and what it wraps (the
//! raft data key, the node's TLS key).
//!
//! ```text
//! sealed = nonce (12 random bytes) || ChaCha20-Poly1305(key, nonce, plaintext) || tag (16)
//! ```
//!
//! The unlock key's text form is Docker's: `SWMKEY-1-` followed by the 32 key bytes in
//! standard base64 *without* padding (43 characters). Parsing also accepts the padded form.

use base64::Engine as _;
use rand::RngCore;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};

use super::CaError;

const PREFIX: &str = "SWMKEY-1-";
const KEY_LEN: usize = 32;

/// A 256-bit key that seals data at rest. Its `Debug` never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct UnlockKey([u8; KEY_LEN]);

impl std::fmt::Debug for UnlockKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UnlockKey([elided])")
    }
}

impl UnlockKey {
    /// A fresh random key.
    pub fn generate() -> UnlockKey {
        let mut key = [0u8; KEY_LEN];
        rand::rng().fill_bytes(&mut key);
        UnlockKey(key)
    }

    /// A key from its raw bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> UnlockKey {
        UnlockKey(bytes)
    }

    /// The raw key bytes.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// Parses `SWMKEY-1-<base64>` (surrounding whitespace is ignored).
    pub fn parse(text: &str) -> Result<UnlockKey, CaError> {
        let body = text
            .trim()
            .strip_prefix(PREFIX)
            .ok_or(CaError::UnlockKeyFormat {
                reason: "expected it to start with SWMKEY-1-",
            })?;
        let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(body.trim_end_matches('='))
            .map_err(|_| CaError::UnlockKeyFormat {
                reason: "the key is not base64",
            })?;
        let key =
            <[u8; KEY_LEN]>::try_from(bytes.as_slice()).map_err(|_| CaError::UnlockKeyFormat {
                reason: "the key is not 32 bytes",
            })?;
        Ok(UnlockKey(key))
    }

    /// The text form, `SWMKEY-1-<base64 without padding>`.
    pub fn to_text(&self) -> String {
        let body = base64::engine::general_purpose::STANDARD_NO_PAD.encode(self.0);
        format!("{PREFIX}{body}")
    }

    fn aead_key(&self) -> LessSafeKey {
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, &self.0)
            .expect("a 32-byte key is always valid for chacha20-poly1305");
        LessSafeKey::new(unbound)
    }
}

/// Encrypts and authenticates `plaintext` under `key` with a fresh random nonce.
pub fn seal(key: &UnlockKey, plaintext: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rng().fill_bytes(&mut nonce);
    let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + CHACHA20_POLY1305.tag_len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);
    let (_, body) = out.split_at_mut(NONCE_LEN);
    let tag = key
        .aead_key()
        .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), body)
        .expect("chacha20-poly1305 only fails past 256 GiB of input");
    out.extend_from_slice(tag.as_ref());
    out
}

/// Decrypts what [`seal`] produced. A wrong key and altered data both give
/// [`CaError::WrongUnlockKey`]: the two cannot be told apart.
pub fn open(key: &UnlockKey, sealed: &[u8]) -> Result<Vec<u8>, CaError> {
    if sealed.len() < NONCE_LEN + CHACHA20_POLY1305.tag_len() {
        return Err(CaError::SealedTruncated { len: sealed.len() });
    }
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CaError::WrongUnlockKey)?;
    let mut body = body.to_vec();
    let plain_len = key
        .aead_key()
        .open_in_place(nonce, Aad::empty(), &mut body)
        .map_err(|_| CaError::WrongUnlockKey)?
        .len();
    body.truncate(plain_len);
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_roundtrip() {
        let key = UnlockKey::generate();
        for plain in [&b""[..], b"x", b"the raft data key, 32 bytes long"] {
            let sealed = seal(&key, plain);
            assert_eq!(sealed.len(), 12 + plain.len() + 16);
            assert_eq!(open(&key, &sealed).expect("open"), plain);
        }
        assert_ne!(
            seal(&key, b"same"),
            seal(&key, b"same"),
            "fresh nonce each time"
        );
    }

    #[test]
    fn wrong_key_or_tampering_is_refused() {
        let key = UnlockKey::generate();
        let sealed = seal(&key, b"secret");
        let err = open(&UnlockKey::generate(), &sealed).expect_err("wrong key");
        assert_eq!(err.to_string(), "invalid unlock key");
        let mut tampered = sealed.clone();
        tampered[13] ^= 1;
        assert!(matches!(
            open(&key, &tampered),
            Err(CaError::WrongUnlockKey)
        ));
        assert!(matches!(
            open(&key, &sealed[..20]),
            Err(CaError::SealedTruncated { len: 20 })
        ));
    }

    #[test]
    fn key_text_roundtrip_and_errors() {
        let key = UnlockKey::generate();
        let text = key.to_text();
        assert!(text.starts_with("SWMKEY-1-"));
        assert_eq!(text.len(), 9 + 43, "{text}");
        assert_eq!(UnlockKey::parse(&text).expect("parse"), key);
        assert_eq!(
            UnlockKey::parse(&format!(" {text}=\n")).expect("padded"),
            key
        );
        assert!(!format!("{key:?}").contains(&text[9..]));

        let cases = [
            ("SWMTKN-1-abc", "start with SWMKEY-1-"),
            ("SWMKEY-1-!!!!", "not base64"),
            ("SWMKEY-1-AAAA", "not 32 bytes"),
        ];
        for (text, want) in cases {
            let err = UnlockKey::parse(text).expect_err(text).to_string();
            assert!(err.starts_with("invalid unlock key: "), "{err}");
            assert!(err.contains(want), "{err}");
        }
    }
}
