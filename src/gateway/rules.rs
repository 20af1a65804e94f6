//! Access rules: which paths are public, which need a role, and the default (any
//! authenticated user). Rules match the normalized path alone, never the query or a header.
//!
//! A rule naming GET covers HEAD: RFC 9110 makes HEAD a GET without the body, and frameworks
//! answer it with the GET handler. A request is judged once for its own method and once for
//! each method it asks the upstream to pretend it has (`X-HTTP-Method-Override` when passed,
//! `_method` in the query), and must pass every time.
//!
//! Express, IIS and anything on a case-insensitive filesystem serve `/ADMIN` as `/admin`,
//! while others serve it as a path of its own. So a path is judged twice when case could
//! matter: as written, and with rules matching without regard to ASCII case, and must pass
//! both. A rule that restricts a path restricts every case variant of it; a public rule opens
//! only what both readings agree is public.

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
pub struct Rules {
    rules: Vec<Rule>,
    /// Some prefix has an upper-case letter, so even a lower-case path can read differently
    /// without regard to case.
    upper_case_prefix: bool,
}

impl Rules {
    /// Compiles validated rule configuration; a method that does not parse is an error, never
    /// dropped (a rule that lost its methods would match every method).
    pub fn new(configs: &[RuleConfig]) -> Result<Rules, String> {
        let mut rules = Vec::with_capacity(configs.len());
        for (i, c) in configs.iter().enumerate() {
            let mut methods = Vec::with_capacity(c.methods.len() + 1);
            for name in &c.methods {
                let method = Method::from_bytes(name.as_bytes())
                    .map_err(|_| format!("rules[{i}].methods: {name:?} is not a method"))?;
                methods.push(method);
            }
            if methods.contains(&Method::GET) && !methods.contains(&Method::HEAD) {
                methods.push(Method::HEAD);
            }
            rules.push(Rule {
                prefix: c.path.clone(),
                methods,
                access: match (c.public, c.roles.is_empty()) {
                    (true, _) => Access::Public,
                    (false, true) => Access::Authenticated,
                    (false, false) => Access::AnyRole(c.roles.clone()),
                },
            });
        }
        let upper_case_prefix = rules
            .iter()
            .any(|r| r.prefix.bytes().any(|b| b.is_ascii_uppercase()));
        Ok(Rules {
            rules,
            upper_case_prefix,
        })
    }

    /// The first rule whose prefix and method match decides.
    pub fn access(&self, method: &Method, path: &str) -> &Access {
        self.access_as(method, path, Case::AsWritten)
    }

    fn access_as(&self, method: &Method, path: &str, case: Case) -> &Access {
        self.rules
            .iter()
            .find(|rule| {
                prefix_matches(&rule.prefix, path, case)
                    && (rule.methods.is_empty() || rule.methods.contains(method))
            })
            .map_or(&Access::Authenticated, |rule| &rule.access)
    }

    /// Judges `path` for `method` and for every method in `overrides`; the first refusal
    /// stands.
    pub fn authorize(
        &self,
        method: &Method,
        overrides: &[Method],
        path: &str,
        principal: Option<&Principal>,
    ) -> Result<(), ApiError> {
        let case_matters = self.upper_case_prefix || path.bytes().any(|b| b.is_ascii_uppercase());
        for method in std::iter::once(method).chain(overrides) {
            self.authorize_one(method, path, Case::AsWritten, principal)?;
            if case_matters {
                self.authorize_one(method, path, Case::Ignored, principal)?;
            }
        }
        Ok(())
    }

    fn authorize_one(
        &self,
        method: &Method,
        path: &str,
        case: Case,
        principal: Option<&Principal>,
    ) -> Result<(), ApiError> {
        match (self.access_as(method, path, case), principal) {
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
            .rules
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
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// One line per rule, for `portcullis check-config`.
    pub fn describe(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .rules
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

/// How a path is read against the rules' prefixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    AsWritten,
    /// As a case-insensitive server reads it.
    Ignored,
}

/// `/app` matches `/app`, `/app/` and `/app/x`, but not `/apple`.
fn prefix_matches(prefix: &str, path: &str, case: Case) -> bool {
    let Some(head) = path.get(..prefix.len()) else {
        return false;
    };
    let same = match case {
        Case::AsWritten => head == prefix,
        Case::Ignored => head.eq_ignore_ascii_case(prefix),
    };
    let rest = &path[prefix.len()..];
    same && (rest.is_empty() || prefix.ends_with('/') || rest.starts_with('/'))
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
        ])
        .unwrap();
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
            rules.access_as(&get, "/PUBLIC/ADMIN", Case::Ignored),
            &Access::AnyRole(vec!["admin".into()])
        );
        assert_eq!(
            rules.access(&get, "/reports/q1"),
            &Access::AnyRole(vec!["billing".into()])
        );
        assert_eq!(
            rules.access(&Method::POST, "/reports/q1"),
            &Access::Authenticated
        );
        assert_eq!(
            rules.access(&Method::HEAD, "/reports/q1"),
            &Access::AnyRole(vec!["billing".into()]),
            "a GET rule covers HEAD"
        );
    }

    #[test]
    fn an_override_is_judged_as_well_as_the_method() {
        let rules = Rules::new(&[
            rule("/reports", &["DELETE"], false, &["admin"]),
            rule("/reports", &[], true, &[]),
        ])
        .unwrap();
        assert_eq!(
            rules.authorize(&Method::POST, &[], "/reports/1", None),
            Ok(())
        );
        assert_eq!(
            rules.authorize(&Method::POST, &[Method::DELETE], "/reports/1", None),
            Err(ApiError::NotAuthenticated)
        );
    }

    #[test]
    fn a_restriction_covers_every_case_and_a_public_rule_only_its_own() {
        let rules = Rules::new(&[
            rule("/admin", &[], false, &["admin"]),
            rule("/public", &[], true, &[]),
        ])
        .unwrap();
        let get = Method::GET;
        assert_eq!(rules.authorize(&get, &[], "/public/x", None), Ok(()));
        for needs_a_user in ["/PUBLIC/x", "/Public", "/ADMIN", "/aDmIn/x"] {
            assert_eq!(
                rules.authorize(&get, &[], needs_a_user, None),
                Err(ApiError::NotAuthenticated),
                "{needs_a_user}"
            );
        }
    }

    #[test]
    fn anonymous_on_protected_route_is_unauthenticated() {
        let rules = Rules::new(&[]).unwrap();
        assert_eq!(
            rules.authorize(&Method::GET, &[], "/x", None),
            Err(ApiError::NotAuthenticated)
        );
    }
}
