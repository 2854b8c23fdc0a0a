//! Claim → role mapping: which projects and roles an SSO identity gets from its `groups` and
//! `roles` claims. Pure; storing memberships is the caller's business.
use super::SsoIdentity;
use crate::config_file::{ClaimName, ProjectRole, ProviderConfig};
use std::collections::BTreeMap;

/// A role in one project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleGrant {
    /// Project name.
    pub project: String,
    /// `owner`, `editor` or `viewer`.
    pub role: String,
}

/// What an identity is entitled to by its claims.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MappedRoles {
    /// Matches one of the provider's `admin` entries.
    pub admin: bool,
    /// One grant per project (the strongest when several mappings name it), by project name.
    pub grants: Vec<RoleGrant>,
}

fn claim(identity: &SsoIdentity, name: ClaimName) -> &[String] {
    match name {
        ClaimName::Groups => &identity.groups,
        ClaimName::Roles => &identity.roles,
    }
}

/// Applies the provider's `admin` and `roles` entries to the identity's claims. Values compare
/// exactly (Entra group object ids and app role values are case-sensitive strings).
pub fn map_roles(provider: &ProviderConfig, identity: &SsoIdentity) -> MappedRoles {
    let has = |name: ClaimName, value: &str| claim(identity, name).iter().any(|v| v == value);
    let admin = provider.admin.iter().any(|m| has(m.claim, &m.value));
    let mut best: BTreeMap<&str, ProjectRole> = BTreeMap::new();
    for m in provider.roles.iter().filter(|m| has(m.claim, &m.value)) {
        let role = best.entry(&m.project).or_insert(m.role);
        *role = (*role).max(m.role);
    }
    let grants = best
        .into_iter()
        .map(|(project, role)| RoleGrant {
            project: project.to_string(),
            role: role.as_str().to_string(),
        })
        .collect();
    MappedRoles { admin, grants }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config_file::FileConfig;

    fn provider() -> ProviderConfig {
        let text = r#"
[[oidc]]
name = "entra"
issuer = "https://login.microsoftonline.com/t/v2.0"
client_id = "app"
client_secret_env = "X"
admin = [{ claim = "roles", value = "Faultline.Admin" }, { claim = "groups", value = "grp-admins" }]
roles = [
  { claim = "groups", value = "grp-editors", project = "payments", role = "editor" },
  { claim = "groups", value = "grp-viewers", project = "payments", role = "viewer" },
  { claim = "groups", value = "grp-viewers", project = "search", role = "viewer" },
  { claim = "roles", value = "Payments.Owner", project = "payments", role = "owner" },
]
"#;
        FileConfig::parse(text, std::path::Path::new("t.toml"))
            .unwrap()
            .oidc
            .remove(0)
    }

    fn who(groups: &[&str], roles: &[&str]) -> SsoIdentity {
        SsoIdentity {
            provider: "entra".into(),
            subject: "s".into(),
            email: None,
            name: None,
            groups: groups.iter().map(|s| s.to_string()).collect(),
            roles: roles.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn grants(m: &MappedRoles) -> Vec<(&str, &str)> {
        m.grants
            .iter()
            .map(|g| (g.project.as_str(), g.role.as_str()))
            .collect()
    }

    #[test]
    fn groups_give_project_roles() {
        let m = map_roles(&provider(), &who(&["grp-viewers", "unrelated"], &[]));
        assert!(!m.admin);
        assert_eq!(grants(&m), [("payments", "viewer"), ("search", "viewer")]);
    }

    #[test]
    fn the_strongest_role_per_project_wins_whatever_the_order() {
        let m = map_roles(&provider(), &who(&["grp-viewers", "grp-editors"], &[]));
        assert_eq!(grants(&m), [("payments", "editor"), ("search", "viewer")]);
        let m = map_roles(&provider(), &who(&["grp-editors"], &["Payments.Owner"]));
        assert_eq!(grants(&m), [("payments", "owner")]);
    }

    #[test]
    fn claims_are_not_interchangeable_and_compare_exactly() {
        // A group whose id happens to equal an app role value grants nothing.
        let m = map_roles(
            &provider(),
            &who(&["Payments.Owner", "GRP-EDITORS"], &["grp-editors"]),
        );
        assert_eq!(m, MappedRoles::default());
    }

    #[test]
    fn admin_comes_from_either_claim() {
        assert!(map_roles(&provider(), &who(&[], &["Faultline.Admin"])).admin);
        assert!(map_roles(&provider(), &who(&["grp-admins"], &[])).admin);
        assert!(!map_roles(&provider(), &who(&["Faultline.Admin"], &["grp-admins"])).admin);
    }
}
