//! `PORTCULLIS_<SECTION>_<KEY>` environment overrides.
//!
//! A variable is applied onto the parsed TOML table before deserialization, so the same
//! unknown-key and type errors apply to it as to the file. Its value is typed after the
//! default it replaces: a variable for a string key stays a string even if it looks like a
//! number (a password of `123456` must not become an integer).

use super::{Config, ConfigError};

const PREFIX: &str = "PORTCULLIS_";
const SECTIONS: &[&str] = &[
    "server",
    "upstream",
    "auth",
    "store",
    "cache",
    "rate_limit",
    "headers",
    "admin",
    "bootstrap",
    "log",
    "ui",
];
const TOP_LEVEL_KEYS: &[&str] = &["data_dir"];
/// The documented shortcut for `PORTCULLIS_BOOTSTRAP_ADMIN_PASSWORD`.
const ADMIN_PASSWORD_SHORTCUT: &str = "admin_password";

pub(super) fn apply_overrides(
    table: &mut toml::Table,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    let defaults = toml::Table::try_from(Config::default())
        .map_err(|e| ConfigError::Parse(format!("default configuration: {e}")))?;
    let mut problems = Vec::new();
    for (name, raw) in vars {
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let rest = rest.to_ascii_lowercase();
        let Some((section, key)) = locate(&rest) else {
            if !looks_like_kubernetes_service_link(&rest) {
                problems.push(format!("{name}: no configuration key of that name"));
            }
            continue;
        };
        let default = match section {
            Some(section) => defaults.get(section).and_then(|s| s.get(key)),
            None => defaults.get(key),
        };
        let value = match typed_value(default, &raw) {
            Ok(value) => value,
            Err(expected) => {
                problems.push(format!("{name}: expected {expected}"));
                continue;
            }
        };
        let target = match section {
            Some(section) => {
                let entry = table
                    .entry(section.to_string())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                match entry.as_table_mut() {
                    Some(target) => target,
                    None => {
                        problems.push(format!("{name}: [{section}] is not a table in the file"));
                        continue;
                    }
                }
            }
            None => &mut *table,
        };
        target.insert(key.to_string(), value);
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ConfigError::Env(problems))
    }
}

/// Splits `server_listen` into (`server`, `listen`); `data_dir` is top level.
fn locate(rest: &str) -> Option<(Option<&'static str>, &str)> {
    if rest == ADMIN_PASSWORD_SHORTCUT {
        return Some((Some("bootstrap"), ADMIN_PASSWORD_SHORTCUT));
    }
    if let Some(key) = TOP_LEVEL_KEYS.iter().find(|k| **k == rest) {
        return Some((None, key));
    }
    // Longest section first, so `rate_limit_x` is not read as a `rate` section.
    let mut sections = SECTIONS.to_vec();
    sections.sort_by_key(|s| std::cmp::Reverse(s.len()));
    sections.into_iter().find_map(|section| {
        let key = rest.strip_prefix(section)?.strip_prefix('_')?;
        (!key.is_empty()).then_some((Some(section), key))
    })
}

/// Kubernetes injects `<SERVICE>_SERVICE_HOST`, `<SERVICE>_PORT…` for a Service named
/// `portcullis`; those are not configuration and must not stop the pod.
fn looks_like_kubernetes_service_link(rest: &str) -> bool {
    rest.starts_with("service_") || rest == "port" || rest.starts_with("port_")
}

fn typed_value(default: Option<&toml::Value>, raw: &str) -> Result<toml::Value, &'static str> {
    match default {
        Some(toml::Value::Integer(_)) => raw
            .trim()
            .parse()
            .map(toml::Value::Integer)
            .map_err(|_| "an integer"),
        Some(toml::Value::Boolean(_)) => match raw.trim() {
            "true" | "1" | "yes" => Ok(toml::Value::Boolean(true)),
            "false" | "0" | "no" => Ok(toml::Value::Boolean(false)),
            _ => Err("true or false"),
        },
        Some(toml::Value::Array(_)) => Ok(parse_list(raw)),
        _ => Ok(toml::Value::String(raw.to_string())),
    }
}

/// Lists come as a TOML array (`["a", "b"]`) or comma-separated (`a,b`).
fn parse_list(raw: &str) -> toml::Value {
    if let Ok(mut doc) = format!("v = {raw}").parse::<toml::Table>()
        && let Some(array @ toml::Value::Array(_)) = doc.remove("v")
    {
        return array;
    }
    let items = raw.split(',').map(str::trim).filter(|s| !s.is_empty());
    toml::Value::Array(items.map(|s| toml::Value::String(s.to_string())).collect())
}
