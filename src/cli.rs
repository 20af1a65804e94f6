//! The command line: `serve`, `demo`, `check-config`, and the offline administration
//! commands that work on the store directly (while the gateway is stopped; redb allows one
//! writer process).

use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::app::{StartError, open_store};
use crate::auth::jwt::KeyFile;
use crate::auth::password::Passwords;
use crate::auth::{apikey, names};
use crate::config::Config;
use crate::gateway::rules::Rules;
use crate::store::{NewUser, Store, UserPatch};
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
    /// Manage the JWT signing keys.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Usage(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve => serve(config).await,
            Command::Demo => demo(config).await,
            Command::CheckConfig => check_config(&config),
            Command::User { action } => user(&config, action).await,
            Command::Apikey { action } => apikey(&config, action).await,
            Command::Keys {
                action: KeysAction::Rotate,
            } => rotate_keys(&config),
        }
    })
}

async fn serve(config: Config) -> Result<(), CliError> {
    logging::init(&config.log);
    let listeners = Listeners::bind(&config)
        .await
        .map_err(|e| CliError::Start(StartError::Io(e.to_string())))?;
    crate::run(config, listeners, shutdown_signal()).await?;
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
    for line in Rules::new(&config.rules).describe() {
        println!("  {line}");
    }
    Ok(())
}

async fn user(config: &Config, action: UserAction) -> Result<(), CliError> {
    let store: Arc<dyn Store> = open_store(config).await?;
    let passwords = || Passwords::new(&config.auth).map_err(|e| CliError::Start(e.into()));
    match action {
        UserAction::Add {
            username,
            admin,
            roles,
            password_stdin,
        } => {
            names::check_username(&username)
                .map_err(|why| CliError::Usage(format!("username: {why}")))?;
            for role in &roles {
                names::check_role(role)
                    .map_err(|why| CliError::Usage(format!("role {role:?}: {why}")))?;
            }
            let (password, generated) =
                password_input(password_stdin, config.auth.min_password_length)?;
            let password_hash = passwords()?
                .hash(&password)
                .await
                .map_err(|e| CliError::Start(e.into()))?;
            let user = store
                .create_user(NewUser {
                    username,
                    password_hash,
                    roles,
                    is_admin: admin,
                })
                .await?;
            println!("created user {} (id {})", user.username, user.id);
            if generated {
                println!("password: {password}");
            }
        }
        UserAction::Passwd {
            username,
            password_stdin,
        } => {
            let user = store
                .user_by_name(&username)
                .await?
                .ok_or_else(|| CliError::Usage(format!("no user named {username:?}")))?;
            let (password, generated) =
                password_input(password_stdin, config.auth.min_password_length)?;
            let password_hash = passwords()?
                .hash(&password)
                .await
                .map_err(|e| CliError::Start(e.into()))?;
            let now = crate::clock::now_secs();
            let patch = UserPatch {
                password_hash: Some(password_hash),
                tokens_valid_after: Some(now + 1),
                ..UserPatch::default()
            };
            store.update_user(user.id, patch).await?;
            store.revoke_user_api_key(user.id, now).await?;
            println!(
                "password changed for {}; their tokens and API key are revoked",
                user.username
            );
            if generated {
                println!("password: {password}");
            }
        }
        UserAction::List => {
            println!(
                "{:>6}  {:<24} {:<6} {:<7} roles",
                "id", "username", "admin", "active"
            );
            for user in store.users().await? {
                println!(
                    "{:>6}  {:<24} {:<6} {:<7} {}",
                    user.id,
                    user.username,
                    user.is_admin,
                    user.is_active,
                    user.roles.join(",")
                );
            }
        }
    }
    Ok(())
}

async fn apikey(config: &Config, action: ApiKeyAction) -> Result<(), CliError> {
    let store: Arc<dyn Store> = open_store(config).await?;
    let now = crate::clock::now_secs();
    match action {
        ApiKeyAction::Create { user } => {
            let owner = store
                .user_by_name(&user)
                .await?
                .filter(|u| u.is_active)
                .ok_or_else(|| CliError::Usage(format!("no active user named {user:?}")))?;
            let new =
                apikey::generate(owner.id, now).map_err(|e| CliError::Usage(e.to_string()))?;
            let previous = store.insert_api_key(new.record.clone()).await?;
            println!("created API key {} for {}", new.record.id, owner.username);
            if let Some(previous) = previous {
                println!("revoked the previous key {previous}");
            }
            println!("key: {}", new.key);
            println!("Store it now: it is shown only this once.");
        }
        ApiKeyAction::Revoke { id } => match store.revoke_api_key(&id, now).await? {
            Some(_) => println!("revoked API key {id}"),
            None => return Err(CliError::Usage(format!("no API key with id {id:?}"))),
        },
        ApiKeyAction::List => {
            let names: std::collections::HashMap<u64, String> = store
                .users()
                .await?
                .into_iter()
                .map(|u| (u.id, u.username))
                .collect();
            println!(
                "{:<21} {:<24} {:<20} {:<20} revoked",
                "prefix", "user", "created", "last used"
            );
            for key in store.api_keys(None).await? {
                let time = |t: Option<u64>| t.map_or("-".to_string(), crate::clock::rfc3339);
                println!(
                    "{:<21} {:<24} {:<20} {:<20} {}",
                    apikey::display_prefix(&key.id),
                    names.get(&key.user_id).map_or("(deleted)", String::as_str),
                    time(Some(key.created_at)),
                    time(key.last_used_at),
                    time(key.revoked_at),
                );
            }
        }
    }
    Ok(())
}

fn rotate_keys(config: &Config) -> Result<(), CliError> {
    let path = config.signing_key_path();
    let key_error = |e: crate::auth::jwt::KeyError| CliError::Start(e.into());
    let mut file = if path.exists() {
        KeyFile::read(&path).map_err(key_error)?
    } else {
        KeyFile::default()
    };
    // A retired key is needed while a refresh token it signed may still be presented.
    let keep = config.auth.refresh_ttl_secs + config.auth.leeway_secs;
    file.rotate(config.auth.algorithm, crate::clock::now_secs(), keep)
        .map_err(key_error)?;
    file.write(&path).map_err(key_error)?;
    let newest = file.keys.last().map_or("", |k| k.kid.as_str());
    println!(
        "new {:?} signing key {newest} in {}; {} key(s) kept for verification",
        config.auth.algorithm,
        path.display(),
        file.keys.len()
    );
    Ok(())
}

/// A password from stdin, or a generated one (then `true`).
fn password_input(from_stdin: bool, min_len: usize) -> Result<(String, bool), CliError> {
    if !from_stdin {
        let password =
            crate::bootstrap::generate_password().map_err(|e| CliError::Usage(e.to_string()))?;
        return Ok((password, true));
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    names::check_password(&password, min_len)
        .map_err(|why| CliError::Usage(format!("password: {why}")))?;
    Ok((password, false))
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
