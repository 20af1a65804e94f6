//! API keys: `pcs_<id>_<secret>`.
//!
//! The `pcs_` prefix makes a leaked key greppable; the id finds the row without a scan; the
//! secret is 32 bytes from the OS RNG, base64url. Only SHA-256 of the secret is stored: the
//! secret is high-entropy, so a slow hash would add latency without adding safety.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::store::{ApiKeyRecord, UserId};

const PREFIX: &str = "pcs_";
const ID_BYTES: usize = 8;
const SECRET_BYTES: usize = 32;
const ID_LEN: usize = ID_BYTES * 2;
const SECRET_LEN: usize = 43; // base64url of 32 bytes, unpadded

/// A freshly generated key: the row to store, and the key itself, which is shown to its owner
/// once and never stored.
pub struct NewApiKey {
    pub record: ApiKeyRecord,
    pub key: String,
}

pub fn generate(user_id: UserId, now: u64) -> Result<NewApiKey, getrandom::Error> {
    let mut id = [0u8; ID_BYTES];
    let mut secret = [0u8; SECRET_BYTES];
    getrandom::fill(&mut id)?;
    getrandom::fill(&mut secret)?;
    let id = hex(&id);
    let secret = URL_SAFE_NO_PAD.encode(secret);
    Ok(NewApiKey {
        key: format!("{PREFIX}{id}_{secret}"),
        record: ApiKeyRecord {
            id,
            user_id,
            secret_sha256: sha256(&secret),
            created_at: now,
            last_used_at: None,
            revoked_at: None,
        },
    })
}

/// The visible, non-secret part of a key, as listings show it.
pub fn display_prefix(id: &str) -> String {
    format!("{PREFIX}{id}")
}

/// Splits a presented key into (id, secret); `None` for anything not shaped exactly like a key.
pub fn parse(presented: &str) -> Option<(&str, &str)> {
    let rest = presented.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_at_checked(ID_LEN)?;
    let secret = secret.strip_prefix('_')?;
    let id_ok = id
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let secret_ok = secret.len() == SECRET_LEN
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (id_ok && secret_ok).then_some((id, secret))
}

pub fn sha256(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Constant-time: the comparison's duration says nothing about how much of a guess matched.
pub fn secret_matches(secret: &str, stored_sha256: &[u8; 32]) -> bool {
    sha256(secret).ct_eq(stored_sha256).into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_and_match() {
        let new = generate(7, 100).unwrap();
        let (id, secret) = parse(&new.key).unwrap();
        assert_eq!(id, new.record.id);
        assert_eq!((new.record.user_id, new.record.created_at), (7, 100));
        assert!(secret_matches(secret, &new.record.secret_sha256));
        let mut wrong = secret.to_string();
        let last = wrong.pop().unwrap();
        wrong.push(if last == 'A' { 'B' } else { 'A' });
        assert!(!secret_matches(&wrong, &new.record.secret_sha256));
    }

    #[test]
    fn malformed_keys_do_not_parse() {
        let good = generate(1, 0).unwrap().key;
        let cases = [
            String::new(),
            good.replacen("pcs_", "pcx_", 1),
            good[..good.len() - 1].to_string(),
            format!("{good}A"),
            good.replacen('_', "-", 1),
            good.to_uppercase(),
            format!(" {good}"),
            "pcs_0123456789abcdef_".to_string(),
        ];
        for case in cases {
            assert!(parse(&case).is_none(), "{case:?}");
        }
    }
}
