//! The command line: `serve`, `demo`, `check-config` here, and the offline administration
//! commands in [`offline`].

mod offline;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::app::StartError;
use crate::config::Config;
use crate::gateway::rules::Rules;
use crate::{Listeners, demo, logging};

#[derive(Debug, Parser)]
#[command(
    name = "portcullis",
    version,
    about = "Reverse-proxy authentication gateway"
)]
pub struct Cli {
    /// Configuration file (TOML). Without one, the embedded defaults apply.
    #[arg(short, long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the gateway in front of the configured upstream.
    Serve,
    /// Serve the gateway in front of a built-in echo upstream that shows what it receives.
    Demo,
    /// Validate the configuration and print the compiled access rules.
    CheckConfig,
    /// Manage users in the store.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// Manage API keys in the store.
    Apikey {
        #[command(subcommand)]
        action: ApiKeyAction,
    },
    /// Move users and API keys between stores (redb → PostgreSQL).
    Store {
        #[command(subcommand)]
        action: StoreAction,
    },
    /// Manage the JWT signing keys.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum StoreAction {
    /// Write every user (with password hash) and API key (with secret hash) as JSON. Treat the
    /// output as a secret.
    Export {
        /// Write to this file (created 0600) instead of standard output.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Load an export into the configured store, keeping ids; rows with the same id are
    /// replaced.
    Import { file: PathBuf },
}

#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// Add a signing key of the configured algorithm. Older keys keep verifying until every
    /// token they signed has expired, then the next rotation drops them. Running gateways
    /// pick the new key up on SIGHUP or within `server.reload_check_secs`.
    Rotate,
}

#[derive(Debug, Subcommand)]
pub enum ApiKeyAction {
    /// Create a key for a user, revoking their previous one, and print it (shown only once).
    Create {
        #[arg(long, value_name = "USERNAME")]
        user: String,
    },
    /// Revoke a key by its id (the part after `pcs_`).
    Revoke { id: String },
    /// List keys, newest first. Secrets are never stored, so never listed.
    List,
}

#[derive(Debug, Subcommand)]
pub enum UserAction {
    /// Create a user. Prints a generated password unless --password-stdin is given.
    Add {
        username: String,
        #[arg(long)]
        admin: bool,
        /// A role to grant; repeat for several.
        #[arg(long = "role", value_name = "ROLE")]
        roles: Vec<String>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a user's password; every token and API key they hold stops working.
    Passwd {
        username: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users.
    List,
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Start(#[from] StartError),
    #[error("{0}")]
    Usage(String),
}

impl From<crate::config::ConfigError> for CliError {
    fn from(e: crate::config::ConfigError) -> Self {
        CliError::Start(e.into())
    }
}

impl From<crate::store::StoreError> for CliError {
    fn from(e: crate::store::StoreError) -> Self {
        CliError::Start(e.into())
    }
}

pub fn main(cli: Cli) -> Result<(), CliError> {
    let config = Config::load(cli.config.as_deref(), std::env::vars())?;
    // Connections are served on the connection workers (`server::workers`); this runtime runs
    // the accept loop, the admin listener, housekeeping and the offline commands.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::Usage(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve => serve(config).await,
            Command::Demo => demo(config).await,
            Command::CheckConfig => check_config(&config),
            Command::User { action } => offline::user(&config, action).await,
            Command::Apikey { action } => offline::apikey(&config, action).await,
            Command::Keys {
                action: KeysAction::Rotate,
            } => offline::rotate_keys(&config),
            Command::Store { action } => offline::store(&config, action).await,
        }
    })
}

async fn serve(config: Config) -> Result<(), CliError> {
    let (access_log, _log) = logging::init(&config.log);
    let listeners = Listeners::bind(&config)
        .await
        .map_err(|e| CliError::Start(StartError::Io(e.to_string())))?;
    crate::run(config, access_log, listeners, shutdown_signal()).await?;
    Ok(())
}

async fn demo(mut config: Config) -> Result<(), CliError> {
    let echo = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(|e| CliError::Usage(format!("cannot start the echo upstream: {e}")))?;
    let echo_addr = echo
        .local_addr()
        .map_err(|e| CliError::Usage(e.to_string()))?;
    tokio::spawn(demo::serve_echo(echo));
    config.upstream.url = format!("http://{echo_addr}");
    serve(config).await
}

fn check_config(config: &Config) -> Result<(), CliError> {
    println!("configuration is valid");
    println!(
        "  listen     {} (tls: {:?})",
        config.server.listen, config.server.tls
    );
    println!("  upstream   {}", config.upstream.url);
    println!(
        "  store      {:?} ({})",
        config.store.backend,
        config.redb_path().display()
    );
    println!("  api prefix {}", config.auth.api_prefix);
    println!("\naccess rules (first match wins):");
    let rules = Rules::new(&config.rules).map_err(CliError::Usage)?;
    for line in rules.describe() {
        println!("  {line}");
    }
    Ok(())
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
    tracing::info!("shutdown requested; draining");
}
