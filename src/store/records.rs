//! The rows the store keeps. Times are whole seconds since the Unix epoch.

use serde::{Deserialize, Serialize};

pub type UserId = u64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    pub id: UserId,
    pub username: String,
    /// argon2id PHC string.
    pub password_hash: String,
    pub roles: Vec<String>,
    pub is_admin: bool,
    pub is_active: bool,
    /// Tokens issued before this second are rejected: deactivation and password changes
    /// move it forward to revoke every outstanding token at once.
    pub tokens_valid_after: u64,
    pub created_at: u64,
    pub updated_at: u64,
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: String,
    pub password_hash: String,
    pub roles: Vec<String>,
    pub is_admin: bool,
}

/// A partial update applied atomically by the store; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    pub password_hash: Option<String>,
    pub roles: Option<Vec<String>>,
    pub is_admin: Option<bool>,
    pub is_active: Option<bool>,
    pub tokens_valid_after: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    /// The public half of `pcs_<id>_<secret>`: finds the row without scanning.
    pub id: String,
    pub user_id: UserId,
    /// SHA-256 of the secret; the secret itself is never stored.
    pub secret_sha256: [u8; 32],
    pub created_at: u64,
    pub last_used_at: Option<u64>,
    pub revoked_at: Option<u64>,
}

/// A chain of refresh tokens descending from one login. Only the newest (`current_jti`) may
/// be redeemed; presenting an older one means it was stolen, and the family is revoked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshFamily {
    pub id: String,
    pub user_id: UserId,
    pub current_jti: String,
    pub created_at: u64,
    pub expires_at: u64,
    pub revoked_at: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotateOutcome {
    Rotated,
    /// An older token of the family was presented; the family is now revoked.
    ReuseDetected,
    /// The family was already revoked (logout, or earlier reuse).
    Revoked,
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub id: u64,
    pub at: u64,
    pub kind: String,
    /// Who acted (username), when known.
    pub actor: Option<String>,
    /// What was acted on: a username, a key id, a family id.
    pub target: Option<String>,
    pub client_ip: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct NewAuditEvent {
    pub kind: &'static str,
    pub actor: Option<String>,
    pub target: Option<String>,
    pub client_ip: Option<String>,
}
