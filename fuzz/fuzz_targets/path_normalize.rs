//! Fuzzes `gateway::path::normalize`, the one path that access rules judge and the upstream
//! receives. Besides never panicking, an accepted path must be canonical: it starts with
//! '/', holds no empty segment ("//") and no "." or ".." segment, and normalizing it again
//! gives it back unchanged. A path that changes on a second pass would let rules and the
//! upstream read the same request differently.

#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::gateway::path::normalize;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(path) = normalize(raw) else {
        return;
    };
    assert!(path.starts_with('/'), "{raw:?} -> {path:?}");
    assert!(!path.contains("//"), "{raw:?} -> {path:?}");
    assert!(
        !path.split('/').any(|s| s == "." || s == ".."),
        "{raw:?} -> {path:?}"
    );
    let again = normalize(&path);
    assert_eq!(
        again.as_deref(),
        Ok(&*path),
        "not idempotent: {raw:?} -> {path:?}"
    );
});
