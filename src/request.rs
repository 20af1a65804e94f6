//! What is known about one request before any phase of the request path has looked at it:
//! the connection it came on, the peer as far as the gateway can vouch for it, and the facts
//! every phase and the access log read. A leaf: the gateway, the accounts API and the pages
//! all read it, and it reads none of them.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use http::{HeaderMap, HeaderValue, Method, Request};
use ipnet::IpNet;

use crate::auth::Principal;

pub(crate) static X_FORWARDED_FOR: http::HeaderName =
    http::HeaderName::from_static("x-forwarded-for");

/// What the server knows about the connection a request arrived on.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    pub peer: SocketAddr,
    pub tls: bool,
    pub(crate) peer_ip: HeaderValue,
}

impl ConnectionInfo {
    pub fn new(peer: SocketAddr, tls: bool) -> ConnectionInfo {
        ConnectionInfo {
            peer,
            tls,
            peer_ip: ip_header(peer.ip()),
        }
    }
}

/// Per-request facts gathered once and read by every phase and the access log.
pub struct RequestContext {
    pub request_id: HeaderValue,
    pub peer: Peer,
    pub client_ip: std::net::IpAddr,
    pub tls: bool,
    /// The browser reached this site over HTTPS: TLS here, or at a trusted proxy in front.
    /// Decides the session cookie's `Secure` flag and whether HSTS is sent.
    pub https: bool,
    /// A safe method, or an `Origin`/`Referer` naming this gateway: what a request riding on
    /// the session cookie needs (see `auth::session`).
    pub same_origin: bool,
    pub principal: Option<Principal>,
    pub(crate) started: Instant,
}

/// A browser following a link, as opposed to a script calling an API: it should see the
/// sign-in page, not a JSON 401.
pub fn is_navigation<B>(request: &Request<B>) -> bool {
    let accepts_html = request
        .headers()
        .get(http::header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    matches!(*request.method(), Method::GET | Method::HEAD) && accepts_html
}

/// Where the request came from, as far as the gateway can vouch.
#[derive(Debug, Clone)]
pub struct Peer {
    pub ip: IpAddr,
    /// The direct peer is a configured trusted proxy, so its `X-Forwarded-*` are believed.
    pub trusted: bool,
    /// `ip` as a header value, made once per connection rather than per request.
    pub(crate) ip_header: HeaderValue,
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
    /// `X-Forwarded-For` entry that is not itself a trusted proxy. Walking from the right, an
    /// entry that is not an address (`unknown`, garbage) ends the walk at the last trusted hop:
    /// skipping it would hand the choice to whatever the client wrote to its left.
    pub fn client_ip(&self, headers: &HeaderMap, trusted_proxies: &[IpNet]) -> IpAddr {
        if !self.trusted {
            return self.ip;
        }
        let entries: Vec<&str> = headers
            .get_all(&X_FORWARDED_FOR)
            .iter()
            .map(|v| v.to_str().unwrap_or(""))
            .flat_map(|v| v.split(','))
            .collect();
        let mut client = self.ip;
        for entry in entries.into_iter().rev() {
            let Some(ip) = forwarded_address(entry.trim()) else {
                break;
            };
            client = ip;
            if !trusted_proxies.iter().any(|net| net.contains(&ip)) {
                break;
            }
        }
        client
    }
}

/// An `X-Forwarded-For` entry: an address, or an address with a port as some load balancers
/// write it (`192.0.2.1:5555`, `[2001:db8::1]:5555`).
fn forwarded_address(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .or_else(|_| entry.parse::<std::net::SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}
