//! Semantic checks that serde cannot express, reported all at once so an operator fixes a
//! configuration in one pass rather than one error per restart.

use std::path::PathBuf;

use http::{HeaderName, Uri};

use super::{Config, StoreBackend, TlsMode};
use crate::auth::names;

/// More connection workers than this is a typo, not a machine.
const MAX_WORKERS: usize = 1024;

/// The methods a rule may name: HTTP's, WebDAV's, and the two caches and drafts use. A name
/// outside them (a typo, `get` in lower case) would match no request and silently hand it to
/// a weaker rule, so it is a configuration error instead.
pub const RULE_METHODS: &[&str] = &[
    "GET",
    "HEAD",
    "POST",
    "PUT",
    "DELETE",
    "PATCH",
    "OPTIONS",
    "TRACE",
    "CONNECT",
    "PROPFIND",
    "PROPPATCH",
    "MKCOL",
    "COPY",
    "MOVE",
    "LOCK",
    "UNLOCK",
    "REPORT",
    "SEARCH",
    "MKCALENDAR",
    "ACL",
    "PURGE",
    "QUERY",
];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("invalid configuration: {0}")]
    Parse(String),
    #[error("invalid environment override:\n  {}", .0.join("\n  "))]
    Env(Vec<String>),
    #[error("invalid configuration:\n  {}", .0.join("\n  "))]
    Invalid(Vec<String>),
}

impl Config {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Problems::default();
        let s = &self.server;
        let files = s.tls == TlsMode::Files;
        problems.check(!files || s.cert.is_some(), || {
            "server.cert: required when tls = \"files\"".into()
        });
        problems.check(!files || s.key.is_some(), || {
            "server.key: required when tls = \"files\"".into()
        });
        problems.check(files || (s.cert.is_none() && s.key.is_none()), || {
            "server.cert/server.key: only used when tls = \"files\"".into()
        });
        problems.check(
            s.max_header_bytes >= 8192 && s.max_header_bytes <= 1 << 20,
            || "server.max_header_bytes: must be between 8192 and 1048576".into(),
        );
        problems.check(s.max_body_bytes > 0, || {
            "server.max_body_bytes: must be positive".into()
        });
        for (key, value) in [
            (
                "server.tls_handshake_timeout_secs",
                s.tls_handshake_timeout_secs,
            ),
            (
                "server.header_read_timeout_secs",
                s.header_read_timeout_secs,
            ),
            ("server.idle_timeout_secs", s.idle_timeout_secs),
            (
                "upstream.connect_timeout_secs",
                self.upstream.connect_timeout_secs,
            ),
            (
                "upstream.response_timeout_secs",
                self.upstream.response_timeout_secs,
            ),
            ("auth.access_ttl_secs", self.auth.access_ttl_secs),
            ("cache.ttl_secs", self.cache.ttl_secs),
            (
                "cache.last_used_flush_secs",
                self.cache.last_used_flush_secs,
            ),
        ] {
            problems.check(value > 0, || format!("{key}: must be positive"));
        }
        problems.check(s.workers <= MAX_WORKERS, || {
            format!("server.workers: at most {MAX_WORKERS} (0 means one per core)")
        });
        problems.check(s.max_connections > 0, || {
            "server.max_connections: must be positive".into()
        });
        problems.check(s.redirect_listen.is_none() || s.tls != TlsMode::Off, || {
            "server.redirect_listen: redirecting to HTTPS needs tls enabled".into()
        });
        problems.check(s.redirect_listen != Some(s.listen), || {
            "server.redirect_listen: must differ from server.listen".into()
        });

        if let Err(problem) = upstream_url_problem(&self.upstream.url) {
            problems.push(format!("upstream.url: {problem}"));
        }

        let a = &self.auth;
        problems.check(is_prefix(&a.api_prefix), || {
            "auth.api_prefix: must start with '/', not end with '/', and not be '/'".into()
        });
        problems.check(is_prefix(&self.ui.path), || {
            "ui.path: must start with '/', not end with '/', and not be '/'".into()
        });
        problems.check(
            !self.ui.enabled
                || !(self.ui.path.starts_with(&a.api_prefix)
                    || a.api_prefix.starts_with(&self.ui.path)),
            || "ui.path: must not overlap auth.api_prefix".into(),
        );
        let cookie_ok = !self.ui.cookie_name.is_empty()
            && self
                .ui
                .cookie_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        problems.check(cookie_ok, || {
            "ui.cookie_name: letters, digits, - _ . only".into()
        });
        problems.check(a.refresh_ttl_secs > a.access_ttl_secs, || {
            "auth.refresh_ttl_secs: must be longer than auth.access_ttl_secs".into()
        });
        problems.check(!a.issuer.is_empty(), || {
            "auth.issuer: must not be empty".into()
        });
        problems.check(!a.audience.is_empty(), || {
            "auth.audience: must not be empty".into()
        });
        problems.check(a.min_password_length >= 8, || {
            "auth.min_password_length: at least 8".into()
        });
        if let Err(e) = argon2::Params::new(
            a.argon2_memory_kib,
            a.argon2_iterations,
            a.argon2_parallelism,
            None,
        ) {
            problems.push(format!("auth.argon2_*: {e}"));
        }

        match self.store.backend {
            StoreBackend::Redb => problems.check(self.store.url.is_none(), || {
                "store.url: only used when backend = \"postgres\"".into()
            }),
            StoreBackend::Postgres => problems.check(self.store.url.is_some(), || {
                "store.url: required when backend = \"postgres\"".into()
            }),
        }

        let r = &self.rate_limit;
        problems.check(
            !r.enabled
                || [
                    r.login_per_ip_per_minute,
                    r.login_per_ip_burst,
                    r.login_per_username_per_minute,
                    r.login_per_username_burst,
                    r.login_per_account_per_minute,
                    r.login_per_account_burst,
                ]
                .iter()
                .all(|v| *v > 0),
            || "rate_limit.*: limits must be positive (set enabled = false to disable)".into(),
        );

        let h = &self.headers;
        let header_names = [
            ("headers.user", &h.user),
            ("headers.user_id", &h.user_id),
            ("headers.roles", &h.roles),
            ("headers.method", &h.method),
            ("headers.request_id", &h.request_id),
        ];
        for (i, (key, name)) in header_names.iter().enumerate() {
            if HeaderName::from_bytes(name.as_bytes()).is_err() {
                problems.push(format!("{key}: {name:?} is not a valid header name"));
            }
            if header_names[..i]
                .iter()
                .any(|(_, other)| other.eq_ignore_ascii_case(name))
            {
                problems.push(format!("{key}: {name:?} is used twice"));
            }
        }

        for (i, rule) in self.rules.iter().enumerate() {
            let at = format!("rules[{i}]");
            if !rule.path.starts_with('/') || rule.path.contains(['?', '#']) {
                problems.push(format!("{at}.path: must start with '/' and hold no query"));
            }
            for method in &rule.methods {
                if !RULE_METHODS.contains(&method.as_str()) {
                    problems.push(format!(
                        "{at}.methods: {method:?} is not a method (one of {}; methods are upper case)",
                        RULE_METHODS.join(", ")
                    ));
                }
            }
            if rule.public && !rule.roles.is_empty() {
                problems.push(format!("{at}: public and roles exclude each other"));
            }
            for role in &rule.roles {
                if let Err(why) = names::check_role(role) {
                    problems.push(format!("{at}.roles: {role:?}: {why}"));
                }
            }
        }

        problems.check(!self.admin.enabled || self.admin.listen != s.listen, || {
            "admin.listen: must differ from server.listen".into()
        });
        if let Err(why) = names::check_username(&self.bootstrap.admin_username) {
            problems.push(format!("bootstrap.admin_username: {why}"));
        }
        if let Some(password) = &self.bootstrap.admin_password {
            problems.check(password.chars().count() >= a.min_password_length, || {
                format!(
                    "bootstrap.admin_password: at least {} characters",
                    a.min_password_length
                )
            });
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            problems.push(format!(
                "log.level: {:?} is not a tracing filter",
                self.log.level
            ));
        }

        problems.into_result()
    }
}

#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn check(&mut self, ok: bool, problem: impl FnOnce() -> String) {
        if !ok {
            self.0.push(problem());
        }
    }

    fn push(&mut self, problem: String) {
        self.0.push(problem);
    }

    fn into_result(self) -> Result<(), ConfigError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(self.0))
        }
    }
}

/// A path prefix: absolute, not `/`, no trailing slash, nothing that needs decoding.
fn is_prefix(prefix: &str) -> bool {
    prefix.starts_with('/')
        && prefix.len() > 1
        && !prefix.ends_with('/')
        && !prefix.contains(['?', '#', '%'])
}

fn upstream_url_problem(url: &str) -> Result<(), &'static str> {
    let uri: Uri = url.parse().map_err(|_| "not a URL")?;
    if uri.scheme_str() != Some("http") {
        return Err("must be an http:// URL (the upstream is reached over plain HTTP)");
    }
    if uri.authority().is_none() {
        return Err("must name a host and port");
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err("must not carry a path or query: requests keep their own path");
    }
    Ok(())
}
