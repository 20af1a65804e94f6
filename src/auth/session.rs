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

use http::header::{COOKIE, HOST, ORIGIN, REFERER};
use http::{HeaderMap, HeaderValue, Method, Uri};

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim_matches('"'))
}

/// Removes cookie `name` from the request, keeping every other cookie for the upstream.
pub fn remove_cookie(headers: &mut HeaderMap, name: &str) {
    if cookie(headers, name).is_none() {
        return;
    }
    let kept: Vec<String> = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|pair| !pair.is_empty() && pair.split_once('=').is_none_or(|(key, _)| key != name))
        .map(str::to_string)
        .collect();
    headers.remove(COOKIE);
    if !kept.is_empty()
        && let Ok(value) = HeaderValue::from_str(&kept.join("; "))
    {
        headers.insert(COOKIE, value);
    }
}

/// `Set-Cookie` for a new or renewed session.
pub fn set_cookie(name: &str, token: &str, max_age_secs: u64, secure: bool) -> Option<HeaderValue> {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={token}; Path=/; Max-Age={max_age_secs}; HttpOnly; SameSite=Lax{secure}"
    ))
    .ok()
}

/// `Set-Cookie` that deletes the session cookie.
pub fn clear_cookie(name: &str, secure: bool) -> Option<HeaderValue> {
    set_cookie(name, "", 0, secure)
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
    fn finds_and_removes_only_the_session_cookie() {
        let mut h = headers(&[
            ("cookie", "theme=dark; pc_session=abc.def; lang=en"),
            ("cookie", "x=1"),
        ]);
        assert_eq!(cookie(&h, "pc_session"), Some("abc.def"));
        assert_eq!(cookie(&h, "pc"), None);
        remove_cookie(&mut h, "pc_session");
        assert_eq!(
            h.get_all(COOKIE).iter().collect::<Vec<_>>(),
            ["theme=dark; lang=en; x=1"]
        );
        let mut only = headers(&[("cookie", "pc_session=abc")]);
        remove_cookie(&mut only, "pc_session");
        assert!(!only.contains_key(COOKIE));
    }

    #[test]
    fn cookie_flags() {
        let v = set_cookie("s", "t", 60, true).unwrap();
        assert_eq!(v, "s=t; Path=/; Max-Age=60; HttpOnly; SameSite=Lax; Secure");
        assert!(
            !set_cookie("s", "t", 60, false)
                .unwrap()
                .to_str()
                .unwrap()
                .contains("Secure")
        );
        assert!(
            clear_cookie("s", true)
                .unwrap()
                .to_str()
                .unwrap()
                .contains("Max-Age=0")
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
