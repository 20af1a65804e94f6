//! The embedded defaults: what the gateway serves with when no file and no environment
//! variable says otherwise. `config.example.toml` documents these values and a test keeps the
//! two identical.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::*;

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./portcullis-data"),
            server: ServerConfig::default(),
            upstream: UpstreamConfig::default(),
            auth: AuthConfig::default(),
            store: StoreConfig::default(),
            cache: CacheConfig::default(),
            rate_limit: RateLimitConfig::default(),
            headers: HeaderNamesConfig::default(),
            rules: Vec::new(),
            admin: AdminConfig::default(),
            bootstrap: BootstrapConfig::default(),
            log: LogConfig::default(),
            ui: UiConfig::default(),
            source: None,
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            tls: TlsMode::SelfSigned,
            cert: None,
            key: None,
            tls_min_version: TlsVersion::Tls12,
            self_signed_names: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            hsts_max_age_secs: 0,
            redirect_listen: None,
            max_header_bytes: 16 * 1024,
            max_body_bytes: 64 * 1024,
            tls_handshake_timeout_secs: 10,
            header_read_timeout_secs: 10,
            idle_timeout_secs: 60,
            max_connections: 10_000,
            workers: 0,
            shutdown_grace_secs: 30,
            reload_check_secs: 5,
            api_docs: true,
            trusted_proxies: Vec::new(),
        }
    }
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        UpstreamConfig {
            url: "http://127.0.0.1:8080".into(),
            connect_timeout_secs: 5,
            response_timeout_secs: 60,
            pool_idle_timeout_secs: 90,
            pool_max_idle_per_host: 256,
            forward_credentials: false,
            preserve_host: false,
            http2: false,
            method_override: false,
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            api_prefix: "/api/accounts".into(),
            access_ttl_secs: 300,
            refresh_ttl_secs: 86_400,
            rotate_refresh_tokens: true,
            algorithm: JwtAlgorithm::HS256,
            signing_key_file: None,
            issuer: "portcullis".into(),
            audience: "portcullis".into(),
            leeway_secs: 5,
            // OWASP Password Storage Cheat Sheet, argon2id second option.
            argon2_memory_kib: 19_456,
            argon2_iterations: 2,
            argon2_parallelism: 1,
            hash_concurrency: 0,
            min_password_length: 8,
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            backend: StoreBackend::Redb,
            path: None,
            url: None,
        }
    }
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            ttl_secs: 30,
            max_entries: 100_000,
            last_used_flush_secs: 10,
        }
    }
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            enabled: true,
            login_per_ip_per_minute: 30,
            login_per_ip_burst: 10,
            login_per_username_per_minute: 10,
            login_per_username_burst: 5,
            login_per_account_per_minute: 30,
            login_per_account_burst: 20,
        }
    }
}

impl Default for HeaderNamesConfig {
    fn default() -> Self {
        HeaderNamesConfig {
            user: "X-Authenticated-User".into(),
            user_id: "X-Authenticated-User-Id".into(),
            roles: "X-Authenticated-Roles".into(),
            method: "X-Authenticated-Method".into(),
            request_id: "X-Request-Id".into(),
        }
    }
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 9090)),
        }
    }
}

impl Default for BootstrapConfig {
    fn default() -> Self {
        BootstrapConfig {
            admin_username: "admin".into(),
            admin_password: None,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

impl Default for UiConfig {
    fn default() -> Self {
        UiConfig {
            enabled: true,
            path: "/_portcullis".into(),
            cookie_name: "portcullis_session".into(),
        }
    }
}
