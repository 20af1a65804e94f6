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
    /// Moves `tokens_valid_after` forward (never back).
    pub tokens_valid_after: Option<u64>,
}

impl UserRecord {
    /// Applies `patch` at `now`, as both backends do inside their transaction. A new password
    /// or a deactivation revokes every credential the user holds: `tokens_valid_after` moves
    /// past this second (tokens issued up to and including it are refused; see
    /// `Tokens::issue`), and the return value tells the store to revoke the API key too.
    pub fn apply(&mut self, patch: UserPatch, now: u64) -> bool {
        let revokes_credentials = patch.password_hash.is_some() || patch.is_active == Some(false);
        if let Some(hash) = patch.password_hash {
            self.password_hash = hash;
        }
        if let Some(roles) = patch.roles {
            self.roles = roles;
        }
        if let Some(is_admin) = patch.is_admin {
            self.is_admin = is_admin;
        }
        if let Some(is_active) = patch.is_active {
            self.is_active = is_active;
        }
        let mut after = patch.tokens_valid_after.unwrap_or(0);
        if revokes_credentials {
            after = after.max(now + 1);
        }
        self.tokens_valid_after = self.tokens_valid_after.max(after);
        self.updated_at = now;
        revokes_credentials
    }
}

/// What deleting a user removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedUser {
    pub username: String,
    pub revoked_key: Option<String>,
}

/// A key after `revoke_api_key`, and whether this call revoked it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedKey {
    pub key: ApiKeyRecord,
    pub newly: bool,
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

impl RefreshFamily {
    /// Redeems `presented` for `next` at `now`, as both backends do inside their transaction:
    /// only the newest token of a live family rotates; an older one is a copy someone kept,
    /// and revokes the whole family.
    pub fn rotate(
        &mut self,
        presented: &str,
        next: &str,
        expires_at: u64,
        now: u64,
    ) -> RotateOutcome {
        if self.revoked_at.is_some() {
            return RotateOutcome::Revoked;
        }
        if self.current_jti != presented {
            self.revoked_at = Some(now);
            return RotateOutcome::ReuseDetected;
        }
        self.current_jti = next.to_string();
        self.expires_at = expires_at;
        RotateOutcome::Rotated
    }
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

/// A login budget (a GCRA token bucket): one attempt every `interval_ms`, up to `burst` at
/// once. The store keeps, per key, the theoretical arrival time of the next attempt, so the
/// budget is one number however many replicas share it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginBudget {
    pub key: String,
    pub interval_ms: u64,
    pub burst: u32,
}

impl LoginBudget {
    /// What the stored arrival time becomes when an attempt at `now_ms` fits the budget, or
    /// `Err(ms)` to wait before it would.
    pub fn charge(&self, stored: Option<u64>, now_ms: u64) -> Result<u64, u64> {
        let next = stored.unwrap_or(now_ms).max(now_ms) + self.interval_ms;
        let limit = now_ms + self.interval_ms * u64::from(self.burst);
        if next <= limit {
            Ok(next)
        } else {
            Err(next - limit)
        }
    }
}

/// Whether a change leaves `user` an active administrator.
pub fn is_active_admin(user: &UserRecord) -> bool {
    user.is_admin && user.is_active
}

/// What an import must hold before any row is written: at most one unrevoked key per user,
/// the invariant every other write keeps.
pub fn check_import(keys: &[ApiKeyRecord]) -> Result<(), String> {
    let mut active: std::collections::HashMap<UserId, &str> = std::collections::HashMap::new();
    for key in keys.iter().filter(|k| k.revoked_at.is_none()) {
        if let Some(other) = active.insert(key.user_id, &key.id) {
            return Err(format!(
                "user {} has more than one active API key ({other} and {}); revoke all but one",
                key.user_id, key.id
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_allows_its_burst_then_one_per_interval() {
        let budget = LoginBudget {
            key: "k".into(),
            interval_ms: 10_000,
            burst: 3,
        };
        let mut stored = None;
        for _ in 0..3 {
            stored = Some(budget.charge(stored, 0).unwrap());
        }
        assert_eq!(budget.charge(stored, 0), Err(10_000));
        assert_eq!(budget.charge(stored, 9_999), Err(1));
        assert!(budget.charge(stored, 10_000).is_ok());
    }
}
