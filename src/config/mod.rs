//! Configuration: the TOML schema with its defaults, loading from a file and the environment,
//! and validation.
//!
//! Parsing is pure ([`Config::from_toml`]) so it is tested without files or environment;
//! [`Config::load`] adds the file and `PORTCULLIS_<SECTION>_<KEY>` overrides. Every struct
//! denies unknown fields, so a typo is an error that names the key instead of a silent default.
//! [`Config::validate`] collects every semantic problem at once.

mod defaults;
mod env;
mod validate;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

pub use validate::ConfigError;

/// The whole configuration. `Default` is the embedded configuration the gateway serves with
/// when no file is given.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Holds the redb file, the signing key and the self-signed certificate.
    pub data_dir: PathBuf,
    pub server: ServerConfig,
    pub upstream: UpstreamConfig,
    pub auth: AuthConfig,
    pub store: StoreConfig,
    pub cache: CacheConfig,
    pub rate_limit: RateLimitConfig,
    pub headers: HeaderNamesConfig,
    pub rules: Vec<RuleConfig>,
    pub admin: AdminConfig,
    pub bootstrap: BootstrapConfig,
    pub log: LogConfig,
    pub ui: UiConfig,
    /// The file this configuration was read from, watched for rule changes.
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TlsMode {
    /// Generate a certificate into `data_dir` on first start and reuse it.
    SelfSigned,
    /// Load PEM `cert` and `key`.
    Files,
    /// Plain HTTP, for use behind a TLS-terminating ingress.
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum TlsVersion {
    #[serde(rename = "1.2")]
    Tls12,
    #[serde(rename = "1.3")]
    Tls13,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub tls: TlsMode,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub tls_min_version: TlsVersion,
    /// Names written into the generated self-signed certificate.
    pub self_signed_names: Vec<String>,
    /// `Strict-Transport-Security` max-age on every response; 0 sends none.
    pub hsts_max_age_secs: u64,
    /// Optional plain-HTTP listener that answers every request with a redirect to HTTPS.
    pub redirect_listen: Option<SocketAddr>,
    pub max_header_bytes: usize,
    /// Cap on an accounts-API request body; proxied bodies stream and are not capped here.
    pub max_body_bytes: usize,
    pub tls_handshake_timeout_secs: u64,
    /// Time a client has to send a request head; also bounds an idle HTTP/1 keep-alive.
    pub header_read_timeout_secs: u64,
    /// A connection on which nothing was read or written for this long is closed.
    pub idle_timeout_secs: u64,
    pub max_connections: usize,
    /// Threads serving connections, each with its own runtime; 0 means one per core.
    pub workers: usize,
    /// How long SIGTERM waits for in-flight requests before exiting.
    pub shutdown_grace_secs: u64,
    /// Serve the OpenAPI document at `/api/schema/` and Swagger UI at `/api/swagger/`.
    pub api_docs: bool,
    /// How often the certificate, configuration and key files are checked for changes;
    /// 0 reloads on SIGHUP only.
    pub reload_check_secs: u64,
    /// Peers whose `X-Forwarded-*` headers are kept (appended to) rather than replaced.
    pub trusted_proxies: Vec<IpNet>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamConfig {
    pub url: String,
    pub connect_timeout_secs: u64,
    /// Time from sending the request to receiving the response head.
    pub response_timeout_secs: u64,
    pub pool_idle_timeout_secs: u64,
    pub pool_max_idle_per_host: usize,
    /// Forward the API key / session cookie the gateway consumed (off: they are removed).
    pub forward_credentials: bool,
    /// Send the client's `Host` upstream instead of the upstream's own authority.
    pub preserve_host: bool,
    /// Speak HTTP/2 (h2c, prior knowledge) to the upstream instead of HTTP/1.1.
    pub http2: bool,
    /// Pass `X-HTTP-Method-Override` and its relatives to the upstream (off: they are removed).
    /// When passed, the access rules judge the overriding method as well as the request's.
    pub method_override: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum JwtAlgorithm {
    HS256,
    EdDSA,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub api_prefix: String,
    pub access_ttl_secs: u64,
    pub refresh_ttl_secs: u64,
    pub rotate_refresh_tokens: bool,
    pub algorithm: JwtAlgorithm,
    /// Defaults to `<data_dir>/jwt.key`; created 0600 if missing.
    pub signing_key_file: Option<PathBuf>,
    pub issuer: String,
    pub audience: String,
    /// Clock skew tolerated on `exp`.
    pub leeway_secs: u64,
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    /// Concurrent password hashes; 0 means one per core.
    pub hash_concurrency: usize,
    pub min_password_length: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreBackend {
    Redb,
    Postgres,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    pub backend: StoreBackend,
    /// redb file; defaults to `<data_dir>/portcullis.redb`.
    pub path: Option<PathBuf>,
    /// PostgreSQL connection URL when `backend = "postgres"`.
    pub url: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// Outer bound on how stale a cached user or key may be.
    pub ttl_secs: u64,
    pub max_entries: u64,
    /// How often batched API-key `last_used_at` updates are written.
    pub last_used_flush_secs: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    pub enabled: bool,
    pub login_per_ip_per_minute: u32,
    pub login_per_ip_burst: u32,
    /// Attempts on one username from one client address, and from one device that signed in
    /// as that user before.
    pub login_per_username_per_minute: u32,
    pub login_per_username_burst: u32,
    /// Attempts on one username from every client without a device cookie for it, together:
    /// bounds a guess spread over many addresses without locking out the user's own devices.
    pub login_per_account_per_minute: u32,
    pub login_per_account_burst: u32,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HeaderNamesConfig {
    pub user: String,
    pub user_id: String,
    pub roles: String,
    pub method: String,
    pub request_id: String,
}

/// One access rule. The first rule whose prefix and method match decides; a request no rule
/// matches needs any authenticated user.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    pub path: String,
    #[serde(default)]
    pub methods: Vec<String>,
    #[serde(default)]
    pub public: bool,
    #[serde(default)]
    pub roles: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    pub enabled: bool,
    /// Metrics listener; keep it off the public interface.
    pub listen: SocketAddr,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BootstrapConfig {
    pub admin_username: String,
    /// When absent (and `PORTCULLIS_ADMIN_PASSWORD` unset), one is generated and printed once.
    pub admin_password: Option<String>,
}

/// The web pages and the browser session cookie.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct UiConfig {
    /// Serve the pages and accept the session cookie as a credential.
    pub enabled: bool,
    /// Where the pages live; never forwarded.
    pub path: String,
    pub cookie_name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `portcullis=debug`; `RUST_LOG` wins when set.
    pub level: String,
}

impl Config {
    /// Parses TOML text alone: no file, no environment, no validation.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))
    }

    /// Reads `path` (or the embedded defaults when `None`), applies `PORTCULLIS_*` variables
    /// from `vars`, and validates the result.
    pub fn load(
        path: Option<&Path>,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let text = match path {
            Some(path) => std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?,
            None => String::new(),
        };
        let mut table: toml::Table =
            toml::from_str(&text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        env::apply_overrides(&mut table, vars)?;
        let mut config: Config = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Parse(e.to_string()))?;
        config.source = path.map(Path::to_path_buf);
        config.validate()?;
        Ok(config)
    }

    pub fn signing_key_path(&self) -> PathBuf {
        self.auth
            .signing_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("jwt.key"))
    }

    pub fn redb_path(&self) -> PathBuf {
        self.store
            .path
            .clone()
            .unwrap_or_else(|| self.data_dir.join("portcullis.redb"))
    }

    /// The certificate and key the listener serves, whichever TLS mode produced them.
    pub fn tls_paths(&self) -> (PathBuf, PathBuf) {
        match (&self.server.cert, &self.server.key, self.server.tls) {
            (Some(cert), Some(key), TlsMode::Files) => (cert.clone(), key.clone()),
            _ => (self.data_dir.join("tls.crt"), self.data_dir.join("tls.key")),
        }
    }
}

#[cfg(test)]
mod tests;
