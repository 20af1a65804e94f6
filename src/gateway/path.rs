//! Path normalization: the one path that access rules judge and the upstream receives.
//!
//! Rules and upstream must see the same path, or a path that the gateway reads as public
//! could be read by the upstream as protected (`/public/%2e%2e/admin`). So the gateway
//! normalizes once, authorizes that, and forwards that. Normalizing decodes only unreserved
//! characters (RFC 3986 §6.2.2.2), removes dot segments and empty segments, and refuses what
//! servers disagree about: an encoded `/` or `\`, a literal `\`, NUL and control bytes, a dot
//! `;` in any form, any of these encoded twice (`%252e`, `%252f`: an upstream behind another
//! decoding proxy reads them once more), broken percent-encoding, and encodings that do not
//! decode to UTF-8 (overlong forms such as `%c0%ae`).
//!
//! `;` is refused outright, literal or encoded, as Spring Security's StrictHttpFirewall does:
//! Tomcat, Jetty and Spring cut `;params` off every segment before routing (`/admin;x=1` is
//! `/admin` to them, `/public/..;/admin` is `/admin`), while nginx, Express and Django keep
//! them. No rewriting could make every upstream read the path the rules judged, so a path
//! with matrix parameters is not forwarded at all.

use std::borrow::Cow;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("path does not start with '/'")]
    NotAbsolute,
    #[error("malformed percent-encoding")]
    BadEncoding,
    #[error("encoded slash or backslash, a semicolon, or a control character")]
    Ambiguous,
}

pub fn normalize(raw: &str) -> Result<Cow<'_, str>, PathError> {
    if !raw.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    if raw.contains(';') {
        return Err(PathError::Ambiguous);
    }
    let needs_work = raw.contains(['%', '\\']) || raw.contains("//") || has_dot_segment(raw);
    if !needs_work {
        return Ok(Cow::Borrowed(raw));
    }
    let decoded = decode_unreserved(raw)?;
    let mut segments: Vec<&str> = Vec::new();
    let parts: Vec<&str> = decoded.split('/').skip(1).collect();
    let ends_in_directory = matches!(parts.last(), Some(&"" | &"." | &".."));
    for segment in parts {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            segment => segments.push(segment),
        }
    }
    let mut out = String::with_capacity(decoded.len());
    for segment in &segments {
        out.push('/');
        out.push_str(segment);
    }
    if ends_in_directory || out.is_empty() {
        out.push('/');
    }
    Ok(Cow::Owned(out))
}

/// Whether `rest` (what follows a `%25`) starts with the hex of `.`, `/`, `\`, `;` or NUL.
fn double_encodes_a_refused_character(rest: &[u8]) -> bool {
    let Some(hex) = rest.get(..2) else {
        return false;
    };
    let hex = hex.to_ascii_lowercase();
    matches!(&hex[..], b"2e" | b"2f" | b"5c" | b"3b" | b"00")
}

fn has_dot_segment(path: &str) -> bool {
    path.split('/').any(|s| s == "." || s == "..")
}

/// Decodes `%XX` triplets of unreserved characters, upper-cases the hex of the rest, and
/// refuses encodings that would change the path's structure.
fn decode_unreserved(raw: &str) -> Result<String, PathError> {
    let bytes = raw.as_bytes();
    let mut out = String::with_capacity(raw.len());
    // The path fully decoded, only to check that it is UTF-8 (what the upstream will decode).
    let mut decoded = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).ok_or(PathError::BadEncoding)?;
                let value = std::str::from_utf8(hex)
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or(PathError::BadEncoding)?;
                if value == b'/' || value == b'\\' || value == b';' || value.is_ascii_control() {
                    return Err(PathError::Ambiguous);
                }
                decoded.push(value);
                if value.is_ascii_alphanumeric() || b"-._~".contains(&value) {
                    out.push(value as char);
                } else {
                    out.push('%');
                    out.push_str(&format!("{value:02X}"));
                }
                i += 3;
            }
            b'\\' => return Err(PathError::Ambiguous),
            c if c.is_ascii_control() => return Err(PathError::Ambiguous),
            _ => {
                // Copy a run of ordinary characters at once (hyper has already checked that
                // the path is valid ASCII in the request line).
                let end = bytes[i..]
                    .iter()
                    .position(|b| *b == b'%' || *b == b'\\' || b.is_ascii_control())
                    .map_or(bytes.len(), |n| i + n);
                out.push_str(&raw[i..end]);
                decoded.extend_from_slice(&bytes[i..end]);
                i = end;
            }
        }
    }
    if std::str::from_utf8(&decoded).is_err() {
        return Err(PathError::BadEncoding);
    }
    // `%25` followed by the code of a character refused above: an upstream or a proxy chain
    // that decodes twice would read the refused character. Checked on the result, since
    // decoding an unreserved character can complete one (`%252%652` becomes `%252e2`).
    let out_bytes = out.as_bytes();
    let twice = (0..out_bytes.len()).any(|i| {
        out_bytes[i..].starts_with(b"%25")
            && double_encodes_a_refused_character(&out_bytes[i + 3..])
    });
    if twice {
        return Err(PathError::Ambiguous);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(raw: &str) -> Result<String, PathError> {
        normalize(raw).map(Cow::into_owned)
    }

    #[test]
    fn ordinary_paths_are_untouched_and_borrowed() {
        assert!(matches!(normalize("/app/items/42"), Ok(Cow::Borrowed(_))));
        assert_eq!(n("/").unwrap(), "/");
        assert_eq!(n("/a/b/").unwrap(), "/a/b/");
        assert_eq!(n("/a/..b/c.d").unwrap(), "/a/..b/c.d");
    }

    #[test]
    fn dot_segments_and_empty_segments_are_removed() {
        assert_eq!(n("/public/../admin").unwrap(), "/admin");
        assert_eq!(n("/public/./x").unwrap(), "/public/x");
        assert_eq!(n("//admin").unwrap(), "/admin");
        assert_eq!(n("/a//b///c").unwrap(), "/a/b/c");
        assert_eq!(n("/../../etc/passwd").unwrap(), "/etc/passwd");
        assert_eq!(n("/a/b/..").unwrap(), "/a/");
        assert_eq!(n("/..").unwrap(), "/");
    }

    #[test]
    fn encoded_dots_are_decoded_before_dot_removal() {
        assert_eq!(n("/public/%2e%2e/admin").unwrap(), "/admin");
        assert_eq!(n("/public/%2E./admin").unwrap(), "/admin");
        assert_eq!(n("/%61dmin").unwrap(), "/admin");
    }

    #[test]
    fn reserved_encodings_stay_encoded_and_canonical() {
        assert_eq!(n("/files/a%20b").unwrap(), "/files/a%20b");
        assert_eq!(n("/q/%3f%3d").unwrap(), "/q/%3F%3D");
        assert_eq!(n("/percent/100%25").unwrap(), "/percent/100%25");
        assert_eq!(n("/percent/%2541").unwrap(), "/percent/%2541");
        assert_eq!(n("/caf%C3%A9").unwrap(), "/caf%C3%A9");
    }

    #[test]
    fn ambiguous_or_broken_paths_are_refused() {
        assert_eq!(n("/public%2f..%2fadmin"), Err(PathError::Ambiguous));
        assert_eq!(n("/a%5cb"), Err(PathError::Ambiguous));
        assert_eq!(n("/a\\b"), Err(PathError::Ambiguous));
        assert_eq!(n("/a%00b"), Err(PathError::Ambiguous));
        assert_eq!(n("/a%zz"), Err(PathError::BadEncoding));
        assert_eq!(n("/a%4"), Err(PathError::BadEncoding));
        assert_eq!(n("/a%"), Err(PathError::BadEncoding));
        assert_eq!(n("/public/..;/admin"), Err(PathError::Ambiguous));
        assert_eq!(n("/public/.;x/admin"), Err(PathError::Ambiguous));
        for matrix in [
            "/admin;x=1",
            "/admin;",
            "/a;jsessionid=1/b",
            "/admin%3Bx",
            "/admin%3bx",
        ] {
            assert_eq!(n(matrix), Err(PathError::Ambiguous), "{matrix}");
        }
        assert_eq!(n("/public/%c0%ae%c0%ae/admin"), Err(PathError::BadEncoding));
        assert_eq!(n("/%ff"), Err(PathError::BadEncoding));
        assert_eq!(n("admin"), Err(PathError::NotAbsolute));
        assert_eq!(n("*"), Err(PathError::NotAbsolute));
    }
}
