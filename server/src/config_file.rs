//! The optional TOML configuration file (`--config`, `FAULTLINE_CONFIG`): lists too long for flags.
//! Today that is the OpenID Connect providers (`[[oidc]]`); other sections join [`FileConfig`] as
//! new fields. Reading, checking and locating problems (`FILE:LINE:COL: field: message`) live here;
//! what the values mean at run time lives with their users (`oidc/`).
//!
//! Secrets never sit in the file: it names an environment variable or a file to read them from.
use serde::Deserialize;
use std::{
    fmt,
    net::IpAddr,
    ops::Range,
    path::{Path, PathBuf},
};
use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// The whole file. Unknown sections and keys are refused, so a typo cannot silently disable a
/// setting.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// OpenID Connect providers users may log in with, in the order the login page shows them.
    #[serde(default)]
    pub oidc: Vec<ProviderConfig>,
}

/// One `[[oidc]]` provider.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// Short name used in URLs (`/auth/oidc/<name>/login`) and stored with each pending login.
    pub name: String,
    /// What the login page shows; `name` when unset.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Issuer URL, exactly as the provider's discovery document and ID tokens spell it
    /// (Entra ID: `https://login.microsoftonline.com/<tenant>/v2.0`).
    pub issuer: String,
    pub client_id: String,
    /// Environment variable holding the client secret.
    #[serde(default)]
    pub client_secret_env: Option<String>,
    /// File holding the client secret (trailing newline ignored), e.g. a mounted secret.
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    /// Scopes asked for; must include `openid`.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// Identities matching any of these are hub administrators.
    #[serde(default)]
    pub admin: Vec<ClaimMatch>,
    /// Claim value → project role.
    #[serde(default)]
    pub roles: Vec<RoleMapping>,
    /// The discovery document and signing keys are fetched again when older than this (and at
    /// once when an ID token is signed by a key not seen yet).
    #[serde(default = "default_refresh_minutes")]
    pub refresh_minutes: u64,
}

fn default_scopes() -> Vec<String> {
    ["openid", "email", "profile"].map(String::from).to_vec()
}

fn default_refresh_minutes() -> u64 {
    60
}

/// The ID token claims a mapping may look at (both lists of strings; Entra ID puts group object
/// ids in `groups` and app roles in `roles`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClaimName {
    Groups,
    Roles,
}

/// `{ claim = "groups", value = "…" }`: an identity whose claim list contains `value`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimMatch {
    pub claim: ClaimName,
    pub value: String,
}

/// `[[oidc.roles]]`: identities whose `claim` contains `value` get `role` in `project`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleMapping {
    pub claim: ClaimName,
    pub value: String,
    /// Project name.
    pub project: String,
    pub role: ProjectRole,
}

/// A role within one project, weakest first (so `max` picks the strongest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProjectRole {
    Viewer,
    Editor,
    Owner,
}

impl ProjectRole {
    /// The name stored in `memberships.role`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProjectRole::Viewer => "viewer",
            ProjectRole::Editor => "editor",
            ProjectRole::Owner => "owner",
        }
    }
}

impl ProviderConfig {
    /// The client secret, from the environment variable or file the configuration names.
    pub fn client_secret(&self) -> anyhow::Result<crate::config::Secret> {
        use anyhow::Context;
        let secret = match (&self.client_secret_env, &self.client_secret_file) {
            (Some(var), _) => std::env::var(var).with_context(|| {
                format!(
                    "oidc provider {}: environment variable {var} (client_secret_env) is not set",
                    self.name
                )
            })?,
            (None, Some(path)) => std::fs::read_to_string(path)
                .with_context(|| {
                    format!(
                        "oidc provider {}: failed to read client_secret_file {}",
                        self.name,
                        path.display()
                    )
                })?
                .trim_end_matches(['\r', '\n'])
                .to_string(),
            (None, None) => anyhow::bail!(
                "oidc provider {}: neither client_secret_env nor client_secret_file is set",
                self.name
            ),
        };
        anyhow::ensure!(
            !secret.is_empty(),
            "oidc provider {}: the client secret is empty",
            self.name
        );
        Ok(crate::config::Secret(secret))
    }

    /// Whether the issuer may be plain HTTP (only on loopback, for tests).
    fn issuer_problem(&self) -> Option<String> {
        let url = match url::Url::parse(&self.issuer) {
            Ok(u) => u,
            Err(e) => return Some(format!("not a URL: {e}")),
        };
        if url.query().is_some() || url.fragment().is_some() {
            return Some("an issuer has no query or fragment".into());
        }
        match url.scheme() {
            "https" => None,
            "http" if is_loopback(&url) => None,
            "http" => Some(format!(
                "issuer {} must use https (plain http is only allowed on loopback, for tests)",
                self.issuer
            )),
            other => Some(format!("issuer must be an https URL, not {other}:")),
        }
    }
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// Every problem of a configuration file, each with its place.
#[derive(Debug)]
pub struct FileConfigError {
    pub file: PathBuf,
    pub problems: Vec<Problem>,
}

/// One problem: 1-based line and column (0 when unknown), the field path (`oidc[1].issuer`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: usize,
    pub column: usize,
    pub field: String,
    pub message: String,
}

impl fmt::Display for FileConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}:{}:{}: ", self.file.display(), p.line, p.column)?;
            if !p.field.is_empty() {
                write!(f, "{}: ", p.field)?;
            }
            f.write_str(&p.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for FileConfigError {}

impl FileConfig {
    /// Reads and checks the file at `path`.
    pub fn load(path: &Path) -> anyhow::Result<FileConfig> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("failed to read config file {}: {e}", path.display()))?;
        Ok(FileConfig::parse(&text, path)?)
    }

    /// Parses and checks `text`; `file` only names it in errors.
    pub fn parse(text: &str, file: &Path) -> Result<FileConfig, FileConfigError> {
        let fail = |problems| FileConfigError {
            file: file.to_path_buf(),
            problems,
        };
        let doc = DeTable::parse(text).map_err(|e| fail(vec![problem_at(text, None, &e)]))?;
        let config: FileConfig =
            toml::from_str(text).map_err(|e| fail(vec![problem_at(text, Some(&doc), &e)]))?;
        let problems = config.check();
        if problems.is_empty() {
            Ok(config)
        } else {
            let located = problems
                .into_iter()
                .map(|(path, message)| {
                    let span = span_of(&doc, &path);
                    let (line, column) = span.map(|s| line_col(text, s.start)).unwrap_or((0, 0));
                    Problem {
                        line,
                        column,
                        field: path_string(&path),
                        message,
                    }
                })
                .collect();
            Err(fail(located))
        }
    }

    /// Rules serde cannot express; each problem with the path of the field it is about.
    fn check(&self) -> Vec<(Vec<Seg>, String)> {
        let mut out = Vec::new();
        for (i, p) in self.oidc.iter().enumerate() {
            let at = |field: &str| {
                vec![
                    Seg::Key("oidc".into()),
                    Seg::Index(i),
                    Seg::Key(field.into()),
                ]
            };
            let name_ok = !p.name.is_empty()
                && p.name.len() <= 64
                && p.name
                    .starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                && p.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
            if !name_ok {
                out.push((at("name"), format!("provider name {:?} must be 1-64 characters of a-z, 0-9, - and _ (it is used in URLs)", p.name)));
            }
            if let Some(first) = self.oidc[..i].iter().position(|q| q.name == p.name) {
                out.push((
                    at("name"),
                    format!("duplicate provider name {:?} (also oidc[{first}])", p.name),
                ));
            }
            if let Some(problem) = p.issuer_problem() {
                out.push((at("issuer"), problem));
            }
            if p.client_id.is_empty() {
                out.push((at("client_id"), "must not be empty".into()));
            }
            match (&p.client_secret_env, &p.client_secret_file) {
                (Some(_), Some(_)) => out.push((at("client_secret_file"), "set client_secret_env or client_secret_file, not both".into())),
                (None, None) => out.push((at("name"), "the client secret is missing: set client_secret_env (an environment variable) or client_secret_file (secrets are never written in this file)".into())),
                _ => {}
            }
            if !p.scopes.iter().any(|s| s == "openid") {
                out.push((at("scopes"), "must include \"openid\"".into()));
            }
            if p.refresh_minutes == 0 {
                out.push((at("refresh_minutes"), "must be at least 1".into()));
            }
            for (j, m) in p.roles.iter().enumerate() {
                if m.project.is_empty() {
                    let mut path = at("roles");
                    path.extend([Seg::Index(j), Seg::Key("project".into())]);
                    out.push((path, "must not be empty".into()));
                }
            }
        }
        out
    }
}

/// One step of a field path.
#[derive(Debug, Clone)]
enum Seg {
    Key(String),
    Index(usize),
}

fn path_string(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) if s.is_empty() => s.push_str(k),
            Seg::Key(k) => {
                s.push('.');
                s.push_str(k);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// Where the value at `path` is written (or the nearest enclosing value that is).
fn span_of(doc: &Spanned<DeTable>, path: &[Seg]) -> Option<Range<usize>> {
    let mut span = doc.span();
    let mut cur: Option<&Spanned<DeValue>> = None;
    for seg in path {
        let next = match (cur, seg) {
            (None, Seg::Key(k)) => doc.get_ref().get(k.as_str()),
            (Some(v), Seg::Key(k)) => v.get_ref().get(k.as_str()),
            (Some(v), Seg::Index(i)) => v.get_ref().get(*i),
            (None, Seg::Index(_)) => None,
        };
        match next {
            Some(v) => {
                span = v.span();
                cur = Some(v);
            }
            None => break,
        }
    }
    Some(span)
}

/// The path of the innermost key or value written at `offset`. Containers are searched whatever
/// their span: the span of a `[[table]]` covers only its header.
fn path_at(doc: &Spanned<DeTable>, offset: usize) -> Vec<Seg> {
    fn in_value(v: &Spanned<DeValue>, offset: usize, out: &mut Vec<Seg>) -> bool {
        match v.get_ref() {
            DeValue::Table(t) => in_table(t, offset, out),
            DeValue::Array(a) => a.iter().enumerate().any(|(i, item)| {
                out.push(Seg::Index(i));
                let found = in_value(item, offset, out) || item.span().contains(&offset);
                if !found {
                    out.pop();
                }
                found
            }),
            _ => v.span().contains(&offset),
        }
    }
    fn in_table(t: &DeTable, offset: usize, out: &mut Vec<Seg>) -> bool {
        t.iter().any(|(k, v)| {
            out.push(Seg::Key(k.get_ref().to_string()));
            let found = in_value(v, offset, out) || k.span().contains(&offset);
            if !found {
                out.pop();
            }
            found
        })
    }
    let mut out = Vec::new();
    in_table(doc.get_ref(), offset, &mut out);
    out
}

fn problem_at(text: &str, doc: Option<&Spanned<DeTable>>, e: &toml::de::Error) -> Problem {
    let span = e.span();
    let (line, column) = span
        .as_ref()
        .map(|s| line_col(text, s.start))
        .unwrap_or((0, 0));
    let field = match (doc, &span) {
        (Some(doc), Some(s)) => path_string(&path_at(doc, s.start)),
        _ => String::new(),
    };
    Problem {
        line,
        column,
        field,
        message: e.message().trim_end().to_string(),
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    (line, before[line_start..].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[[oidc]]
name = "entra"
display_name = "Microsoft"
issuer = "https://login.microsoftonline.com/0000-tenant/v2.0"
client_id = "app-id"
client_secret_env = "FAULTLINE_OIDC_ENTRA_SECRET"
admin = [{ claim = "groups", value = "grp-admins" }]
[[oidc.roles]]
claim = "groups"
value = "grp-editors"
project = "payments"
role = "editor"

[[oidc]]
name = "dev"
issuer = "http://127.0.0.1:9000"
client_id = "hub"
client_secret_file = "/run/secrets/dev"
scopes = ["openid"]
"#;

    fn parse(text: &str) -> Result<FileConfig, String> {
        FileConfig::parse(text, Path::new("hub.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn reads_providers_and_mappings() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.oidc.len(), 2);
        let entra = &c.oidc[0];
        assert_eq!(entra.display_name.as_deref(), Some("Microsoft"));
        assert_eq!(entra.scopes, ["openid", "email", "profile"]);
        assert_eq!(entra.refresh_minutes, 60);
        assert_eq!(
            entra.admin,
            [ClaimMatch {
                claim: ClaimName::Groups,
                value: "grp-admins".into()
            }]
        );
        assert_eq!(entra.roles[0].role, ProjectRole::Editor);
        assert_eq!(
            c.oidc[1].client_secret_file.as_deref(),
            Some(Path::new("/run/secrets/dev"))
        );
        assert!(parse("").unwrap().oidc.is_empty());
    }

    #[test]
    fn syntax_and_type_errors_name_line_column_and_field() {
        let e = parse("[[oidc]]\nname = \"a\"\nissuer = 3\n").unwrap_err();
        assert!(
            e.starts_with(
                "hub.toml:3:10: oidc[0].issuer: invalid type: integer `3`, expected a string"
            ),
            "{e}"
        );
        let e = parse("[[oidc]]\nname = \"a\n").unwrap_err();
        assert!(e.starts_with("hub.toml:2:"), "{e}");
    }

    #[test]
    fn unknown_keys_and_role_names_are_refused() {
        let text = GOOD.replace("display_name", "dispaly_name");
        let e = parse(&text).unwrap_err();
        assert!(
            e.contains("hub.toml:4:1: oidc[0].dispaly_name: unknown field `dispaly_name`"),
            "{e}"
        );
        let e = parse(&GOOD.replace("role = \"editor\"", "role = \"admin\"")).unwrap_err();
        assert!(e.contains("hub.toml:13:8: oidc[0].roles[0].role: unknown variant `admin`, expected one of `viewer`, `editor`, `owner`"), "{e}");
        let e = parse(&GOOD.replace("claim = \"groups\"\nvalue", "claim = \"group\"\nvalue"))
            .unwrap_err();
        assert!(
            e.contains(
                "oidc[0].roles[0].claim: unknown variant `group`, expected `groups` or `roles`"
            ),
            "{e}"
        );
        let e = parse("[ldap]\nurl = \"x\"\n").unwrap_err();
        assert!(e.contains("unknown field `ldap`, expected `oidc`"), "{e}");
    }

    #[test]
    fn duplicate_names_plain_http_and_missing_secrets_are_refused() {
        let text = GOOD.replace("name = \"dev\"", "name = \"entra\"");
        let e = parse(&text).unwrap_err();
        assert_eq!(
            e,
            "hub.toml:16:8: oidc[1].name: duplicate provider name \"entra\" (also oidc[0])"
        );

        let text = GOOD.replace(
            "https://login.microsoftonline.com",
            "http://login.microsoftonline.com",
        );
        let e = parse(&text).unwrap_err();
        assert!(e.starts_with("hub.toml:5:10: oidc[0].issuer: issuer http://login.microsoftonline.com/0000-tenant/v2.0 must use https"), "{e}");
        for loopback in ["http://localhost:1", "http://[::1]:1", "http://127.0.0.2"] {
            parse(&GOOD.replace("http://127.0.0.1:9000", loopback)).unwrap();
        }

        let text = GOOD.replace("client_secret_file = \"/run/secrets/dev\"\n", "");
        let e = parse(&text).unwrap_err();
        assert!(
            e.starts_with("hub.toml:16:8: oidc[1].name: the client secret is missing"),
            "{e}"
        );
        let text = GOOD.replace(
            "client_id = \"hub\"",
            "client_id = \"hub\"\nclient_secret_env = \"X\"",
        );
        assert!(parse(&text).unwrap_err().contains(
            "oidc[1].client_secret_file: set client_secret_env or client_secret_file, not both"
        ));
    }

    #[test]
    fn several_problems_are_all_reported() {
        let text = GOOD
            .replace("scopes = [\"openid\"]", "scopes = [\"email\"]")
            .replace("name = \"dev\"", "name = \"Dev Box\"");
        let e = parse(&text).unwrap_err();
        let lines: Vec<&str> = e.lines().collect();
        assert_eq!(lines.len(), 2, "{e}");
        assert!(
            lines[0].starts_with("hub.toml:16:8: oidc[1].name: provider name \"Dev Box\" must be"),
            "{e}"
        );
        assert_eq!(
            lines[1],
            "hub.toml:20:10: oidc[1].scopes: must include \"openid\""
        );
    }

    #[test]
    fn secrets_come_from_a_file_or_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        std::fs::write(&file, "s3cret\n").unwrap();
        let mut p = parse(GOOD).unwrap().oidc.remove(1);
        p.client_secret_file = Some(file);
        assert_eq!(p.client_secret().unwrap().0, "s3cret");
        p.client_secret_file = Some(dir.path().join("missing"));
        let e = p.client_secret().unwrap_err().to_string();
        assert!(
            e.starts_with("oidc provider dev: failed to read client_secret_file"),
            "{e}"
        );
        p.client_secret_file = None;
        p.client_secret_env = Some("FAULTLINE_TEST_SURELY_UNSET_VARIABLE".into());
        let e = p.client_secret().unwrap_err().to_string();
        assert_eq!(e, "oidc provider dev: environment variable FAULTLINE_TEST_SURELY_UNSET_VARIABLE (client_secret_env) is not set");
    }
}
