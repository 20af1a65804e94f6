//! The first administrator: created once, when the store holds no users at all, with the
//! configured password (`PORTCULLIS_ADMIN_PASSWORD`) or a generated one that is printed once.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::app::{App, StartError};
use crate::store::NewUser;

#[derive(Debug, PartialEq, Eq)]
pub enum Bootstrap {
    /// Users already existed; nothing was done.
    Existing,
    /// The admin was created with the configured password.
    Created { username: String },
    /// The admin was created with this generated password, which is shown nowhere else.
    Generated { username: String, password: String },
}

impl Bootstrap {
    /// Tells the operator what happened. A generated password goes to stderr directly, once,
    /// and never through the log pipeline (logs are shipped and kept; this must not be).
    pub fn announce(&self) {
        match self {
            Bootstrap::Existing => {}
            Bootstrap::Created { username } => {
                tracing::info!(%username, "created the first admin with the configured password");
            }
            Bootstrap::Generated { username, password } => {
                eprintln!(
                    "\n  First start: created admin user {username:?} with password\n\n      {password}\n\n  \
                     It is shown only this once. Set PORTCULLIS_ADMIN_PASSWORD to choose it instead.\n"
                );
            }
        }
    }
}

pub async fn ensure_admin(app: &App) -> Result<Bootstrap, StartError> {
    // The cheap check first: hashing a password at every start would only cost time.
    if !app.store.users().await?.is_empty() {
        return Ok(Bootstrap::Existing);
    }
    let username = app.config.bootstrap.admin_username.clone();
    let (password, generated) = match &app.config.bootstrap.admin_password {
        Some(password) => (password.clone(), false),
        None => (
            generate_password().map_err(|e| StartError::Io(e.to_string()))?,
            true,
        ),
    };
    let password_hash = app.passwords.hash(&password).await?;
    let admin = NewUser {
        username: username.clone(),
        password_hash,
        roles: Vec::new(),
        is_admin: true,
    };
    // Atomic in the store: of several replicas starting at once, exactly one creates it.
    match app.store.create_first_user(admin).await? {
        None => Ok(Bootstrap::Existing),
        Some(_) if generated => Ok(Bootstrap::Generated { username, password }),
        Some(_) => Ok(Bootstrap::Created { username }),
    }
}

/// 24 random bytes, base64url: 32 characters, 192 bits.
pub fn generate_password() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}
