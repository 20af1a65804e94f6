//! The browser session: a cookie carrying a signed session token, for people who open the
//! protected application in a browser, where nobody types a bearer header.
//!
//! The cookie is `HttpOnly` (scripts cannot read it), `Secure` when the gateway speaks TLS,
//! `SameSite=Lax` (not sent on cross-site subrequests or cross-site POSTs) and lives as long as
//! a refresh token, renewed while in use. Its token names a login session (a refresh-token
//! family), so logging out or revoking that session ends it at once. Because a cookie rides
//! along on requests the user did not mean to make, an unsafe request (POST, PUT, PATCH,
//! DELETE…) authenticated by it must also come from this site's own pages: its `Origin`, or
//! failing that its `Referer`, must name this gateway.

use http::header::{COOKIE, HOST, ORIGIN, REFERER, SET_COOKIE};
use http::{HeaderMap, HeaderValue, Method, Uri};

/// The device cookie's base name: a browser or client that signed in as a user keeps it, and
/// with it a login budget of its own (see `rate_limit`).
pub const DEVICE_COOKIE: &str = "portcullis_device";

/// The cookies the gateway sets, by name. Over HTTPS their names carry the `__Host-` prefix:
/// the browser then accepts them only from this exact host, `Secure`, with `Path=/` and no
/// `Domain`, so a sibling subdomain cannot plant a session cookie the browser would send
/// first. Over plain HTTP (tests, a TLS-terminating proxy that does not say so) the prefix
/// would be refused by the browser, so the base name is used.
#[derive(Debug, Clone)]
pub struct GatewayCookies {
    session: String,
    host_session: String,
    device: String,
    host_device: String,
}

impl GatewayCookies {
    pub fn new(session_base: &str) -> GatewayCookies {
        GatewayCookies {
            session: session_base.to_string(),
            host_session: format!("__Host-{session_base}"),
            device: DEVICE_COOKIE.to_string(),
            host_device: format!("__Host-{DEVICE_COOKIE}"),
        }
    }

    /// The session cookie's name on a request the browser sent over HTTPS or not.
    pub fn session(&self, https: bool) -> &str {
        if https {
            &self.host_session
        } else {
            &self.session
        }
    }

    pub fn device(&self, https: bool) -> &str {
        if https {
            &self.host_device
        } else {
            &self.device
        }
    }

    /// Whether a cookie name is one of the gateway's in any form a browser or a framework
    /// could confuse with it: either prefix (browsers match prefixes without regard to case),
    /// any case.
    pub fn is_ours(&self, name: &[u8]) -> bool {
        let base = strip_prefix_ignore_case(name, b"__host-")
            .or_else(|| strip_prefix_ignore_case(name, b"__secure-"))
            .unwrap_or(name);
        base.eq_ignore_ascii_case(self.session.as_bytes())
            || base.eq_ignore_ascii_case(self.device.as_bytes())
    }

    /// `Set-Cookie` for a new or renewed session.
    pub fn set_session(&self, token: &str, max_age_secs: u64, https: bool) -> Option<HeaderValue> {
        set_cookie(self.session(https), token, max_age_secs, https, "Lax")
    }

    /// `Set-Cookie` that deletes the session cookie.
    pub fn clear_session(&self, https: bool) -> Option<HeaderValue> {
        set_cookie(self.session(https), "", 0, https, "Lax")
    }

    /// `Set-Cookie` for the device cookie: never sent cross-site, never read by scripts.
    pub fn set_device(&self, token: &str, max_age_secs: u64, https: bool) -> Option<HeaderValue> {
        set_cookie(self.device(https), token, max_age_secs, https, "Strict")
    }

    /// Removes every cookie of the gateway's from the request, keeping the others for the
    /// upstream: the ones it consumed, and any a client or a sibling site wrote under its
    /// names.
    pub fn remove_from_request(&self, headers: &mut HeaderMap) {
        let ours = |pair: &[u8]| self.is_ours(cookie_name(pair));
        let present = headers
            .get_all(COOKIE)
            .iter()
            .any(|v| cookie_pairs(v.as_bytes()).any(ours));
        if !present {
            return;
        }
        let mut kept: Vec<u8> = Vec::new();
        for value in headers.get_all(COOKIE) {
            for pair in cookie_pairs(value.as_bytes()).filter(|p| !ours(p)) {
                if !kept.is_empty() {
                    kept.extend_from_slice(b"; ");
                }
                kept.extend_from_slice(pair);
            }
        }
        headers.remove(COOKIE);
        if !kept.is_empty()
            && let Ok(value) = HeaderValue::from_bytes(&kept)
        {
            headers.insert(COOKIE, value);
        }
    }

    /// Drops every `Set-Cookie` of the upstream's that names one of the gateway's cookies: the
    /// upstream must not be able to set, replace or clear the gateway's session.
    pub fn remove_from_response(&self, headers: &mut HeaderMap) {
        let ours = |v: &HeaderValue| {
            let pair = v.as_bytes().split(|b| *b == b';').next().unwrap_or(b"");
            self.is_ours(cookie_name(pair))
        };
        if !headers.get_all(SET_COOKIE).iter().any(ours) {
            return;
        }
        let kept: Vec<HeaderValue> = headers
            .get_all(SET_COOKIE)
            .iter()
            .filter(|v| !ours(v))
            .cloned()
            .collect();
        headers.remove(SET_COOKIE);
        for value in kept {
            headers.append(SET_COOKIE, value);
        }
    }
}

fn strip_prefix_ignore_case<'a>(name: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    let (head, rest) = name.split_at_checked(prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then_some(rest)
}

/// The `name=value` pairs of a `Cookie` header, trimmed. Cookie headers are bytes: another
/// cookie's value may hold anything (`pref=café` in raw UTF-8), and must not stop the
/// gateway from finding its own or removing it.
fn cookie_pairs(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|b| *b == b';')
        .map(<[u8]>::trim_ascii)
        .filter(|pair| !pair.is_empty())
}

fn cookie_name(pair: &[u8]) -> &[u8] {
    let name = pair.split(|b| *b == b'=').next().unwrap_or(b"");
    name.trim_ascii()
}

/// The value of cookie `name` (exact, as browsers compare) in the request's `Cookie` headers:
/// the first one, which is the most specific a browser holds.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    cookie_values(headers, name).next()
}

/// Every value of cookie `name` in the request. A browser holds one `__Host-` cookie per
/// name; two mean someone wrote one (over plain HTTP, a sibling subdomain can).
pub fn cookie_values<'a>(headers: &'a HeaderMap, name: &str) -> impl Iterator<Item = &'a str> {
    let name = name.as_bytes().to_vec();
    headers
        .get_all(COOKIE)
        .iter()
        .flat_map(|v| cookie_pairs(v.as_bytes()))
        .filter(move |pair| cookie_name(pair) == name.as_slice())
        .filter_map(|pair| {
            let value = pair.splitn(2, |b| *b == b'=').nth(1)?.trim_ascii();
            let value = value
                .strip_prefix(b"\"")
                .and_then(|v| v.strip_suffix(b"\""))
                .unwrap_or(value);
            std::str::from_utf8(value).ok()
        })
}

fn set_cookie(
    name: &str,
    token: &str,
    max_age_secs: u64,
    secure: bool,
    same_site: &str,
) -> Option<HeaderValue> {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={token}; Path=/; Max-Age={max_age_secs}; HttpOnly; SameSite={same_site}{secure}"
    ))
    .ok()
}

/// Whether a request authenticated by the session cookie may do what it asks: safe methods
/// always; unsafe ones only when `Origin` (or, without one, `Referer`) names `origin`, the
/// scheme and host the browser addressed (see [`SiteOrigin`]).
pub fn same_origin_or_safe(method: &Method, headers: &HeaderMap, origin: &SiteOrigin<'_>) -> bool {
    if matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    ) {
        return true;
    }
    let Some(host) = origin.host else {
        return false;
    };
    let scheme = if origin.https { "https" } else { "http" };
    let claimed = match headers.get(ORIGIN) {
        Some(origin) => origin.to_str().ok().and_then(|o| o.parse::<Uri>().ok()),
        None => headers
            .get(REFERER)
            .and_then(|r| r.to_str().ok())
            .and_then(|r| r.parse::<Uri>().ok()),
    };
    claimed.is_some_and(|uri| {
        uri.scheme_str() == Some(scheme)
            && uri
                .authority()
                .is_some_and(|a| a.as_str().eq_ignore_ascii_case(host))
    })
}

/// This site as the browser sees it: behind a trusted proxy that terminated TLS, the scheme
/// and host the proxy reports (`X-Forwarded-Proto`, `X-Forwarded-Host`); otherwise this
/// connection's own.
pub struct SiteOrigin<'a> {
    pub https: bool,
    pub host: Option<&'a str>,
}

impl<'a> SiteOrigin<'a> {
    pub fn of(
        headers: &'a HeaderMap,
        uri: &'a Uri,
        tls: bool,
        trusted_peer: bool,
    ) -> SiteOrigin<'a> {
        let forwarded = |name: &str| {
            trusted_peer
                .then(|| headers.get(name).and_then(|v| v.to_str().ok()))
                .flatten()
                .map(|v| v.split(',').next().unwrap_or("").trim())
        };
        let https =
            tls || forwarded("x-forwarded-proto").is_some_and(|p| p.eq_ignore_ascii_case("https"));
        let host = forwarded("x-forwarded-host")
            .or_else(|| headers.get(HOST).and_then(|h| h.to_str().ok()))
            .or_else(|| uri.authority().map(|a| a.as_str()));
        SiteOrigin { https, host }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        map
    }

    #[test]
    fn finds_and_removes_only_the_gateways_cookies() {
        let cookies = GatewayCookies::new("pc_session");
        let mut h = headers(&[
            ("cookie", "theme=dark; __Host-pc_session=abc.def; lang=en"),
            (
                "cookie",
                "x=1; PC_SESSION=planted; __Secure-portcullis_device=d",
            ),
        ]);
        assert_eq!(cookie(&h, "__Host-pc_session"), Some("abc.def"));
        assert_eq!(cookie(&h, "pc_session"), None, "names compare exactly");
        cookies.remove_from_request(&mut h);
        assert_eq!(
            h.get_all(COOKIE).iter().collect::<Vec<_>>(),
            ["theme=dark; lang=en; x=1"]
        );
        let mut only = headers(&[("cookie", "pc_session=abc")]);
        cookies.remove_from_request(&mut only);
        assert!(!only.contains_key(COOKIE));
    }

    #[test]
    fn cookies_are_bytes() {
        let cookies = GatewayCookies::new("s");
        let mut h = HeaderMap::new();
        let raw = "pref=caf\u{e9}; __Host-s=tok; z=\u{2603}";
        h.insert(COOKIE, HeaderValue::from_bytes(raw.as_bytes()).unwrap());
        assert_eq!(cookie(&h, "__Host-s"), Some("tok"));
        cookies.remove_from_request(&mut h);
        assert_eq!(
            h[COOKIE].as_bytes(),
            "pref=caf\u{e9}; z=\u{2603}".as_bytes()
        );
    }

    #[test]
    fn upstream_set_cookies_for_the_gateways_names_are_dropped() {
        let cookies = GatewayCookies::new("s");
        let mut h = headers(&[
            ("set-cookie", "__Host-s=evil; Path=/"),
            ("set-cookie", "other=1; Path=/"),
            ("set-cookie", "S=evil"),
            ("set-cookie", "__host-portcullis_device=evil"),
        ]);
        cookies.remove_from_response(&mut h);
        assert_eq!(
            h.get_all(SET_COOKIE).iter().collect::<Vec<_>>(),
            ["other=1; Path=/"]
        );
    }

    #[test]
    fn cookie_flags() {
        let cookies = GatewayCookies::new("s");
        let v = cookies.set_session("t", 60, true).unwrap();
        assert_eq!(
            v,
            "__Host-s=t; Path=/; Max-Age=60; HttpOnly; SameSite=Lax; Secure"
        );
        let plain = cookies.set_session("t", 60, false).unwrap();
        assert_eq!(plain, "s=t; Path=/; Max-Age=60; HttpOnly; SameSite=Lax");
        assert!(
            cookies
                .clear_session(true)
                .unwrap()
                .to_str()
                .unwrap()
                .contains("Max-Age=0")
        );
        let device = cookies.set_device("d", 60, true).unwrap();
        assert_eq!(
            device,
            "__Host-portcullis_device=d; Path=/; Max-Age=60; HttpOnly; SameSite=Strict; Secure"
        );
    }

    #[test]
    fn unsafe_methods_need_this_origin() {
        let uri: Uri = "/x".parse().unwrap();
        let check = |method: Method, pairs: &[(&str, &str)]| {
            let headers = headers(pairs);
            same_origin_or_safe(
                &method,
                &headers,
                &SiteOrigin::of(&headers, &uri, true, false),
            )
        };
        assert!(check(
            Method::GET,
            &[("host", "gw.example"), ("origin", "https://evil.example")]
        ));
        assert!(check(
            Method::POST,
            &[("host", "gw.example"), ("origin", "https://gw.example")]
        ));
        assert!(check(
            Method::POST,
            &[
                ("host", "gw.example:8443"),
                ("referer", "https://gw.example:8443/_portcullis/")
            ]
        ));
        assert!(!check(
            Method::POST,
            &[("host", "gw.example"), ("origin", "https://evil.example")]
        ));
        assert!(!check(
            Method::POST,
            &[("host", "gw.example"), ("origin", "http://gw.example")]
        ));
        assert!(!check(
            Method::POST,
            &[("host", "gw.example"), ("origin", "null")]
        ));
        assert!(!check(Method::DELETE, &[("host", "gw.example")]));
        assert!(!check(
            Method::POST,
            &[
                ("host", "gw.example"),
                ("origin", "https://gw.example.evil.example")
            ]
        ));
    }

    #[test]
    fn behind_a_trusted_tls_proxy_the_forwarded_origin_counts() {
        let uri: Uri = "/x".parse().unwrap();
        let h = headers(&[
            ("host", "portcullis:8080"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "app.example.com"),
            ("origin", "https://app.example.com"),
        ]);
        assert!(same_origin_or_safe(
            &Method::POST,
            &h,
            &SiteOrigin::of(&h, &uri, false, true)
        ));
        assert!(SiteOrigin::of(&h, &uri, false, true).https);
        // The same headers from an untrusted peer are not believed.
        assert!(!same_origin_or_safe(
            &Method::POST,
            &h,
            &SiteOrigin::of(&h, &uri, false, false)
        ));
        assert!(!SiteOrigin::of(&h, &uri, false, false).https);
    }
}
