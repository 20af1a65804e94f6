//! Where the sign-in page may send the browser afterwards: only a path on this site.
//!
//! `next` comes from the query string, so an attacker chooses it. Anything that a browser could
//! read as another origin — `//evil`, `/\evil` (browsers treat `\` as `/`), `https://evil`,
//! `javascript:`, or a path with control characters that could split a header — is refused.

/// `next` if it is a same-origin relative path, `None` otherwise.
pub fn safe_next(next: &str) -> Option<&str> {
    let bytes = next.as_bytes();
    let relative = bytes.first() == Some(&b'/') && !matches!(bytes.get(1), Some(b'/' | b'\\'));
    let clean = bytes.iter().all(|b| b.is_ascii_graphic() && *b != b'\\');
    (relative && clean && next.parse::<http::uri::PathAndQuery>().is_ok()).then_some(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_same_origin_paths_are_followed() {
        for good in ["/", "/app", "/app/items?page=2&q=a%20b", "/_portcullis/"] {
            assert_eq!(safe_next(good), Some(good), "{good}");
        }
        for bad in [
            "//evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "https://evil.example/",
            "http:/evil",
            "javascript:alert(1)",
            "evil.example",
            "",
            "/app\r\nSet-Cookie: x=1",
            "/app\tx",
            "/a b",
            "/\u{0}",
            "/é",
            "/app\\..\\x",
        ] {
            assert_eq!(safe_next(bad), None, "{bad:?}");
        }
    }
}
