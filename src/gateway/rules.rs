//! Access rules: which paths are public, which need a role, and the default (any
//! authenticated user). Rules match the normalized path alone, never the query or a header.

use http::Method;

use crate::auth::Principal;
use crate::config::RuleConfig;
use crate::error::ApiError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    Public,
    Authenticated,
    AnyRole(Vec<String>),
}

#[derive(Debug, Clone)]
struct Rule {
    prefix: String,
    methods: Vec<Method>,
    access: Access,
}

#[derive(Debug, Clone, Default)]
pub struct Rules(Vec<Rule>);

impl Rules {
    /// Compiles validated rule configuration.
    pub fn new(configs: &[RuleConfig]) -> Rules {
        let rules = configs
            .iter()
            .map(|c| Rule {
                prefix: c.path.clone(),
                methods: c
                    .methods
                    .iter()
                    .filter_map(|m| Method::from_bytes(m.as_bytes()).ok())
                    .collect(),
                access: match (c.public, c.roles.is_empty()) {
                    (true, _) => Access::Public,
                    (false, true) => Access::Authenticated,
                    (false, false) => Access::AnyRole(c.roles.clone()),
                },
            })
            .collect();
        Rules(rules)
    }

    /// The first rule whose prefix and method match decides.
    pub fn access(&self, method: &Method, path: &str) -> &Access {
        self.0
            .iter()
            .find(|rule| {
                prefix_matches(&rule.prefix, path)
                    && (rule.methods.is_empty() || rule.methods.contains(method))
            })
            .map_or(&Access::Authenticated, |rule| &rule.access)
    }

    pub fn authorize(
        &self,
        method: &Method,
        path: &str,
        principal: Option<&Principal>,
    ) -> Result<(), ApiError> {
        match (self.access(method, path), principal) {
            (Access::Public, _) => Ok(()),
            (_, None) => Err(ApiError::NotAuthenticated),
            (Access::Authenticated, Some(_)) => Ok(()),
            (Access::AnyRole(roles), Some(p)) if p.user.has_any_role(roles) => Ok(()),
            (Access::AnyRole(_), Some(_)) => Err(ApiError::Forbidden),
        }
    }

    /// The role names the rules require, sorted, plus `admin`.
    pub fn roles(&self) -> Vec<&str> {
        let mut roles: Vec<&str> = self
            .0
            .iter()
            .flat_map(|r| match &r.access {
                Access::AnyRole(roles) => roles.iter().map(String::as_str).collect(),
                _ => Vec::new(),
            })
            .collect();
        roles.push("admin");
        roles.sort_unstable();
        roles.dedup();
        roles
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// One line per rule, for `portcullis check-config`.
    pub fn describe(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .0
            .iter()
            .map(|r| {
                let methods = if r.methods.is_empty() {
                    "*".to_string()
                } else {
                    r.methods
                        .iter()
                        .map(Method::as_str)
                        .collect::<Vec<_>>()
                        .join(",")
                };
                let access = match &r.access {
                    Access::Public => "public".to_string(),
                    Access::Authenticated => "authenticated".to_string(),
                    Access::AnyRole(roles) => format!("any of roles [{}]", roles.join(", ")),
                };
                format!("{:<30} {:<16} {access}", r.prefix, methods)
            })
            .collect();
        lines.push(format!("{:<30} {:<16} authenticated (default)", "/", "*"));
        lines
    }
}

/// `/app` matches `/app`, `/app/` and `/app/x`, but not `/apple`.
fn prefix_matches(prefix: &str, path: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || prefix.ends_with('/') || rest.starts_with('/'),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(path: &str, methods: &[&str], public: bool, roles: &[&str]) -> RuleConfig {
        RuleConfig {
            path: path.into(),
            methods: methods.iter().map(|m| m.to_string()).collect(),
            public,
            roles: roles.iter().map(|r| r.to_string()).collect(),
        }
    }

    #[test]
    fn first_match_wins_and_default_is_authenticated() {
        let rules = Rules::new(&[
            rule("/public/admin", &[], false, &["admin"]),
            rule("/public", &[], true, &[]),
            rule("/reports", &["GET"], false, &["billing"]),
        ]);
        let get = Method::GET;
        assert_eq!(rules.access(&get, "/public/x"), &Access::Public);
        assert_eq!(rules.access(&get, "/public"), &Access::Public);
        assert_eq!(
            rules.access(&get, "/public/admin/x"),
            &Access::AnyRole(vec!["admin".into()])
        );
        assert_eq!(rules.access(&get, "/publicity"), &Access::Authenticated);
        assert_eq!(rules.access(&get, "/PUBLIC"), &Access::Authenticated);
        assert_eq!(
            rules.access(&get, "/reports/q1"),
            &Access::AnyRole(vec!["billing".into()])
        );
        assert_eq!(
            rules.access(&Method::POST, "/reports/q1"),
            &Access::Authenticated
        );
    }

    #[test]
    fn anonymous_on_protected_route_is_unauthenticated() {
        let rules = Rules::new(&[]);
        assert_eq!(
            rules.authorize(&Method::GET, "/x", None),
            Err(ApiError::NotAuthenticated)
        );
    }
}
