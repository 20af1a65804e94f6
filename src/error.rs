//! The one mapping from what went wrong to what the client sees: a status and a
//! `{"detail": …}` body with DESIGN §2's exact messages. Internal detail (store errors, upstream
//! addresses) goes to the log here and never into a response.

use http::header::{HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{Response, StatusCode};

use crate::auth::AuthError;
use crate::response::{Body, json};
use crate::store::StoreError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    NotAuthenticated,
    InvalidToken,
    InvalidApiKey,
    LoginFailed,
    Forbidden,
    /// An unsafe request carried by the session cookie that did not come from this site.
    CsrfFailed,
    NotFound,
    /// With the methods the path does allow, for the `Allow` header.
    MethodNotAllowed(String),
    /// The request conflicts with the state it would change (the last administrator).
    Conflict(String),
    BadRequest(String),
    PayloadTooLarge,
    UnsupportedMediaType,
    Throttled {
        retry_after_secs: u64,
    },
    BadGateway,
    GatewayTimeout,
    Unavailable,
    Internal,
}

impl ApiError {
    pub fn bad_request(detail: impl Into<String>) -> ApiError {
        ApiError::BadRequest(detail.into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::NotAuthenticated
            | ApiError::InvalidToken
            | ApiError::InvalidApiKey
            | ApiError::LoginFailed => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden | ApiError::CsrfFailed => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::BadGateway => StatusCode::BAD_GATEWAY,
            ApiError::GatewayTimeout => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn detail(&self) -> String {
        match self {
            ApiError::NotAuthenticated => "Authentication credentials were not provided.".into(),
            ApiError::InvalidToken => "Invalid token.".into(),
            ApiError::InvalidApiKey => "Invalid API key.".into(),
            ApiError::LoginFailed => "No active account found with the given credentials".into(),
            ApiError::Forbidden => "You do not have permission to perform this action.".into(),
            ApiError::CsrfFailed => {
                "CSRF check failed: the request did not come from this site.".into()
            }
            ApiError::NotFound => "Not found.".into(),
            ApiError::MethodNotAllowed(_) => "Method not allowed.".into(),
            ApiError::BadRequest(detail) | ApiError::Conflict(detail) => detail.clone(),
            ApiError::PayloadTooLarge => "Request body is too large.".into(),
            ApiError::UnsupportedMediaType => {
                "Unsupported media type in request; use application/json.".into()
            }
            ApiError::Throttled { retry_after_secs } => {
                format!("Request was throttled. Expected available in {retry_after_secs} seconds.")
            }
            ApiError::BadGateway => "The upstream service is unavailable.".into(),
            ApiError::GatewayTimeout => "The upstream service did not respond in time.".into(),
            ApiError::Unavailable => "Service temporarily unavailable, try again later.".into(),
            ApiError::Internal => "Internal server error.".into(),
        }
    }

    pub fn into_response(self) -> Response<Body> {
        let mut response = json(
            self.status(),
            &serde_json::json!({ "detail": self.detail() }),
        );
        let headers = response.headers_mut();
        match self {
            ApiError::NotAuthenticated => {
                headers.insert(
                    WWW_AUTHENTICATE,
                    HeaderValue::from_static(r#"Bearer realm="portcullis""#),
                );
            }
            ApiError::LoginFailed => {
                headers.insert(
                    WWW_AUTHENTICATE,
                    HeaderValue::from_static(r#"Bearer realm="portcullis""#),
                );
            }
            ApiError::MethodNotAllowed(allow) => {
                if let Ok(allow) = HeaderValue::from_str(&allow) {
                    headers.insert(http::header::ALLOW, allow);
                }
            }
            ApiError::InvalidToken | ApiError::InvalidApiKey => {
                headers.insert(
                    WWW_AUTHENTICATE,
                    HeaderValue::from_static(r#"Bearer realm="portcullis", error="invalid_token""#),
                );
            }
            ApiError::Throttled { retry_after_secs } => {
                headers.insert(RETRY_AFTER, HeaderValue::from(retry_after_secs));
            }
            _ => {}
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        match error {
            StoreError::LastAdmin => ApiError::Conflict(
                "The last active administrator cannot be demoted, deactivated or deleted.".into(),
            ),
            StoreError::Rejected(detail) => ApiError::BadRequest(detail),
            StoreError::UsernameTaken => {
                ApiError::bad_request("username: A user with that username already exists.")
            }
            error => {
                tracing::error!(%error, "store operation failed");
                ApiError::Unavailable
            }
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> ApiError {
        match error {
            AuthError::InvalidToken => ApiError::InvalidToken,
            AuthError::InvalidApiKey => ApiError::InvalidApiKey,
            AuthError::DuplicateHeader("session cookie") => {
                ApiError::bad_request("Multiple session cookies were provided.")
            }
            AuthError::DuplicateHeader(name) => {
                ApiError::BadRequest(format!("Multiple {name} headers were provided."))
            }
            AuthError::Store(error) => error.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttled_carries_retry_after() {
        let response = ApiError::Throttled {
            retry_after_secs: 7,
        }
        .into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[RETRY_AFTER], "7");
    }

    #[test]
    fn missing_credentials_challenge() {
        let response = ApiError::NotAuthenticated.into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            response.headers()[WWW_AUTHENTICATE],
            r#"Bearer realm="portcullis""#
        );
    }
}
