//! Portcullis: a reverse-proxy authentication gateway.
//!
//! It stands in front of an unmodified upstream HTTP application, terminates TLS, serves its
//! own accounts API, authenticates every request (JWT, API key or browser session), and
//! forwards authenticated requests with the caller's identity injected as `X-Authenticated-*`
//! headers. The upstream never sees an unauthenticated request, nor an identity header the
//! caller wrote.
//!
//! # Layout
//!
//! Leaves first; a module imports only modules above it in this list, never one that imports
//! it back.
//!
//! - [`config`]: the TOML schema, environment overrides, validation.
//! - [`clock`], [`files`], [`response`], [`metrics`], [`logging`], [`access_log`]: small
//!   services everything may use.
//! - [`store`]: the `Store` trait, its redb and PostgreSQL implementations, the row types and
//!   the state changes on them, the change feed the caches follow.
//! - [`auth`]: credentials (JWT through a ring crypto provider, API keys, the session and
//!   device cookies), passwords, login budgets. Knows nothing of HTTP routing.
//! - [`cache`]: the hot path's caches and their invalidation.
//! - [`request`]: what is known of a request before any phase runs: connection, peer, context.
//! - [`error`]: the one mapping from an error to a status and a `{"detail": …}` body.
//! - [`app`]: the shared state every request reads; [`identity`]: who a request is from.
//! - [`sessions`]: signing in and out, the one service the API and the pages call.
//! - [`accounts`]: the accounts API, a route table and one file per resource.
//! - [`ui`]: the pages under `/_portcullis`.
//! - [`gateway`]: **the request path**, top to bottom, with header rewriting, path
//!   normalization, access rules and the upstream client in its submodules.
//! - [`server`]: accept loop, connection workers, TLS handshake, idle and graceful shutdown;
//!   [`tls`]: certificates and their reload; [`reload`]: SIGHUP and watched files.
//! - [`cli`], [`bootstrap`], [`demo`]: the binary's commands, the first admin, the echo app.
//!
//! Where what comes next lands:
//! - **several routes** (`[[routes]]`): a route table beside `gateway::rules`, chosen in the
//!   request path's routing phase; each worker's upstream pools keyed by route in
//!   `gateway::upstream`; certificates by SNI in `tls`.
//! - **forward-auth** (`{ui.path}/verify`): a handler in `ui` that builds the original request
//!   from the trusted proxy's headers and runs the same `identity` and rules phases.
//! - **an identity provider** (OIDC): the relying party under `auth::oidc` (discovery, JWKS,
//!   ID token validation with the ring provider), its pages in `ui`, sign-in through
//!   `sessions`, linked identities in `store`.
//! - **a second factor**: TOTP and WebAuthn under `auth::mfa`, enrolment and step-up pages in
//!   `ui`, the `amr` a session carries issued by `sessions`, `mfa = true` judged by
//!   `gateway::rules`.

#![forbid(unsafe_code)]

pub mod access_log;
pub mod accounts;
pub mod app;
pub mod auth;
pub mod bootstrap;
pub mod cache;
pub mod cli;
pub mod clock;
pub mod config;
pub mod demo;
pub mod error;
pub mod files;
pub mod gateway;
pub mod identity;
pub mod logging;
pub mod metrics;
pub mod openapi;
pub mod reload;
pub mod request;
pub mod response;
pub mod server;
pub mod sessions;
pub mod store;
pub mod tls;
pub mod ui;

use std::future::Future;

use tokio::net::TcpListener;
use tokio::sync::watch;

pub use access_log::AccessLog;
pub use app::{App, StartError};
pub use bootstrap::Bootstrap;
pub use config::Config;

/// The sockets the gateway serves on, bound by the caller (tests bind `127.0.0.1:0`).
pub struct Listeners {
    pub main: TcpListener,
    pub admin: Option<TcpListener>,
    pub redirect: Option<TcpListener>,
}

impl Listeners {
    /// Binds the addresses the configuration names.
    pub async fn bind(config: &Config) -> std::io::Result<Listeners> {
        let main = server::bind(config.server.listen).await?;
        let admin = match config.admin.enabled {
            true => Some(server::bind(config.admin.listen).await?),
            false => None,
        };
        let redirect = match config.server.redirect_listen {
            Some(addr) => Some(server::bind(addr).await?),
            None => None,
        };
        Ok(Listeners {
            main,
            admin,
            redirect,
        })
    }
}

/// A gateway that is set up (store open, keys loaded, first admin ensured, TLS ready) and
/// about to serve.
pub struct Gateway {
    pub app: App,
    pub bootstrap: Bootstrap,
    tls: Option<tls::Tls>,
    workers: server::Workers<gateway::upstream::Pools>,
}

impl Gateway {
    /// Sets up from `config`; request lines go to `access_log`.
    pub async fn start(config: Config, access_log: AccessLog) -> Result<Gateway, StartError> {
        let app = App::new(config, access_log).await?;
        let bootstrap = bootstrap::ensure_admin(&app).await?;
        let tls = tls::server_config(&app.config).map_err(|e| StartError::Tls(e.to_string()))?;
        // Each worker makes its own upstream pools, which count its tunnels.
        let count = server::workers::count(app.config.server.workers);
        let upstream = app.upstream.clone();
        let workers = server::Workers::start(count, |load| upstream.pools(Some(load)))
            .await
            .map_err(StartError::Workers)?;
        Ok(Gateway {
            app,
            bootstrap,
            tls,
            workers,
        })
    }

    /// Serves until `shutdown` completes, then drains in-flight requests and returns.
    pub async fn serve(
        self,
        listeners: Listeners,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) {
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop.send(true);
        });
        let app = self.app;
        // Housekeeping stops after the drain, so its last flush has every request's key use.
        let (drained, drain_over) = watch::channel(false);
        let maintenance = tokio::spawn(app.clone().maintain(drain_over));
        let changes = tokio::spawn(app.clone().follow_changes());
        if let Some(admin) = listeners.admin {
            tokio::spawn(server::serve_admin(app.clone(), admin, stopped.clone()));
        }
        if let Some(redirect) = listeners.redirect {
            let port = listeners.main.local_addr().map_or(443, |a| a.port());
            tokio::spawn(server::serve_redirect(redirect, port, stopped.clone()));
        }
        let certificate = self.tls.as_ref().map(|tls| tls.certificate.clone());
        tokio::spawn(reload::Reloader::new(app.clone(), certificate).run(stopped.clone()));
        let acceptor = self
            .tls
            .map(|tls| tokio_rustls::TlsAcceptor::from(tls.config));
        let scheme = if acceptor.is_some() { "https" } else { "http" };
        if let Ok(addr) = listeners.main.local_addr() {
            let workers = self.workers.count();
            tracing::info!(%addr, scheme, workers, upstream = %app.config.upstream.url, "serving");
        }
        server::serve(app, listeners.main, acceptor, &self.workers, stopped).await;
        let _ = drained.send(true);
        changes.abort();
        let _ = maintenance.await;
        // Last: the store's connections may be driven by the workers' runtimes.
        self.workers.stop().await;
    }
}

/// Sets up, announces a generated first-admin password, and serves until `shutdown`.
pub async fn run(
    config: Config,
    access_log: AccessLog,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let gateway = Gateway::start(config, access_log).await?;
    gateway.bootstrap.announce();
    gateway.serve(listeners, shutdown).await;
    Ok(())
}
