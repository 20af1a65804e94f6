//! Header rewriting on the way upstream: stripping forged identity, hop-by-hop removal,
//! `X-Forwarded-*`, consumed credentials, and identity injection.
//!
//! The order matters and is fixed by the request path in `gateway/mod.rs`: identity is
//! stripped before anything reads the request and injected after hop-by-hop removal, so a
//! `Connection:` header naming an identity header cannot delete the injected one.

use std::net::IpAddr;

use http::header::{
    AUTHORIZATION, CONNECTION, FORWARDED, HOST, HeaderMap, HeaderName, HeaderValue, UPGRADE,
};
use ipnet::IpNet;

use crate::auth::{Principal, X_API_KEY};
use crate::config::HeaderNamesConfig;

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
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
    /// From validated configuration (names were checked to parse).
    pub fn new(names: &HeaderNamesConfig) -> IdentityHeaders {
        let name = |s: &str| {
            HeaderName::from_bytes(s.as_bytes())
                .unwrap_or_else(|_| HeaderName::from_static("x-invalid-header-name"))
        };
        IdentityHeaders {
            user: name(&names.user),
            user_id: name(&names.user_id),
            roles: name(&names.roles),
            method: name(&names.method),
            request_id: name(&names.request_id),
        }
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
        let candidate = name.as_str().as_bytes();
        self.all().iter().any(|identity| {
            let identity = identity.as_str().as_bytes();
            identity.len() == candidate.len()
                && identity.iter().zip(candidate).all(|(a, b)| {
                    let b = if *b == b'_' || *b == b'.' { b'-' } else { *b };
                    *a == b
                })
        })
    }
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

/// Headers that IIS, Symfony, Spring and others read as the "real" request URL. The gateway
/// authorizes the request line's path alone, so a client must not be able to name another path
/// to the upstream. Only a trusted proxy may send them.
const ROUTING_OVERRIDES: [&str; 6] = [
    "x-original-url",
    "x-rewrite-url",
    "x-original-uri",
    "x-forwarded-uri",
    "x-forwarded-path",
    "x-forwarded-prefix",
];

pub fn strip_routing_overrides(headers: &mut HeaderMap, peer: &Peer) {
    if !peer.trusted {
        remove_where(headers, |name| ROUTING_OVERRIDES.contains(&name.as_str()));
    }
}

/// If the request asks to switch protocols (WebSocket), the value of its `Upgrade` header.
pub fn requested_upgrade(headers: &HeaderMap) -> Option<HeaderValue> {
    let wants_upgrade = connection_tokens(headers).any(|t| t.eq_ignore_ascii_case("upgrade"));
    wants_upgrade
        .then(|| headers.get(UPGRADE).cloned())
        .flatten()
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

/// Puts back the two headers a protocol switch needs after hop-by-hop removal.
pub fn restore_upgrade(headers: &mut HeaderMap, protocol: HeaderValue) {
    headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(UPGRADE, protocol);
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

/// Where the request came from, as far as the gateway can vouch.
#[derive(Debug, Clone)]
pub struct Peer {
    pub ip: IpAddr,
    /// The direct peer is a configured trusted proxy, so its `X-Forwarded-*` are believed.
    pub trusted: bool,
    /// `ip` as a header value, made once per connection rather than per request.
    ip_header: HeaderValue,
}

/// An address as a header value.
pub fn ip_header(ip: IpAddr) -> HeaderValue {
    HeaderValue::from_str(&ip.to_canonical().to_string())
        .unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

impl Peer {
    pub fn new(ip: IpAddr, trusted_proxies: &[IpNet]) -> Peer {
        Peer::with_header(ip, ip_header(ip), trusted_proxies)
    }

    pub fn with_header(ip: IpAddr, ip_header: HeaderValue, trusted_proxies: &[IpNet]) -> Peer {
        let ip = ip.to_canonical();
        Peer {
            ip,
            trusted: trusted_proxies.iter().any(|net| net.contains(&ip)),
            ip_header,
        }
    }

    /// The client address: the direct peer, or behind trusted proxies the right-most
    /// `X-Forwarded-For` entry that is not itself a trusted proxy.
    pub fn client_ip(&self, headers: &HeaderMap, trusted_proxies: &[IpNet]) -> IpAddr {
        if !self.trusted {
            return self.ip;
        }
        let forwarded: Vec<IpAddr> = headers
            .get_all(&X_FORWARDED_FOR)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|s| s.trim().parse::<IpAddr>().ok())
            .collect();
        forwarded
            .into_iter()
            .rev()
            .find(|ip| !trusted_proxies.iter().any(|net| net.contains(ip)))
            .unwrap_or(self.ip)
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
