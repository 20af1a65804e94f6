//! JWT access and refresh tokens: issuing, verifying, and the signing keyring.
//!
//! Verification pins the one configured algorithm (so `alg: none` and HS/asymmetric
//! confusion are rejected before any key is touched), requires `exp`, `iss`, `aud` and `sub`,
//! picks the key by `kid`, and checks `token_type`, so a refresh token is never accepted as
//! an access token or the other way round.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::user::UserState;
use crate::config::{AuthConfig, JwtAlgorithm};

/// Longer than any token this gateway issues; a bigger one is rejected before parsing.
const MAX_TOKEN_LEN: usize = 8 * 1024;
/// Verified tokens remembered: about one per active client.
const VERIFIED_CACHE_ENTRIES: u64 = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenType {
    Access,
    Refresh,
    /// The browser session cookie's token: lives as long as a refresh token, but, like an
    /// access token, authenticates requests; never accepted as either of the other two.
    Session,
    /// The device cookie's token: proves a client signed in as this user before, which earns
    /// it a login budget of its own. Authenticates nothing.
    Device,
}

/// How long a device cookie is remembered.
pub const DEVICE_TTL_SECS: u64 = 90 * 86_400;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub username: String,
    pub roles: Vec<String>,
    pub token_type: TokenType,
    pub jti: String,
    /// The refresh-token family (one login) this token belongs to.
    pub sid: String,
    pub iat: u64,
    pub exp: u64,
    pub iss: String,
    pub aud: String,
}

impl Claims {
    /// `sub` as a user id, in the one spelling this gateway writes: decimal digits, no sign,
    /// no leading zero, no space. `"+1"` or `"01"` is no user (Rust's parser would read 1).
    pub fn user_id(&self) -> Option<u64> {
        let canonical = !self.sub.is_empty()
            && self.sub.bytes().all(|b| b.is_ascii_digit())
            && (self.sub == "0" || !self.sub.starts_with('0'));
        canonical.then(|| self.sub.parse().ok()).flatten()
    }
}

pub struct Issued {
    pub token: String,
    pub jti: String,
    pub expires_at: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
    #[error("signing failed: {0}")]
    Sign(String),
}

#[derive(Debug, thiserror::Error)]
#[error("invalid token")]
pub struct InvalidToken;

pub struct Tokens {
    /// Swapped whole when the key file changes (rotation on another replica, a new Secret).
    keyring: ArcSwap<Keyring>,
    validation: Validation,
    /// Tokens already verified, by SHA-256 of the whole token. An EdDSA check costs tens of
    /// microseconds and even HS256 parses JSON three times, while a client presents the same
    /// token for its whole life. Bounded by `exp` (checked on every hit) and by size;
    /// revocation is not decided here but checked on every request after this.
    verified: moka::sync::Cache<[u8; 32], Arc<Claims>, foldhash::fast::RandomState>,
    leeway: u64,
    access_ttl: u64,
    refresh_ttl: u64,
    issuer: String,
    audience: String,
}

impl Tokens {
    pub fn new(config: &AuthConfig, keyring: Keyring) -> Tokens {
        // Before jsonwebtoken first signs or verifies: it keeps the first provider it sees.
        ring_crypto::install();
        let mut validation = Validation::new(keyring.algorithm);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.set_issuer(&[&config.issuer]);
        validation.set_audience(&[&config.audience]);
        validation.leeway = config.leeway_secs;
        validation.validate_nbf = true;
        Tokens {
            keyring: ArcSwap::from_pointee(keyring),
            validation,
            verified: moka::sync::Cache::builder()
                .max_capacity(VERIFIED_CACHE_ENTRIES)
                .time_to_live(Duration::from_secs(
                    config.access_ttl_secs + config.leeway_secs,
                ))
                .build_with_hasher(foldhash::fast::RandomState::default()),
            leeway: config.leeway_secs,
            access_ttl: config.access_ttl_secs,
            refresh_ttl: config.refresh_ttl_secs,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
        }
    }

    /// Starts signing and verifying with `keyring`. Remembered verifications are dropped, so a
    /// key removed from the file stops verifying at once.
    pub fn replace_keyring(&self, keyring: Keyring) {
        self.keyring.store(Arc::new(keyring));
        self.verified.invalidate_all();
    }

    pub fn refresh_ttl(&self) -> u64 {
        self.refresh_ttl
    }

    /// How long a token of `kind` lives when this gateway issues it.
    fn lifetime(&self, kind: TokenType) -> u64 {
        match kind {
            TokenType::Access => self.access_ttl,
            TokenType::Refresh | TokenType::Session => self.refresh_ttl,
            TokenType::Device => DEVICE_TTL_SECS,
        }
    }

    /// A signature proves who wrote a token, not that its times are ones this gateway would
    /// write: issued in the future, or living longer than its kind does, it is refused (and
    /// `exp` stays far from overflow in every later comparison).
    fn plausible_times(&self, claims: &Claims) -> bool {
        let now = crate::clock::now_secs();
        claims.iat <= now + self.leeway
            && claims.exp
                <= claims
                    .iat
                    .saturating_add(self.lifetime(claims.token_type) + self.leeway)
    }

    /// `iat` is never earlier than the user's `tokens_valid_after`, so a token issued in the
    /// same second as a revocation, but after it, stays valid.
    pub fn issue(
        &self,
        user: &UserState,
        token_type: TokenType,
        session_id: &str,
        now: u64,
    ) -> Result<Issued, KeyError> {
        let iat = now.max(user.tokens_valid_after);
        let ttl = self.lifetime(token_type);
        let jti = uuid::Uuid::new_v4().simple().to_string();
        let claims = Claims {
            sub: user.id.to_string(),
            username: user.username.clone(),
            roles: user.roles.clone(),
            token_type,
            jti: jti.clone(),
            sid: session_id.to_string(),
            iat,
            exp: now + ttl,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
        };
        let keyring = self.keyring.load();
        let token = jsonwebtoken::encode(&keyring.header, &claims, &keyring.signing_key)
            .map_err(|e| KeyError::Sign(e.to_string()))?;
        Ok(Issued {
            token,
            jti,
            expires_at: claims.exp,
        })
    }

    pub fn verify(&self, token: &str, expected: TokenType) -> Result<Arc<Claims>, InvalidToken> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(InvalidToken);
        }
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(claims) = self.verified.get(&digest) {
            let live = claims.exp + self.leeway > crate::clock::now_secs();
            return if live && claims.token_type == expected {
                Ok(claims)
            } else {
                Err(InvalidToken)
            };
        }
        let claims = Arc::new(self.verify_signature(token)?);
        self.verified.insert(digest, claims.clone());
        if claims.token_type != expected {
            return Err(InvalidToken);
        }
        Ok(claims)
    }

    fn verify_signature(&self, token: &str) -> Result<Claims, InvalidToken> {
        let keyring = self.keyring.load();
        let header = jsonwebtoken::decode_header(token).map_err(|_| InvalidToken)?;
        // RFC 7515 §4.1.11: an extension the verifier does not understand must be refused.
        if header.crit.is_some() {
            return Err(InvalidToken);
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| keyring.verifying.get(kid));
        let key = key.ok_or(InvalidToken)?;
        let data = jsonwebtoken::decode::<Claims>(token, key, &self.validation)
            .map_err(|_| InvalidToken)?;
        if !self.plausible_times(&data.claims) {
            return Err(InvalidToken);
        }
        Ok(data.claims)
    }

    /// The public keys as a JWK Set, when the algorithm has public keys (EdDSA).
    pub fn jwks(&self) -> Option<serde_json::Value> {
        let keyring = self.keyring.load();
        (keyring.algorithm == Algorithm::EdDSA).then(|| {
            let keys: Vec<_> = keyring
                .public_keys
                .iter()
                .map(|(kid, x)| {
                    serde_json::json!({"kty": "OKP", "crv": "Ed25519", "use": "sig",
                        "alg": "EdDSA", "kid": kid, "x": x})
                })
                .collect();
            serde_json::json!({ "keys": keys })
        })
    }
}

/// One key as the key file stores it. `material` is base64url: the HMAC secret for HS256,
/// the PKCS#8 private key for EdDSA.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredKey {
    pub kid: String,
    pub alg: JwtAlgorithm,
    pub created_at: u64,
    pub material: String,
}

/// The key file: newest key last. The newest signs; all verify, so tokens signed before a
/// rotation stay valid until they expire.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct KeyFile {
    pub keys: Vec<StoredKey>,
}

impl KeyFile {
    pub fn read(path: &Path) -> Result<KeyFile, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|e| file_error(path, e))?;
        serde_json::from_str(&text).map_err(|e| file_error(path, e))
    }

    pub fn write(&self, path: &Path) -> Result<(), KeyError> {
        let text = serde_json::to_string_pretty(self).map_err(|e| file_error(path, e))?;
        crate::files::write_private(path, text.as_bytes()).map_err(|e| file_error(path, e))
    }

    /// Appends a new key, which becomes the signing key, and drops keys retired longer ago
    /// than `keep_retired_secs` (the longest lifetime of a token they signed).
    pub fn rotate(
        &mut self,
        alg: JwtAlgorithm,
        now: u64,
        keep_retired_secs: u64,
    ) -> Result<(), KeyError> {
        self.keys.push(generate_key(alg, now)?);
        let retired_at: Vec<u64> = self.keys.iter().skip(1).map(|k| k.created_at).collect();
        let mut index = 0;
        self.keys.retain(|_| {
            let keep = retired_at
                .get(index)
                .is_none_or(|at| at + keep_retired_secs > now);
            index += 1;
            keep
        });
        Ok(())
    }
}

fn file_error(path: &Path, e: impl std::fmt::Display) -> KeyError {
    KeyError::File {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

pub fn generate_key(alg: JwtAlgorithm, now: u64) -> Result<StoredKey, KeyError> {
    let material = match alg {
        JwtAlgorithm::HS256 => {
            let mut secret = [0u8; 32];
            getrandom::fill(&mut secret).map_err(|e| KeyError::Sign(e.to_string()))?;
            secret.to_vec()
        }
        JwtAlgorithm::EdDSA => {
            let rng = ring::rand::SystemRandom::new();
            let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng)
                .map_err(|e| KeyError::Sign(e.to_string()))?;
            pkcs8.as_ref().to_vec()
        }
    };
    let mut kid = [0u8; 8];
    getrandom::fill(&mut kid).map_err(|e| KeyError::Sign(e.to_string()))?;
    Ok(StoredKey {
        kid: URL_SAFE_NO_PAD.encode(kid),
        alg,
        created_at: now,
        material: URL_SAFE_NO_PAD.encode(material),
    })
}

pub struct Keyring {
    algorithm: Algorithm,
    header: Header,
    signing_key: EncodingKey,
    verifying: HashMap<String, DecodingKey>,
    /// (kid, base64url public key) for the JWK Set.
    public_keys: Vec<(String, String)>,
}

impl Keyring {
    /// Loads the key file, creating it (0600) with one fresh key if it does not exist.
    pub fn load_or_create(path: &Path, alg: JwtAlgorithm) -> Result<Keyring, KeyError> {
        if !path.exists() {
            let file = KeyFile {
                keys: vec![generate_key(alg, crate::clock::now_secs())?],
            };
            let text = serde_json::to_string_pretty(&file).map_err(|e| file_error(path, e))?;
            crate::files::create_private(path, text.as_bytes()).map_err(|e| file_error(path, e))?;
        }
        Keyring::from_file(&KeyFile::read(path)?, alg).map_err(|reason| file_error(path, reason))
    }

    pub fn from_file(file: &KeyFile, alg: JwtAlgorithm) -> Result<Keyring, String> {
        let newest = file.keys.last().ok_or("holds no keys")?;
        if newest.alg != alg {
            return Err(format!(
                "newest key is {:?} but auth.algorithm is {alg:?}; run `portcullis keys rotate`",
                newest.alg
            ));
        }
        let mut verifying = HashMap::new();
        let mut public_keys = Vec::new();
        let mut signing_key = None;
        for key in file.keys.iter().filter(|k| k.alg == alg) {
            let material = URL_SAFE_NO_PAD
                .decode(&key.material)
                .map_err(|_| format!("key {}: material is not base64url", key.kid))?;
            let (encoding, decoding) = match alg {
                JwtAlgorithm::HS256 => {
                    if material.len() < 32 {
                        return Err(format!(
                            "key {}: HS256 secret shorter than 256 bits",
                            key.kid
                        ));
                    }
                    (
                        EncodingKey::from_secret(&material),
                        DecodingKey::from_secret(&material),
                    )
                }
                JwtAlgorithm::EdDSA => {
                    let pair =
                        ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&material)
                            .map_err(|_| format!("key {}: not an Ed25519 PKCS#8 key", key.kid))?;
                    let public = ring::signature::KeyPair::public_key(&pair)
                        .as_ref()
                        .to_vec();
                    public_keys.push((key.kid.clone(), URL_SAFE_NO_PAD.encode(&public)));
                    (
                        EncodingKey::from_ed_der(&material),
                        DecodingKey::from_ed_der(&public),
                    )
                }
            };
            verifying.insert(key.kid.clone(), decoding);
            signing_key = Some(encoding);
        }
        let algorithm = match alg {
            JwtAlgorithm::HS256 => Algorithm::HS256,
            JwtAlgorithm::EdDSA => Algorithm::EdDSA,
        };
        let mut header = Header::new(algorithm);
        header.kid = Some(newest.kid.clone());
        let signing_key = signing_key.ok_or("holds no usable key")?;
        Ok(Keyring {
            algorithm,
            header,
            signing_key,
            verifying,
            public_keys,
        })
    }
}

pub mod ring_crypto;

#[cfg(test)]
mod tests;
