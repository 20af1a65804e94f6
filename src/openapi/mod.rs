//! The OpenAPI 3.1 document of the accounts API at `/api/schema/`, and Swagger UI at
//! `/api/swagger/` to read and try it. Both are served from the binary, with no CDN, so they
//! work in a cluster without internet access.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue, LOCATION};
use http::{Response, StatusCode};

use crate::error::ApiError;
use crate::response::{Body, empty, full};

pub const SCHEMA_PATH: &str = "/api/schema/";
pub const SWAGGER_PATH: &str = "/api/swagger/";

/// Written by hand against the handlers and checked by `openapi-spec-validator` in CI; the
/// server URL is the configured `api_prefix`.
const DOCUMENT: &str = include_str!("accounts.json");

pub struct ApiDocs {
    schema: Bytes,
    swagger: Arc<utoipa_swagger_ui::Config<'static>>,
}

impl ApiDocs {
    pub fn new(api_prefix: &str) -> ApiDocs {
        let swagger = utoipa_swagger_ui::Config::new([SCHEMA_PATH])
            .try_it_out_enabled(true)
            // A token typed into the page would otherwise sit in this origin's localStorage,
            // readable by any script the upstream serves under the same origin.
            .persist_authorization(false)
            .display_request_duration(true)
            // The default validator badge calls validator.swagger.io: nothing leaves the page.
            .validator_url("none");
        ApiDocs {
            schema: Bytes::from(DOCUMENT.replace("__API_PREFIX__", api_prefix)),
            swagger: Arc::new(swagger),
        }
    }

    pub fn schema(&self) -> Response<Body> {
        let mut response = Response::new(full(self.schema.clone()));
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        response
    }

    /// A Swagger UI file; `path` is the request path, `/api/swagger` or below it.
    pub fn swagger(&self, path: &str) -> Response<Body> {
        let Some(tail) = path.strip_prefix(SWAGGER_PATH) else {
            // The page loads its assets relative to itself, so it must be served at the slash.
            let mut response = empty(StatusCode::MOVED_PERMANENTLY);
            response
                .headers_mut()
                .insert(LOCATION, HeaderValue::from_static(SWAGGER_PATH));
            return response;
        };
        match utoipa_swagger_ui::serve(tail, self.swagger.clone()) {
            Ok(Some(file)) => {
                let mut response = Response::new(full(file.bytes.into_owned()));
                let headers = response.headers_mut();
                if let Ok(content_type) = HeaderValue::from_str(&file.content_type) {
                    headers.insert(CONTENT_TYPE, content_type);
                }
                headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
                response
            }
            Ok(None) => ApiError::NotFound.into_response(),
            Err(error) => {
                tracing::error!(%error, "Swagger UI file could not be served");
                ApiError::Internal.into_response()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_json_with_the_configured_prefix() {
        let docs = ApiDocs::new("/auth/api");
        let document: serde_json::Value = serde_json::from_slice(&docs.schema).unwrap();
        assert_eq!(document["openapi"], "3.1.0");
        assert_eq!(document["servers"][0]["url"], "/auth/api");
        assert!(document["components"]["securitySchemes"]["Bearer"].is_object());
        assert!(document["components"]["securitySchemes"]["ApiKey"].is_object());
    }

    #[test]
    fn every_route_the_router_knows_is_documented() {
        let docs = ApiDocs::new("/api/accounts");
        let document: serde_json::Value = serde_json::from_slice(&docs.schema).unwrap();
        let paths = document["paths"].as_object().unwrap();
        for route in crate::accounts::ROUTES {
            let (path, method) = (route.path, route.method);
            let operation = &paths[path][method.to_ascii_lowercase()];
            assert!(operation.is_object(), "{method} {path} is not documented");
            // What the document says about credentials agrees with the table.
            let public = operation["security"].as_array().is_some_and(|s| {
                s.is_empty()
                    || s.iter()
                        .any(|r| r.as_object().is_some_and(|o| o.is_empty()))
            });
            assert_eq!(
                public,
                route.who == crate::accounts::Who::Anyone,
                "{method} {path}: the document and the route table disagree on who may call"
            );
        }
    }
}
