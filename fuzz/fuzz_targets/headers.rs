//! Fuzzes the header rewriting on the way upstream (`gateway::headers`) and
//! `auth::find_credential` (given a session cookie name, so `Cookie` parsing is reached).
//! The input is read as lines of `name:value`; pairs that `http` refuses are skipped.
//! Checks: nothing panics; after `strip_forged_identity` no header remains that a backend
//! could fold (case, '_' or '.' for '-') into an identity header; after `remove_hop_by_hop`
//! no hop-by-hop header remains; after `inject_identity` each identity header holds exactly
//! the one value the gateway wrote. A miss here is a client forging its identity upstream.

#![no_main]

use std::sync::{Arc, OnceLock};

use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use portcullis::auth::{AuthMethod, Credential, Principal, UserState, find_credential};
use portcullis::config::HeaderNamesConfig;
use portcullis::gateway::headers::{
    IdentityHeaders, inject_identity, remove_hop_by_hop, strip_forged_identity,
};
use portcullis::store::UserRecord;

/// The default `ui.cookie_name`.
const SESSION_COOKIE: &str = "portcullis_session";

const IDENTITY: [&str; 5] = [
    "x-authenticated-user",
    "x-authenticated-user-id",
    "x-authenticated-roles",
    "x-authenticated-method",
    "x-request-id",
];

const HOP_BY_HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "proxy-connection",
];

fn identity() -> &'static IdentityHeaders {
    static NAMES: OnceLock<IdentityHeaders> = OnceLock::new();
    NAMES.get_or_init(|| IdentityHeaders::new(&HeaderNamesConfig::default()).unwrap())
}

fn principal() -> Principal {
    let user = UserRecord {
        id: 42,
        username: "alice".into(),
        password_hash: String::new(),
        roles: vec!["ops".into()],
        is_admin: true,
        is_active: true,
        tokens_valid_after: 0,
        created_at: 0,
        updated_at: 0,
    };
    Principal {
        user: Arc::new(UserState::from_record(&user)),
        method: AuthMethod::Jwt,
        token: None,
    }
}

fn folded(name: &HeaderName) -> String {
    name.as_str()
        .chars()
        .map(|c| match c {
            '_' | '.' => '-',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

fn parse(data: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for line in data.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
        {
            headers.append(name, value);
        }
    }
    headers
}

fuzz_target!(|data: &[u8]| {
    let mut headers = parse(data);

    match find_credential(&headers, Some(SESSION_COOKIE)) {
        Ok(Some(Credential::Bearer(c) | Credential::ApiKey(c))) => {
            let trimmed = c.trim_matches(|ch: char| ch.is_ascii_whitespace());
            assert_eq!(trimmed, c, "credential not trimmed");
        }
        Ok(Some(Credential::Session(c))) => {
            assert!(!c.contains(';'), "cookie value spans pairs: {c:?}");
        }
        Ok(None) | Err(_) => {}
    }

    strip_forged_identity(&mut headers, identity());
    for name in headers.keys() {
        assert!(
            !IDENTITY.contains(&folded(name).as_str()),
            "forged identity header survived: {name}"
        );
    }

    remove_hop_by_hop(&mut headers);
    for name in HOP_BY_HOP {
        assert!(
            !headers.contains_key(name),
            "hop-by-hop header survived: {name}"
        );
    }

    let principal = principal();
    let request_id = HeaderValue::from_static("fuzz-request-id");
    let method = HeaderValue::from_static(principal.method.as_str());
    inject_identity(&mut headers, identity(), Some(&principal), &request_id);
    let user = &principal.user;
    let expected = [
        (&identity().user, &user.header_user),
        (&identity().user_id, &user.header_user_id),
        (&identity().roles, &user.header_roles),
        (&identity().method, &method),
        (&identity().request_id, &request_id),
    ];
    for (name, value) in expected {
        let values: Vec<_> = headers.get_all(name).iter().collect();
        assert_eq!(values, [value], "{name} not exactly the injected value");
    }
    for name in headers.keys() {
        let folded = folded(name);
        if IDENTITY.contains(&folded.as_str()) {
            assert_eq!(name.as_str(), folded, "folded identity spelling: {name}");
        }
    }
});
