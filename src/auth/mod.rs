//! Authentication: finding the credential a request presents and turning it into a
//! [`Principal`], or refusing it.
//!
//! Credentials are looked for in a fixed order (DESIGN §1): `Authorization: Bearer`, then
//! `Authorization: ApiKey`, then `X-API-Key`. A presented credential that fails is an error,
//! never "anonymous". Everything here is answered from the caches on the hot path; the store
//! is read only on a miss.

pub mod apikey;
pub mod jwt;
pub mod names;
pub mod password;
pub mod principal;
pub mod rate_limit;
pub mod session;
pub mod user;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use http::HeaderMap;
use http::header::AUTHORIZATION;

use crate::cache::{Caches, KeyState};
use crate::store::{Store, StoreError, UserId};
pub use principal::{AuthMethod, Principal};
pub use user::UserState;

pub const X_API_KEY: &str = "x-api-key";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential<'a> {
    Bearer(&'a str),
    ApiKey(&'a str),
    /// The browser session cookie's token.
    Session(&'a str),
}

impl Credential<'_> {
    pub fn method(&self) -> AuthMethod {
        match self {
            Credential::Bearer(_) => AuthMethod::Jwt,
            Credential::ApiKey(_) => AuthMethod::ApiKey,
            Credential::Session(_) => AuthMethod::Session,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("invalid token")]
    InvalidToken,
    #[error("invalid API key")]
    InvalidApiKey,
    /// Two `Authorization` or two `X-API-Key` headers, or two session cookies: which one
    /// counts is ambiguous, and components disagreeing on it is how bypasses happen.
    #[error("duplicate {0} header")]
    DuplicateHeader(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The credential a request presents, if any; the session cookie counts when the web UI is
/// on (`session_cookie` names it).
pub fn find_credential<'a>(
    headers: &'a HeaderMap,
    session_cookie: Option<&str>,
) -> Result<Option<Credential<'a>>, AuthError> {
    let mut authorization = headers.get_all(AUTHORIZATION).iter();
    let first_authorization = authorization.next();
    if authorization.next().is_some() {
        return Err(AuthError::DuplicateHeader("Authorization"));
    }
    let mut api_key = headers.get_all(X_API_KEY).iter();
    let first_api_key = api_key.next();
    if api_key.next().is_some() {
        return Err(AuthError::DuplicateHeader("X-API-Key"));
    }
    if let Some(value) = first_authorization {
        let bytes = value.as_bytes();
        if let Some(token) = strip_scheme(bytes, b"bearer") {
            let token = std::str::from_utf8(token).map_err(|_| AuthError::InvalidToken)?;
            return Ok(Some(Credential::Bearer(token)));
        }
        if let Some(key) = strip_scheme(bytes, b"apikey") {
            let key = std::str::from_utf8(key).map_err(|_| AuthError::InvalidApiKey)?;
            return Ok(Some(Credential::ApiKey(key)));
        }
        // Another scheme (Basic, say) is the upstream's business, not a credential of ours.
    }
    if let Some(value) = first_api_key {
        let key = value.to_str().map_err(|_| AuthError::InvalidApiKey)?;
        return Ok(Some(Credential::ApiKey(key.trim())));
    }
    let Some(name) = session_cookie else {
        return Ok(None);
    };
    let mut sessions = session::cookie_values(headers, name);
    let session = sessions.next();
    if sessions.next().is_some() {
        return Err(AuthError::DuplicateHeader("session cookie"));
    }
    Ok(session.map(Credential::Session))
}

/// `Bearer <token>` with a case-insensitive scheme; the token trimmed of surrounding spaces.
/// A bare `Bearer` yields an empty token, which then fails as a presented credential.
fn strip_scheme<'a>(value: &'a [u8], scheme: &[u8]) -> Option<&'a [u8]> {
    let (head, rest) = value.split_at_checked(scheme.len())?;
    if !head.eq_ignore_ascii_case(scheme) || rest.first().is_some_and(|b| *b != b' ') {
        return None;
    }
    Some(rest.trim_ascii())
}

pub struct Authenticator {
    pub tokens: jwt::Tokens,
    store: Arc<dyn Store>,
    caches: Arc<Caches>,
    key_usage: KeyUsage,
}

impl Authenticator {
    pub fn new(tokens: jwt::Tokens, store: Arc<dyn Store>, caches: Arc<Caches>) -> Authenticator {
        Authenticator {
            tokens,
            store,
            caches,
            key_usage: KeyUsage::default(),
        }
    }

    pub async fn authenticate(&self, credential: Credential<'_>) -> Result<Principal, AuthError> {
        match credential {
            Credential::Bearer(token) => {
                self.signed_token(token, jwt::TokenType::Access, AuthMethod::Jwt)
                    .await
            }
            Credential::ApiKey(key) => self.api_key(key).await,
            Credential::Session(token) => {
                self.signed_token(token, jwt::TokenType::Session, AuthMethod::Session)
                    .await
            }
        }
    }

    /// A bearer access token or a session cookie: both are JWTs naming a user and a login
    /// session, checked against the user's current state and the session's revocation.
    async fn signed_token(
        &self,
        token: &str,
        kind: jwt::TokenType,
        method: AuthMethod,
    ) -> Result<Principal, AuthError> {
        let claims = self
            .tokens
            .verify(token, kind)
            .map_err(|_| AuthError::InvalidToken)?;
        let user_id = claims.user_id().ok_or(AuthError::InvalidToken)?;
        let user = self
            .active_user(user_id)
            .await?
            .ok_or(AuthError::InvalidToken)?;
        if claims.iat < user.tokens_valid_after || self.session_revoked(&claims.sid).await? {
            return Err(AuthError::InvalidToken);
        }
        Ok(Principal {
            user,
            method,
            token: Some(claims),
        })
    }

    async fn api_key(&self, presented: &str) -> Result<Principal, AuthError> {
        let (id, secret) = apikey::parse(presented).ok_or(AuthError::InvalidApiKey)?;
        let key = self.key(id).await?.ok_or(AuthError::InvalidApiKey)?;
        if !apikey::secret_matches(secret, &key.secret_sha256) {
            return Err(AuthError::InvalidApiKey);
        }
        let user = self
            .active_user(key.user_id)
            .await?
            .ok_or(AuthError::InvalidApiKey)?;
        self.key_usage.touch(id, crate::clock::now_secs());
        Ok(Principal {
            user,
            method: AuthMethod::ApiKey,
            token: None,
        })
    }

    /// The user, if they exist and are active.
    pub async fn active_user(&self, id: UserId) -> Result<Option<Arc<UserState>>, StoreError> {
        let load = async {
            let user = self.store.user(id).await?;
            Ok(user.map(|u| Arc::new(UserState::from_record(&u))))
        };
        let user = self.caches.user(id, load).await?;
        Ok(user.filter(|u| u.is_active))
    }

    /// The key if it is its user's active key; revoked and replaced keys are `None`, cached
    /// as such.
    async fn key(&self, id: &str) -> Result<Option<Arc<KeyState>>, StoreError> {
        let load = async {
            let key = self.store.active_api_key(id).await?;
            Ok(key.map(|k| {
                Arc::new(KeyState {
                    user_id: k.user_id,
                    secret_sha256: k.secret_sha256,
                })
            }))
        };
        self.caches.key(id, load).await
    }

    async fn session_revoked(&self, id: &str) -> Result<bool, StoreError> {
        let load = async {
            let family = self.store.family(id).await?;
            Ok(family.is_none_or(|f| f.revoked_at.is_some()))
        };
        self.caches.session_revoked(id, load).await
    }

    pub fn key_usage(&self) -> &KeyUsage {
        &self.key_usage
    }
}

/// API-key `last_used_at` times, kept in memory and written in batches: a disk write per
/// request would cost more than the whole rest of the request.
#[derive(Default)]
pub struct KeyUsage {
    /// Held only to insert or swap out a map, never across an await.
    pending: Mutex<HashMap<String, u64>>,
}

impl KeyUsage {
    pub fn touch(&self, id: &str, at: u64) {
        let Ok(mut pending) = self.pending.lock() else {
            return;
        };
        match pending.get_mut(id) {
            Some(last) => *last = at,
            None => {
                pending.insert(id.to_string(), at);
            }
        }
    }

    /// The newest use not yet written to the store.
    pub fn pending(&self, id: &str) -> Option<u64> {
        self.pending.lock().ok()?.get(id).copied()
    }

    pub fn take(&self) -> Vec<(String, u64)> {
        match self.pending.lock() {
            Ok(mut pending) => std::mem::take(&mut *pending).into_iter().collect(),
            Err(_) => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn credential_order_and_schemes() {
        let found = |pairs| {
            find_credential(&headers(pairs), Some("sid"))
                .unwrap()
                .map(|c| format!("{c:?}"))
        };
        assert_eq!(found(&[]), None);
        assert_eq!(
            found(&[("authorization", "Bearer abc")]),
            Some(r#"Bearer("abc")"#.to_string())
        );
        assert_eq!(
            found(&[("authorization", "bearer  abc ")]),
            Some(r#"Bearer("abc")"#.to_string())
        );
        assert_eq!(
            found(&[("authorization", "ApiKey k")]),
            Some(r#"ApiKey("k")"#.to_string())
        );
        assert_eq!(
            found(&[("x-api-key", "k")]),
            Some(r#"ApiKey("k")"#.to_string())
        );
        assert_eq!(
            found(&[("authorization", "Bearer t"), ("x-api-key", "k")]),
            Some(r#"Bearer("t")"#.to_string())
        );
        assert_eq!(found(&[("authorization", "Basic dXNlcjpwdw==")]), None);
        assert_eq!(
            found(&[("cookie", "a=1; sid=tok")]),
            Some(r#"Session("tok")"#.to_string())
        );
        assert_eq!(
            found(&[("cookie", "sid=tok"), ("x-api-key", "k")]),
            Some(r#"ApiKey("k")"#.to_string()),
            "a header credential comes before the cookie"
        );
        assert_eq!(found(&[("authorization", "Bearerabc")]), None);
        assert_eq!(
            found(&[("authorization", "Bearer")]),
            Some(r#"Bearer("")"#.to_string())
        );
    }

    #[test]
    fn duplicate_credential_headers_are_refused() {
        let twice = headers(&[("authorization", "Bearer a"), ("authorization", "Bearer b")]);
        assert!(matches!(
            find_credential(&twice, None),
            Err(AuthError::DuplicateHeader(_))
        ));
        let twice = headers(&[("x-api-key", "a"), ("X-API-KEY", "b")]);
        assert!(matches!(
            find_credential(&twice, None),
            Err(AuthError::DuplicateHeader(_))
        ));
    }

    #[test]
    fn key_usage_keeps_newest_and_drains() {
        let usage = KeyUsage::default();
        usage.touch("a", 5);
        usage.touch("a", 7);
        assert_eq!(usage.pending("a"), Some(7));
        assert_eq!(usage.take(), vec![("a".to_string(), 7)]);
        assert_eq!(usage.pending("a"), None);
    }
}
