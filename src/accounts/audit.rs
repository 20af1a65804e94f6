//! `/audit/`: the security events the store keeps, newest first, for admins.
//!
//! Paginated by event id: `?limit=N` (default 50, at most 500) and `?before=<id>` for the page
//! after one whose last event had that id. `next` in the answer is that URL, or null at the end.

use http::{Request, Response, StatusCode};
use serde_json::json;

use crate::app::App;
use crate::clock::rfc3339;
use crate::error::ApiError;
use crate::response::{Body, json};

const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 500;

pub async fn list(app: &App, request: Request<Body>) -> Result<Response<Body>, ApiError> {
    let (before, limit) = page(request.uri().query().unwrap_or(""))?;
    let events = app.store.audit_events(before, limit).await?;
    let next = (events.len() == limit)
        .then(|| {
            events.last().map(|e| {
                format!(
                    "{}/audit/?before={}&limit={limit}",
                    app.config.auth.api_prefix, e.id
                )
            })
        })
        .flatten();
    let results: Vec<_> = events
        .iter()
        .map(|e| {
            json!({
                "id": e.id,
                "at": rfc3339(e.at),
                "kind": e.kind,
                "actor": e.actor,
                "target": e.target,
                "client_ip": e.client_ip,
            })
        })
        .collect();
    Ok(json(
        StatusCode::OK,
        &json!({ "results": results, "next": next }),
    ))
}

fn page(query: &str) -> Result<(Option<u64>, usize), ApiError> {
    let mut before = None;
    let mut limit = DEFAULT_LIMIT;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        match name {
            "before" => {
                before =
                    Some(value.parse().map_err(|_| {
                        ApiError::bad_request("before: A valid integer is required.")
                    })?)
            }
            "limit" => {
                limit = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| {
                        ApiError::bad_request(format!("limit: Must be between 1 and {MAX_LIMIT}."))
                    })?
            }
            _ => {}
        }
    }
    Ok((before, limit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_parameters() {
        assert_eq!(page("").unwrap(), (None, DEFAULT_LIMIT));
        assert_eq!(page("before=42&limit=10").unwrap(), (Some(42), 10));
        assert_eq!(page("x=1&limit=500").unwrap(), (None, 500));
        for bad in ["limit=0", "limit=501", "limit=x", "before=-1", "before="] {
            assert!(page(bad).is_err(), "{bad}");
        }
    }
}
