//! The hub's command-line clients: the CI/CD gate `faultline run` (`gate.rs`, following a run
//! over the `runEvents` WebSocket in `ws.rs`), `faultline run list|show|abort` (`runs.rs`) and
//! `faultline template apply|list` (`templates.rs`), `faultline template sync` (`sync.rs`), all through one GraphQL client
//! (`graphql.rs`) with an API token. They own no hub state and never touch the database.
pub mod gate;
pub mod graphql;
pub mod runs;
pub mod sync;
pub mod templates;
pub mod ws;

pub use gate::run;
pub use graphql::{Client, ClientError};

use crate::config::HubArgs;
use serde_json::{json, Value};

/// Exit codes, documented in docs/ci.md.
pub mod exit {
    pub const PASSED: u8 = 0;
    /// Hypothesis failed, or score below `--min-score`.
    pub const FAILED: u8 = 1;
    /// Usage, authentication or validation error (the run never started).
    pub const USAGE: u8 = 2;
    /// Timed out (the run was aborted), ABORTED or ERROR; for the other subcommands, the hub
    /// could not be reached.
    pub const NOT_CONCLUSIVE: u8 = 3;
    pub const SIGINT: u8 = 130;
    pub const SIGTERM: u8 = 143;
}

/// The client of `args`' hub, or the message to print (exit 2).
pub fn connect(args: &HubArgs) -> Result<Client, ClientError> {
    let hub = args.hub.as_deref().ok_or_else(|| {
        ClientError::Usage("the hub's URL is required: set FAULTLINE_HUB or --hub".into())
    })?;
    let token = args.token.as_ref().ok_or_else(|| {
        ClientError::Usage("an API token is required: set FAULTLINE_TOKEN or --token".into())
    })?;
    Client::new(hub, &token.0, args.hub_ca.as_deref())
}

/// The project to name: `--project`, else the API token's (an API token belongs to one).
pub async fn project(client: &Client, args: &HubArgs) -> Result<String, ClientError> {
    if let Some(p) = &args.project {
        return Ok(p.clone());
    }
    let d = client
        .gql("query { me { projects { project { name } } } }", json!({}))
        .await?;
    Ok(d["me"]["projects"][0]["project"]["name"]
        .as_str()
        .unwrap_or("default")
        .to_string())
}

/// The exit code of a client error: the caller's fault (2) or the hub's / network's (3).
pub fn error_code(e: &ClientError) -> u8 {
    match e {
        ClientError::Usage(_) | ClientError::Refused { .. } => exit::USAGE,
        ClientError::Transport(_) => exit::NOT_CONCLUSIVE,
    }
}

/// A plain text table: a header and rows, columns padded to their widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut w: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<width$}  ", width = w[i]));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(header.to_vec());
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

/// A JSON value as a table cell: strings bare, null empty.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => format!("{f:.1}"),
            _ => n.to_string(),
        },
        v => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_pad_columns() {
        let t = table(
            &["ID", "STATUS"],
            &[
                vec!["abc".into(), "PASSED".into()],
                vec!["a".into(), "".into()],
            ],
        );
        assert_eq!(t, "ID   STATUS\nabc  PASSED\na\n");
        assert_eq!(cell(&json!(81.25)), "81.2");
        assert_eq!(cell(&json!(3)), "3");
        assert_eq!(cell(&Value::Null), "");
    }
}
