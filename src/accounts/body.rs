//! Reading an accounts-API request body: JSON only, capped, and each field checked with a
//! message that names it. Nothing here echoes a submitted value back (it may be a password).

use bytes::Bytes;
use http::Request;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http_body_util::{BodyExt, Limited};
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::response::Body;

/// The fields of a JSON object body.
#[derive(Debug, Default)]
pub struct Fields(Map<String, Value>);

/// Reads the body as a JSON object. An empty body is an empty object (`{}`), so endpoints
/// whose fields are all optional accept a bare POST.
pub async fn read_fields(request: Request<Body>, max_bytes: usize) -> Result<Fields, ApiError> {
    let (parts, body) = request.into_parts();
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max_bytes as u64) {
        return Err(ApiError::PayloadTooLarge);
    }
    let bytes: Bytes = match collect_limited(body, max_bytes).await {
        Ok(collected) => collected.to_bytes(),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => {
            return Err(ApiError::PayloadTooLarge);
        }
        Err(_) => return Err(ApiError::bad_request("The request body could not be read.")),
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Fields::default());
    }
    if !is_json(parts.headers.get(CONTENT_TYPE)) {
        return Err(ApiError::UnsupportedMediaType);
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(Fields(map)),
        Ok(_) => Err(ApiError::bad_request("Expected a JSON object.")),
        Err(error) => Err(ApiError::bad_request(format!(
            "JSON parse error - {}",
            error_kind(&error)
        ))),
    }
}

type Collected = Result<http_body_util::Collected<Bytes>, crate::response::BoxError>;

/// Collects at most `max_bytes`. Boxed so the future's `Send` is proven here, where the body
/// type is concrete; inside the handlers' futures rustc cannot prove it (rust-lang/rust#102211).
fn collect_limited(
    body: Body,
    max_bytes: usize,
) -> std::pin::Pin<Box<dyn Future<Output = Collected> + Send>> {
    Box::pin(Limited::new(body, max_bytes).collect())
}

/// Reads an `application/x-www-form-urlencoded` body (the sign-in form), capped like JSON.
pub async fn read_form(
    request: Request<Body>,
    max_bytes: usize,
) -> Result<std::collections::HashMap<String, String>, ApiError> {
    let (parts, body) = request.into_parts();
    let form = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form {
        return Err(ApiError::UnsupportedMediaType);
    }
    let bytes = match collect_limited(body, max_bytes).await {
        Ok(collected) => collected.to_bytes(),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => {
            return Err(ApiError::PayloadTooLarge);
        }
        Err(_) => return Err(ApiError::bad_request("The request body could not be read.")),
    };
    Ok(form_urlencoded::parse(&bytes).into_owned().collect())
}

fn is_json(content_type: Option<&http::HeaderValue>) -> bool {
    let Some(value) = content_type.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// serde_json's message without position details that could help nobody.
fn error_kind(error: &serde_json::Error) -> String {
    let message = error.to_string();
    match message.find(" at line ") {
        Some(at) => message[..at].to_string(),
        None => message,
    }
}

impl Fields {
    pub fn required_str(&self, name: &str) -> Result<String, ApiError> {
        match self.optional_str(name)? {
            Some(value) if !value.is_empty() => Ok(value),
            Some(_) => Err(field_error(name, "This field may not be blank.")),
            None => Err(field_error(name, "This field is required.")),
        }
    }

    pub fn optional_str(&self, name: &str) -> Result<Option<String>, ApiError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(field_error(name, "Not a valid string.")),
        }
    }

    pub fn optional_bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(field_error(name, "Must be a valid boolean.")),
        }
    }

    pub fn optional_id(&self, name: &str) -> Result<Option<u64>, ApiError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .map(Some)
                .ok_or_else(|| field_error(name, "A valid integer is required.")),
            Some(_) => Err(field_error(name, "A valid integer is required.")),
        }
    }

    pub fn optional_str_list(&self, name: &str) -> Result<Option<Vec<String>>, ApiError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| item.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .map(Some)
                .ok_or_else(|| field_error(name, "Expected a list of strings.")),
            Some(_) => Err(field_error(name, "Expected a list of strings.")),
        }
    }
}

pub fn field_error(name: &str, message: &str) -> ApiError {
    ApiError::BadRequest(format!("{name}: {message}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::response::full;

    fn request(content_type: Option<&str>, body: &str) -> Request<Body> {
        let mut builder = Request::post("/");
        if let Some(ct) = content_type {
            builder = builder.header(CONTENT_TYPE, ct);
        }
        builder.body(full(body.to_string())).unwrap()
    }

    #[tokio::test]
    async fn fields_are_read_and_named_in_errors() {
        let fields = read_fields(
            request(Some("application/json"), r#"{"username":"a","n":3}"#),
            1024,
        )
        .await
        .unwrap();
        assert_eq!(fields.required_str("username").unwrap(), "a");
        assert_eq!(
            fields.required_str("password"),
            Err(ApiError::bad_request("password: This field is required."))
        );
        assert_eq!(
            fields.required_str("n"),
            Err(ApiError::bad_request("n: Not a valid string."))
        );
    }

    #[tokio::test]
    async fn bad_bodies_get_the_right_error() {
        let read =
            |ct, body: &'static str, max| async move { read_fields(request(ct, body), max).await };
        assert_eq!(
            read(Some("application/json"), "{", 1024)
                .await
                .unwrap_err()
                .status(),
            400
        );
        assert_eq!(
            read(Some("application/json"), "[1]", 1024)
                .await
                .unwrap_err()
                .status(),
            400
        );
        assert_eq!(
            read(Some("text/plain"), "{}", 1024)
                .await
                .unwrap_err()
                .status(),
            415
        );
        assert_eq!(read(None, "{}", 1024).await.unwrap_err().status(), 415);
        assert_eq!(
            read(Some("application/json"), r#"{"a":"0123456789"}"#, 8)
                .await
                .unwrap_err()
                .status(),
            413
        );
        assert!(read(None, "", 1024).await.is_ok());
        assert!(
            read(Some("application/json; charset=utf-8"), "{}", 1024)
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn deep_nesting_is_refused_not_overflowed() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let req = request(Some("application/json"), &deep);
        let error = read_fields(req, 1 << 20).await.unwrap_err();
        assert_eq!(error.status(), 400);
    }
}
