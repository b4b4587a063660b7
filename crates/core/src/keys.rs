//! API key format: `sk-or-v1-` plus 64 hex characters, identified by the SHA-256 of the whole string.
//!
//! Keys are shown once and stored only as their hash (the `hash` of OpenRouter's keys API), so a
//! database leak yields no usable key. Randomness comes from the caller: core does no IO.

use sha2::{Digest, Sha256};

pub const KEY_PREFIX: &str = "sk-or-v1-";

/// Builds a key from 32 random bytes.
pub fn format_key(random: &[u8; 32]) -> String {
    let mut key = String::with_capacity(KEY_PREFIX.len() + 64);
    key.push_str(KEY_PREFIX);
    key.push_str(&hex(random));
    key
}

/// The public identifier of a key: lowercase hex SHA-256 of the full key string.
pub fn hash_key(key: &str) -> String {
    hex(&Sha256::digest(key.as_bytes()))
}

/// Whether a bearer token has the shape of one of our keys (cheap check before hashing).
pub fn looks_like_key(token: &str) -> bool {
    token.len() == KEY_PREFIX.len() + 64
        && token.starts_with(KEY_PREFIX)
        && token[KEY_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_hexdigit())
}

/// The masked form shown in listings, e.g. `sk-or-v1-0e6...1c96`.
pub fn label(key: &str) -> String {
    let secret = key.strip_prefix(KEY_PREFIX).unwrap_or(key);
    let head = secret.get(..3).unwrap_or("");
    let tail = secret.get(secret.len().saturating_sub(4)..).unwrap_or("");
    format!("{KEY_PREFIX}{head}...{tail}")
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

/// A generation id, `gen-<unix seconds>-<20 alphanumerics>`, from 20 random bytes.
pub fn generation_id(unix_seconds: i64, random: &[u8; 20]) -> String {
    const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let suffix: String = random
        .iter()
        .map(|&b| ALPHABET[b as usize % ALPHABET.len()] as char)
        .collect();
    format!("gen-{unix_seconds}-{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_shape_hash_and_label() {
        let key = format_key(&[0xab; 32]);
        assert_eq!(key.len(), 73);
        assert!(looks_like_key(&key));
        assert!(!looks_like_key("sk-or-v1-xyz"));
        assert_eq!(hash_key(&key).len(), 64);
        assert_ne!(hash_key(&key), hash_key(&format_key(&[0xac; 32])));
        assert_eq!(label(&key), "sk-or-v1-aba...abab");
        // SHA-256("abc"), a published test vector.
        assert_eq!(
            hash_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn generation_ids_look_like_openrouters() {
        let id = generation_id(1_773_679_501, &[7; 20]);
        assert!(id.starts_with("gen-1773679501-"));
        assert_eq!(id.len(), "gen-1773679501-".len() + 20);
    }
}
