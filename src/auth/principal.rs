//! Who a request is from, once authenticated.

use std::sync::Arc;

use super::user::UserState;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    Jwt,
    ApiKey,
    Session,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Jwt => "jwt",
            AuthMethod::ApiKey => "api_key",
            AuthMethod::Session => "session",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Principal {
    pub user: Arc<UserState>,
    pub method: AuthMethod,
    /// For a JWT, its verified claims; `sid` names the login session logout revokes.
    pub token: Option<Arc<super::jwt::Claims>>,
}
