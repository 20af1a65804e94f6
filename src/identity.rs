//! Who a request is from: the credential it presents, found in the fixed order of DESIGN §1,
//! with the CSRF rule for the session cookie, turned into a principal or refused, and every
//! decision counted. Shared by the proxy path, the accounts API and the pages.

use std::time::Instant;

use http::HeaderMap;

use crate::app::App;
use crate::auth::{Credential, Principal, find_credential};
use crate::error::ApiError;
use crate::request::RequestContext;

impl App {
    /// The principal behind whatever credential the request presents; `None` if it presents
    /// none. Shared by the proxy path and the accounts API.
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        ctx: &RequestContext,
    ) -> Result<Option<Principal>, ApiError> {
        let session_cookie = self
            .config
            .ui
            .enabled
            .then_some(self.cookies.session(ctx.https));
        let Some(credential) = find_credential(headers, session_cookie)? else {
            self.metrics.auth_decision("none", "absent", None);
            return Ok(None);
        };
        if matches!(credential, Credential::Session(_)) && !ctx.same_origin {
            self.metrics.auth_decision("session", "cross_site", None);
            return Err(ApiError::CsrfFailed);
        }
        let method = credential.method().as_str();
        let started = Instant::now();
        let result = self.auth.authenticate(credential).await;
        let outcome = if result.is_ok() { "ok" } else { "rejected" };
        self.metrics
            .auth_decision(method, outcome, Some(started.elapsed()));
        Ok(Some(result?))
    }
}
