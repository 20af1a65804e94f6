//! What a username, a role and a password may look like.
//!
//! Usernames and roles travel upstream in headers, so they are restricted to characters that
//! need no escaping there (the username alphabet is Django's, so migrated users fit).

pub const MAX_USERNAME_LEN: usize = 150;
pub const MAX_ROLE_LEN: usize = 64;
/// Bounds the work one login can ask of argon2 and keeps a password out of header territory.
pub const MAX_PASSWORD_LEN: usize = 1024;

pub fn check_username(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > MAX_USERNAME_LEN {
        return Err("must be 1 to 150 characters");
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || "@.+-_".contains(c);
    if !name.chars().all(allowed) {
        return Err("may contain only letters, digits and @ . + - _");
    }
    Ok(())
}

pub fn check_role(role: &str) -> Result<(), &'static str> {
    if role.is_empty() || role.len() > MAX_ROLE_LEN {
        return Err("must be 1 to 64 characters");
    }
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-.:".contains(c);
    if !role.chars().all(allowed) {
        return Err("may contain only lowercase letters, digits and _ - . :");
    }
    Ok(())
}

pub fn check_password(password: &str, min_len: usize) -> Result<(), String> {
    let len = password.chars().count();
    if len < min_len {
        return Err(format!(
            "Ensure this field has at least {min_len} characters."
        ));
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(format!(
            "Ensure this field has no more than {MAX_PASSWORD_LEN} bytes."
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert!(check_username("alice.smith+ops@example.com").is_ok());
        for bad in [
            "",
            "with space",
            "tab\t",
            "new\nline",
            "ünï",
            &"a".repeat(151),
        ] {
            assert!(check_username(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn roles() {
        assert!(check_role("billing:read").is_ok());
        for bad in ["", "Admin", "a,b", "a b", &"r".repeat(65)] {
            assert!(check_role(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn passwords() {
        assert!(check_password("correct horse", 8).is_ok());
        assert!(check_password("short", 8).is_err());
        assert!(check_password(&"x".repeat(1025), 8).is_err());
    }
}
