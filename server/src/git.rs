//! Fetching a repository's files with Debian's `git` as a subprocess (ARCHITECTURE.md says
//! why not gix): a shallow clone of one branch into a temporary directory, with a bounded time,
//! capped output, no prompt, no user or system configuration, only the allowed URL schemes,
//! and the credential passed without a shell or the command line. It owns nothing in the
//! database; `git_sync.rs` decides when to fetch and what to do with the files.
use crate::gitops::SyncFile;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// The most of git's stderr kept for an error message.
const MAX_OUTPUT: u64 = 16 << 10;

/// How a repository authenticates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credential {
    None,
    /// An SSH private key (a deploy key), the file's path.
    SshKey(PathBuf),
    /// A file holding an HTTPS token (sent as basic auth, user `x-access-token`).
    HttpsToken(PathBuf),
}

/// Limits and options of every fetch, from the hub's flags.
#[derive(Clone, Debug)]
pub struct Settings {
    pub protocols: Vec<String>,
    pub timeout: Duration,
    pub max_bytes: u64,
}

/// Where a repository is: the URL, the branch and the directory inside it.
#[derive(Clone, Debug)]
pub struct Remote {
    pub url: String,
    pub branch: String,
    pub path: String,
}

/// The files of a fetched commit.
#[derive(Debug)]
pub struct Fetched {
    pub commit: String,
    pub files: Vec<SyncFile>,
}

/// A fetch that failed, in words fit for the project's sync status (no credential in it).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct GitError(pub String);

/// Checks a URL and a branch before they reach git: no option-like values, no credentials in
/// the URL (they would be stored and shown), a scheme git allows here.
pub fn check_remote(url: &str, branch: &str, protocols: &[String]) -> Result<(), (String, String)> {
    let bad = |f: &str, m: String| Err((f.to_string(), m));
    if url.starts_with('-') || url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return bad("url", format!("{url:?} is not a repository URL"));
    }
    let scheme = match url.split_once("://") {
        Some((s, _)) => s.to_ascii_lowercase(),
        // scp-like `git@host:path` is ssh.
        None if url.contains('@') && url.contains(':') => "ssh".into(),
        None => {
            return bad(
                "url",
                format!("{url:?}: give a URL with a scheme, e.g. https://"),
            )
        }
    };
    if !protocols.iter().any(|p| p.eq_ignore_ascii_case(&scheme)) {
        return bad(
            "url",
            format!(
                "scheme {scheme:?} is not allowed on this hub (--git-protocols: {})",
                protocols.join(",")
            ),
        );
    }
    if let Some((_, rest)) = url.split_once("://") {
        let authority = rest.split('/').next().unwrap_or_default();
        if authority.contains('@') && scheme != "ssh" {
            return bad(
                "url",
                "put no credentials in the URL; name a credential file instead".into(),
            );
        }
    }
    let branch_ok = !branch.is_empty()
        && !branch.starts_with('-')
        && !branch.contains("..")
        && branch
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c));
    if !branch_ok {
        return bad("branch", format!("{branch:?} is not a branch name"));
    }
    Ok(())
}

/// Clones `remote`'s branch (depth 1) and reads the templates under its path.
#[tracing::instrument(skip_all, fields(url = %remote.url, branch = %remote.branch))]
pub async fn fetch(remote: &Remote, cred: &Credential, s: &Settings) -> Result<Fetched, GitError> {
    let tmp = tempfile::Builder::new()
        .prefix("faultline-git-")
        .tempdir()
        .map_err(|e| GitError(format!("cannot make a checkout directory: {e}")))?;
    let checkout = tmp.path().join("repo");
    let checkout_s = checkout.to_string_lossy().into_owned();
    git(
        tmp.path(),
        &remote.url,
        cred,
        s,
        &[
            "clone",
            "--quiet",
            "--depth",
            "1",
            "--single-branch",
            "--no-tags",
            "--branch",
            &remote.branch,
            "--",
            &remote.url,
            &checkout_s,
        ],
    )
    .await?;
    let commit = git(
        tmp.path(),
        &remote.url,
        &Credential::None,
        s,
        &["-C", &checkout_s, "rev-parse", "HEAD"],
    )
    .await?
    .trim()
    .to_string();
    let root = if remote.path.is_empty() {
        checkout.clone()
    } else {
        checkout.join(&remote.path)
    };
    if !root.is_dir() {
        return Err(GitError(format!(
            "path {:?} is not a directory at commit {commit}",
            remote.path
        )));
    }
    let max = s.max_bytes;
    let files = tokio::task::spawn_blocking(move || {
        let files = crate::gitops::read_dir(&root)?;
        let total: u64 = files.iter().map(|f| f.yaml.len() as u64).sum();
        if total > max {
            return Err(std::io::Error::other(format!(
                "the templates under the path are {total} bytes, more than --git-max-mib"
            )));
        }
        Ok(files)
    })
    .await
    .map_err(|e| GitError(format!("reading the checkout: {e}")))?
    .map_err(|e| GitError(format!("reading the checkout: {e}")))?;
    drop(tmp);
    Ok(Fetched { commit, files })
}

/// Runs one git command: no shell, a clean environment, killed after the timeout; returns its
/// stdout (capped), or an error with the end of its stderr.
async fn git(
    home: &Path,
    url: &str,
    cred: &Credential,
    s: &Settings,
    args: &[&str],
) -> Result<String, GitError> {
    let mut cmd = tokio::process::Command::new("git");
    cmd.args(args)
        .env_clear()
        .env(
            "PATH",
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
        )
        .env("HOME", home)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_ALLOW_PROTOCOL", s.protocols.join(":"))
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // ssh without prompts, the key only, host keys learned on first use into the temporary
    // home (pin them with a known_hosts in a later change).
    let mut ssh = format!(
        "ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile={}/known_hosts -o ConnectTimeout=15",
        home.display()
    );
    match cred {
        Credential::None => {}
        Credential::SshKey(key) => {
            ssh.push_str(&format!(" -o IdentitiesOnly=yes -i '{}'", key.display()));
        }
        Credential::HttpsToken(file) => {
            let token = std::fs::read_to_string(file)
                .map_err(|e| GitError(format!("cannot read the credential file: {}", e.kind())))?;
            use base64::Engine;
            let basic = base64::engine::general_purpose::STANDARD
                .encode(format!("x-access-token:{}", token.trim()));
            // Through the environment, which other users cannot read, not the command line;
            // scoped to the repository's URL, and no redirects, so no other host gets it.
            cmd.env("GIT_CONFIG_COUNT", "2")
                .env("GIT_CONFIG_KEY_0", format!("http.{url}.extraHeader"))
                .env(
                    "GIT_CONFIG_VALUE_0",
                    format!("Authorization: Basic {basic}"),
                )
                .env("GIT_CONFIG_KEY_1", "http.followRedirects")
                .env("GIT_CONFIG_VALUE_1", "false");
        }
    }
    cmd.env("GIT_SSH_COMMAND", ssh);
    let mut child = cmd
        .spawn()
        .map_err(|e| GitError(format!("cannot run git: {e}")))?;
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    let work = async {
        let (mut o, mut e) = (Vec::new(), Vec::new());
        let read_o = async {
            (&mut out).take(MAX_OUTPUT).read_to_end(&mut o).await?;
            tokio::io::copy(&mut out, &mut tokio::io::sink()).await
        };
        let read_e = async {
            (&mut err).take(MAX_OUTPUT).read_to_end(&mut e).await?;
            tokio::io::copy(&mut err, &mut tokio::io::sink()).await
        };
        let (a, b, status) = tokio::join!(read_o, read_e, child.wait());
        a.and(b)
            .map_err(|e| GitError(format!("reading git's output: {e}")))?;
        let status = status.map_err(|e| GitError(format!("waiting for git: {e}")))?;
        Ok::<_, GitError>((status, o, e))
    };
    let (status, o, e) = tokio::time::timeout(s.timeout, work)
        .await
        .map_err(|_| GitError(format!("git {} took longer than {:?}", args[0], s.timeout)))??;
    if !status.success() {
        let text = String::from_utf8_lossy(&e);
        // The first lines say why (ssh's "connect to host … refused", "Permission denied",
        // git's "Remote branch … not found"); the rest is advice.
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .take(6)
            .collect();
        let tail: String = lines.join("; ").chars().take(1000).collect();
        return Err(GitError(format!(
            "git {} failed ({status}): {tail}",
            if args[0] == "-C" { args[2] } else { args[0] }
        )));
    }
    Ok(String::from_utf8_lossy(&o).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remotes_are_checked_before_git_sees_them() {
        let p = vec!["https".to_string(), "ssh".to_string()];
        assert!(check_remote("https://git.example/a/b.git", "main", &p).is_ok());
        assert!(check_remote("git@git.example:a/b.git", "release/1.2", &p).is_ok());
        assert!(check_remote("ssh://git@git.example/a/b.git", "main", &p).is_ok());
        for (url, branch, field) in [
            ("file:///srv/repo.git", "main", "url"),
            ("https://user:pw@git.example/a.git", "main", "url"),
            ("--upload-pack=x", "main", "url"),
            ("https://git.example/a.git", "-b", "branch"),
            ("https://git.example/a.git", "a..b", "branch"),
            ("https://git.example/a.git", "a b", "branch"),
        ] {
            let e = check_remote(url, branch, &p).unwrap_err();
            assert_eq!(e.0, field, "{url} {branch}: {e:?}");
        }
    }
}
