//! The offline administration commands: they open the store (or the key file) directly, so
//! the first admin key can be made, a password reset, or a store migrated without the web API.
//! With redb, run them while the gateway is stopped (the file has one writer).

use std::io::BufRead;
use std::sync::Arc;

use super::{ApiKeyAction, CliError, StoreAction, UserAction};
use crate::app::open_store;
use crate::auth::jwt::KeyFile;
use crate::auth::password::Passwords;
use crate::auth::{apikey, names};
use crate::config::Config;
use crate::store::{Actor, NewUser, Store, UserPatch};

/// What `store export` writes.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct StoreDump {
    format: String,
    version: u32,
    exported_at: u64,
    users: Vec<crate::store::UserRecord>,
    api_keys: Vec<crate::store::ApiKeyRecord>,
}

const DUMP_FORMAT: &str = "portcullis-store";

pub async fn store(config: &Config, action: StoreAction) -> Result<(), CliError> {
    let store: Arc<dyn Store> = open_store(config).await?;
    match action {
        StoreAction::Export { output } => {
            let dump = StoreDump {
                format: DUMP_FORMAT.into(),
                version: 1,
                exported_at: crate::clock::now_secs(),
                users: store.users().await?,
                api_keys: store.api_keys(None).await?,
            };
            let json =
                serde_json::to_string_pretty(&dump).map_err(|e| CliError::Usage(e.to_string()))?;
            match output {
                Some(path) => {
                    crate::files::write_private(&path, json.as_bytes())
                        .map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))?;
                    eprintln!(
                        "exported {} users and {} API keys to {}",
                        dump.users.len(),
                        dump.api_keys.len(),
                        path.display()
                    );
                }
                None => println!("{json}"),
            }
        }
        StoreAction::Import { file } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| CliError::Usage(format!("{}: {e}", file.display())))?;
            let dump: StoreDump = serde_json::from_str(&text)
                .map_err(|e| CliError::Usage(format!("{}: {e}", file.display())))?;
            if dump.format != DUMP_FORMAT || dump.version != 1 {
                return Err(CliError::Usage(format!(
                    "{}: not a portcullis store export (version 1)",
                    file.display()
                )));
            }
            let (users, keys) = (dump.users.len(), dump.api_keys.len());
            store.import(dump.users, dump.api_keys).await?;
            println!("imported {users} users and {keys} API keys");
        }
    }
    Ok(())
}

pub async fn user(config: &Config, action: UserAction) -> Result<(), CliError> {
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
            let new = NewUser {
                username,
                password_hash,
                roles,
                is_admin: admin,
            };
            let user = store.create_user(new, &Actor::cli()).await?;
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
            let patch = UserPatch {
                password_hash: Some(password_hash),
                ..UserPatch::default()
            };
            store
                .update_user(user.id, patch, &Actor::cli(), "password_changed")
                .await?;
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

pub async fn apikey(config: &Config, action: ApiKeyAction) -> Result<(), CliError> {
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
            let previous = store
                .insert_api_key(new.record.clone(), &Actor::cli())
                .await?;
            println!("created API key {} for {}", new.record.id, owner.username);
            if let Some(previous) = previous {
                println!("revoked the previous key {previous}");
            }
            println!("key: {}", new.key);
            println!("Store it now: it is shown only this once.");
        }
        ApiKeyAction::Revoke { id } => {
            // `apikey list` shows the prefix `pcs_<id>`; either form names the key.
            let id = id.strip_prefix("pcs_").unwrap_or(&id);
            match store.revoke_api_key(id, &Actor::cli()).await? {
                Some(revoked) if revoked.newly => println!("revoked API key {id}"),
                Some(revoked) => println!(
                    "API key {id} was already revoked at {}",
                    revoked
                        .key
                        .revoked_at
                        .map_or("-".into(), crate::clock::rfc3339)
                ),
                None => return Err(CliError::Usage(format!("no API key with id {id:?}"))),
            }
        }
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

pub fn rotate_keys(config: &Config) -> Result<(), CliError> {
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
