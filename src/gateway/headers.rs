//! Header rewriting on the way upstream: stripping forged identity, hop-by-hop removal,
//! `X-Forwarded-*`, consumed credentials, and identity injection.
//!
//! The order matters and is fixed by the request path in `gateway/mod.rs`: identity is
//! stripped before anything reads the request and injected after hop-by-hop removal, so a
//! `Connection:` header naming an identity header cannot delete the injected one.

use http::Method;
use http::header::{
    AUTHORIZATION, CONNECTION, FORWARDED, HOST, HeaderMap, HeaderName, HeaderValue, UPGRADE,
};

use crate::auth::{Principal, X_API_KEY};
use crate::config::HeaderNamesConfig;
use crate::request::{Peer, X_FORWARDED_FOR};

static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// The identity header names, as configured.
#[derive(Debug, Clone)]
pub struct IdentityHeaders {
    pub user: HeaderName,
    pub user_id: HeaderName,
    pub roles: HeaderName,
    pub method: HeaderName,
    pub request_id: HeaderName,
}

impl IdentityHeaders {
    /// From configuration; a name that does not parse is an error naming it, never replaced.
    pub fn new(names: &HeaderNamesConfig) -> Result<IdentityHeaders, String> {
        let name = |key: &str, s: &str| {
            HeaderName::from_bytes(s.as_bytes())
                .map_err(|_| format!("headers.{key}: {s:?} is not a valid header name"))
        };
        Ok(IdentityHeaders {
            user: name("user", &names.user)?,
            user_id: name("user_id", &names.user_id)?,
            roles: name("roles", &names.roles)?,
            method: name("method", &names.method)?,
            request_id: name("request_id", &names.request_id)?,
        })
    }

    fn all(&self) -> [&HeaderName; 5] {
        [
            &self.user,
            &self.user_id,
            &self.roles,
            &self.method,
            &self.request_id,
        ]
    }

    /// Whether `name` is an identity header in any spelling a backend might fold together:
    /// case (already lowered by `http`), `_` and `.` for `-`.
    pub fn is_identity(&self, name: &HeaderName) -> bool {
        self.all()
            .iter()
            .any(|identity| folds_to(name, identity.as_str()))
    }
}

/// Whether `name` reads as `target` (lower case, `-` separated) to a backend that folds case,
/// `_` and `.` together, as CGI, WSGI, PHP and Rack do when they turn a header into a variable.
pub fn folds_to(name: &HeaderName, target: &str) -> bool {
    let (candidate, target) = (name.as_str().as_bytes(), target.as_bytes());
    candidate.len() == target.len()
        && candidate.iter().zip(target).all(|(c, t)| {
            let c = if *c == b'_' || *c == b'.' { b'-' } else { *c };
            c == *t
        })
}

/// Headers Rails, Laravel, Symfony, ASP.NET and Express read as the request's "real" method.
const METHOD_OVERRIDES: [&str; 3] = [
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

pub fn is_method_override(name: &HeaderName) -> bool {
    METHOD_OVERRIDES.iter().any(|o| folds_to(name, o))
}

/// Removes every method-override header: what the upstream would treat as the method must be
/// what the rules judged.
pub fn strip_method_overrides(headers: &mut HeaderMap) {
    remove_where(headers, is_method_override);
}

/// Method-override headers that disagree with each other, or do not name a method.
#[derive(Debug, PartialEq, Eq)]
pub struct ConflictingOverrides;

/// The method the request's override headers name (kept when `upstream.method_override` is
/// on).
pub fn override_methods(headers: &HeaderMap) -> Result<Option<Method>, ConflictingOverrides> {
    let mut found: Option<Method> = None;
    for (name, value) in headers {
        if !is_method_override(name) {
            continue;
        }
        let method = parse_override(value.as_bytes()).ok_or(ConflictingOverrides)?;
        match &found {
            Some(previous) if *previous != method => return Err(ConflictingOverrides),
            _ => found = Some(method),
        }
    }
    Ok(found)
}

/// The method a `_method` query parameter names, as Symfony and Laravel read it (upper-cased);
/// only ever judged in addition to the request's own method.
pub fn query_override(query: Option<&str>) -> Option<Method> {
    let query = query?;
    if !query.contains("_method") {
        return None;
    }
    form_urlencoded::parse(query.as_bytes())
        .filter(|(key, _)| key == "_method")
        .find_map(|(_, value)| parse_override(value.as_bytes()))
}

fn parse_override(value: &[u8]) -> Option<Method> {
    let value = value.trim_ascii().to_ascii_uppercase();
    Method::from_bytes(&value).ok()
}

/// Removes every header that claims an identity. Runs on every request, authenticated or
/// not, before anything else reads the headers.
pub fn strip_forged_identity(headers: &mut HeaderMap, identity: &IdentityHeaders) {
    remove_where(headers, |name| identity.is_identity(name));
}

/// Removes every header whose name matches, looking at each name present once: most requests
/// carry none of what is removed, and then nothing is hashed, allocated or moved.
fn remove_where(headers: &mut HeaderMap, matches: impl Fn(&HeaderName) -> bool) {
    if !headers.keys().any(&matches) {
        return;
    }
    let doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| matches(name))
        .cloned()
        .collect();
    for name in doomed {
        headers.remove(&name);
    }
}

/// Headers through which frameworks let a proxy in front say what the request "really" was:
/// its URL (IIS, Symfony, Spring, the forward-auth protocols), its host, scheme and port
/// (Symfony's and ASP.NET's forwarded-header handling, Rails, Django with `USE_X_FORWARDED_*`),
/// its method (forward-auth), and the client's address. The gateway judges the request line
/// and the connection, so a client must not be able to tell the upstream otherwise. Only a
/// trusted proxy may send them; from anyone else they are removed in every spelling a backend
/// folds together.
const ROUTING_OVERRIDES: [&str; 28] = [
    "x-original-url",
    "x-rewrite-url",
    "x-original-uri",
    "x-forwarded-uri",
    "x-forwarded-path",
    "x-forwarded-prefix",
    "x-original-host",
    "x-host",
    "x-forwarded-server",
    "x-http-host-override",
    "x-forwarded-port",
    "x-forwarded-scheme",
    "x-forwarded-ssl",
    "x-url-scheme",
    "front-end-https",
    "x-original-method",
    "x-forwarded-method",
    "x-real-ip",
    "true-client-ip",
    "x-client-ip",
    "x-cluster-client-ip",
    "cf-connecting-ip",
    "fastly-client-ip",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "forwarded",
    // Next.js skips its middleware (where apps check roles) for a request carrying it.
    "x-middleware-subrequest",
];

/// From an untrusted peer every spelling of every routing override goes (the gateway sets
/// `X-Forwarded-*` itself afterwards); from a trusted proxy only the spellings that are not
/// the header's own, which no proxy sends and which a client behind it could.
pub fn strip_routing_overrides(headers: &mut HeaderMap, peer: &Peer) {
    let trusted = peer.trusted;
    remove_where(headers, |name| {
        ROUTING_OVERRIDES
            .iter()
            .any(|o| folds_to(name, o) && (!trusted || name.as_str() != *o))
    });
}

/// Whether the request asks to switch to WebSocket, the one protocol the gateway tunnels: each
/// request on it was authorized at the upgrade and its messages are not HTTP requests. Any
/// other upgrade (`h2c` above all, which would open an HTTP/2 connection to the upstream where
/// every request escapes the rules and carries whatever identity the client writes) is not
/// asked of the upstream: its headers are hop-by-hop and go with the rest.
pub fn requests_websocket(headers: &HeaderMap) -> bool {
    let wants_upgrade = connection_tokens(headers).any(|t| t.eq_ignore_ascii_case("upgrade"));
    wants_upgrade && headers.get(UPGRADE).is_some_and(is_websocket)
}

/// An `Upgrade` value naming WebSocket alone.
pub fn is_websocket(value: &HeaderValue) -> bool {
    value
        .as_bytes()
        .trim_ascii()
        .eq_ignore_ascii_case(b"websocket")
}

fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Removes hop-by-hop headers (RFC 9110 §7.6.1) and every header `Connection` names.
pub fn remove_hop_by_hop(headers: &mut HeaderMap) {
    if headers.contains_key(CONNECTION) {
        let named: Vec<HeaderName> = connection_tokens(headers)
            .filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok())
            .collect();
        for name in named {
            headers.remove(name);
        }
    }
    remove_where(headers, is_hop_by_hop);
}

/// RFC 9110 §7.6.1, plus the non-standard `keep-alive` and `proxy-connection`.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
    )
}

/// Puts back the two headers a WebSocket upgrade needs after hop-by-hop removal.
pub fn restore_websocket_upgrade(headers: &mut HeaderMap) {
    headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
}

/// Removes the API key the gateway consumed, so the upstream never holds a long-lived secret
/// it did not ask for. A bearer JWT stays: an upstream may verify it itself.
pub fn remove_consumed_credentials(headers: &mut HeaderMap) {
    headers.remove(X_API_KEY);
    let api_key_scheme = headers.get(AUTHORIZATION).is_some_and(|v| {
        v.as_bytes()
            .get(..6)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case(b"apikey"))
    });
    if api_key_scheme {
        headers.remove(AUTHORIZATION);
    }
}

/// Sets `X-Forwarded-For/-Proto/-Host`: replaced for an untrusted peer, appended to (For) or
/// kept (Proto, Host) for a trusted proxy. An untrusted `Forwarded` header is dropped.
pub fn set_forwarded(
    headers: &mut HeaderMap,
    peer: &Peer,
    proto: &'static str,
    host: Option<HeaderValue>,
) {
    let xff = match (peer.trusted, joined(headers, &X_FORWARDED_FOR)) {
        (true, Some(existing)) => format!("{existing}, {}", peer.ip)
            .parse()
            .unwrap_or_else(|_| peer.ip_header.clone()),
        _ => peer.ip_header.clone(),
    };
    headers.insert(X_FORWARDED_FOR.clone(), xff);
    if !peer.trusted || !headers.contains_key(&X_FORWARDED_PROTO) {
        headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static(proto));
    }
    if !peer.trusted || !headers.contains_key(&X_FORWARDED_HOST) {
        headers.remove(&X_FORWARDED_HOST);
        if let Some(host) = host {
            headers.insert(X_FORWARDED_HOST.clone(), host);
        }
    }
    if !peer.trusted {
        headers.remove(FORWARDED);
    }
}

fn joined(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    let values: Vec<&str> = headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    (!values.is_empty()).then(|| values.join(", "))
}

/// The host the client addressed: `Host` (HTTP/1.1) or the `:authority` (HTTP/2).
pub fn client_host(headers: &HeaderMap, uri: &http::Uri) -> Option<HeaderValue> {
    headers.get(HOST).cloned().or_else(|| {
        uri.authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    })
}

/// Writes the caller's identity. Runs last, after every removal.
pub fn inject_identity(
    headers: &mut HeaderMap,
    names: &IdentityHeaders,
    principal: Option<&Principal>,
    request_id: &HeaderValue,
) {
    headers.insert(names.request_id.clone(), request_id.clone());
    if let Some(principal) = principal {
        let user = &principal.user;
        headers.insert(names.user.clone(), user.header_user.clone());
        headers.insert(names.user_id.clone(), user.header_user_id.clone());
        headers.insert(names.roles.clone(), user.header_roles.clone());
        headers.insert(
            names.method.clone(),
            HeaderValue::from_static(principal.method.as_str()),
        );
    }
}

#[cfg(test)]
mod tests;
