//! A user as the hot path sees it: what the caches hold by id, with the identity header
//! values built once. A leaf of `auth`: tokens are issued for it, principals carry it.

use http::HeaderValue;

use crate::store::{UserId, UserRecord};

/// The hot-path view of a user, cached by id. The identity header values are built once
/// here rather than on every request.
#[derive(Debug)]
pub struct UserState {
    pub id: UserId,
    pub username: String,
    /// Stored roles, plus `admin` for administrators.
    pub roles: Vec<String>,
    pub is_admin: bool,
    pub is_active: bool,
    pub tokens_valid_after: u64,
    pub header_user: HeaderValue,
    pub header_user_id: HeaderValue,
    pub header_roles: HeaderValue,
}

impl UserState {
    pub fn from_record(user: &UserRecord) -> UserState {
        let roles = effective_roles(user);
        UserState {
            id: user.id,
            // Usernames and roles are restricted to header-safe characters when written.
            header_user: HeaderValue::from_str(&user.username)
                .unwrap_or_else(|_| HeaderValue::from_static("")),
            header_user_id: HeaderValue::from(user.id),
            header_roles: HeaderValue::from_str(&roles.join(","))
                .unwrap_or_else(|_| HeaderValue::from_static("")),
            username: user.username.clone(),
            roles,
            is_admin: user.is_admin,
            is_active: user.is_active,
            tokens_valid_after: user.tokens_valid_after,
        }
    }

    pub fn has_any_role(&self, wanted: &[String]) -> bool {
        wanted.iter().any(|w| self.roles.iter().any(|r| r == w))
    }
}

pub fn effective_roles(user: &UserRecord) -> Vec<String> {
    let mut roles = user.roles.clone();
    if user.is_admin && !roles.iter().any(|r| r == "admin") {
        roles.push("admin".to_string());
    }
    roles
}
