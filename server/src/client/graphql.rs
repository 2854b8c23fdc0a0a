//! The GraphQL client the command-line clients share: POST `/graphql` with an API token
//! (Bearer), the hub's CA when given, bounded connect / request times and response sizes, and
//! the hub's errors kept with their code and extensions (field, line, column).
use serde_json::{json, Value};
use std::time::Duration;

/// The largest GraphQL response read (a run with many events is the biggest).
const MAX_RESPONSE: usize = 32 << 20;

/// What went wrong talking to the hub, split by whether it is the caller's fault (exit 2).
#[derive(Debug)]
pub enum ClientError {
    /// Bad usage, or the hub refused the credentials.
    Usage(String),
    /// The hub answered with a GraphQL error: its `extensions.code` (may be empty), message
    /// and extensions (`field`, `line`, `column`, `hint` for template problems).
    Refused {
        code: String,
        message: String,
        extensions: Value,
    },
    /// Network or server trouble.
    Transport(String),
}

impl ClientError {
    /// `LINE:COL` of a template problem the hub located, when it did.
    pub fn location(&self) -> Option<(u64, u64)> {
        match self {
            ClientError::Refused { extensions: x, .. } => {
                Some((x["line"].as_u64()?, x["column"].as_u64()?))
            }
            _ => None,
        }
    }
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Usage(m) | ClientError::Transport(m) => f.write_str(m),
            ClientError::Refused {
                code,
                message,
                extensions,
            } => {
                if !code.is_empty() {
                    write!(f, "{code}: ")?;
                }
                f.write_str(message)?;
                match extensions["field"].as_str() {
                    Some(field) if !field.is_empty() && !message.contains(field) => {
                        write!(f, " (field {field})")
                    }
                    _ => Ok(()),
                }
            }
        }
    }
}

/// An error with its causes (reqwest's own message leaves out why a connection failed).
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        // Some errors already print their source.
        let c_text = c.to_string();
        if !out.contains(&c_text) {
            out.push_str(": ");
            out.push_str(&c_text);
        }
        cur = c.source();
    }
    out
}

/// Reads a response body of at most [`MAX_RESPONSE`] bytes.
async fn read_body(mut resp: reqwest::Response) -> Result<Vec<u8>, ClientError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| ClientError::Transport(format!("reading the hub's answer: {}", chain(&e))))?
    {
        if bytes.len() + chunk.len() > MAX_RESPONSE {
            return Err(ClientError::Transport(format!(
                "the hub's answer is larger than {} MiB",
                MAX_RESPONSE >> 20
            )));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// A GraphQL client of one hub with one API token.
pub struct Client {
    http: reqwest::Client,
    /// The hub's base URL without a trailing slash.
    pub hub: String,
    /// Sent as `Authorization: Bearer` (and in the WebSocket's `connection_init`).
    pub(crate) token: String,
    /// `--hub-ca`, kept for the WebSocket's own TLS client.
    pub(crate) ca_pem: Option<Vec<u8>>,
}

impl Client {
    pub fn new(
        hub: &str,
        token: &str,
        ca: Option<&std::path::Path>,
    ) -> Result<Client, ClientError> {
        let mut b = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30));
        let mut ca_pem = None;
        if let Some(ca) = ca {
            let pem = std::fs::read(ca).map_err(|e| {
                ClientError::Usage(format!("--hub-ca: cannot read {}: {e}", ca.display()))
            })?;
            let cert = reqwest::Certificate::from_pem(&pem)
                .map_err(|e| ClientError::Usage(format!("--hub-ca: not a PEM certificate: {e}")))?;
            b = b.add_root_certificate(cert);
            ca_pem = Some(pem);
        }
        let http = b
            .build()
            .map_err(|e| ClientError::Usage(format!("cannot build the HTTP client: {e}")))?;
        Ok(Client {
            http,
            hub: hub.trim_end_matches('/').to_string(),
            token: token.to_string(),
            ca_pem,
        })
    }

    /// Runs one query or mutation; `data` on success.
    pub async fn gql(&self, query: &str, vars: Value) -> Result<Value, ClientError> {
        let resp = self
            .http
            .post(format!("{}/graphql", self.hub))
            .bearer_auth(&self.token)
            .json(&json!({"query": query, "variables": vars}))
            .send()
            .await
            .map_err(|e| ClientError::Transport(format!("cannot reach the hub: {}", chain(&e))))?;
        let status = resp.status();
        let bytes = read_body(resp).await?;
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if let Some(e) = body.get("errors").and_then(|e| e.get(0)) {
            let message = e["message"].as_str().unwrap_or("error").to_string();
            let code = e["extensions"]["code"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if code == "INTERNAL" || code == "RATE_LIMITED" {
                return Err(ClientError::Transport(format!("{code}: {message}")));
            }
            return Err(ClientError::Refused {
                code,
                message,
                extensions: e["extensions"].clone(),
            });
        }
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(ClientError::Usage(format!(
                "the hub refused the token (HTTP {status})"
            )));
        }
        if !status.is_success() {
            return Err(ClientError::Transport(format!(
                "HTTP {status} from the hub"
            )));
        }
        Ok(body["data"].clone())
    }

    /// GETs a document of the hub's plain-HTTP API (`segments` joined as the path, each
    /// escaped); its bytes on success. The hub's errors (`{"error", "code"}`) are mapped as
    /// GraphQL's are: a refused token or request is the caller's, the rest the hub's.
    pub async fn get(
        &self,
        segments: &[&str],
        query: &[(&str, &str)],
    ) -> Result<Vec<u8>, ClientError> {
        let mut url = reqwest::Url::parse(&self.hub)
            .map_err(|e| ClientError::Usage(format!("the hub's URL {:?}: {e}", self.hub)))?;
        url.path_segments_mut()
            .map_err(|_| ClientError::Usage(format!("the hub's URL {:?} has no path", self.hub)))?
            .pop_if_empty()
            .extend(segments);
        url.query_pairs_mut().extend_pairs(query);
        let resp = self
            .http
            .get(url)
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| ClientError::Transport(format!("cannot reach the hub: {}", chain(&e))))?;
        let status = resp.status();
        let bytes = read_body(resp).await?;
        if status.is_success() {
            return Ok(bytes);
        }
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let code = body["code"].as_str().unwrap_or_default().to_string();
        let message = body["error"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| format!("HTTP {status} from the hub"));
        match status.as_u16() {
            401 => Err(ClientError::Usage(format!(
                "the hub refused the token (HTTP {status}): {message}"
            ))),
            400..=499 if code != "RATE_LIMITED" => Err(ClientError::Refused {
                code,
                message,
                extensions: Value::Null,
            }),
            _ => Err(ClientError::Transport(if code.is_empty() {
                message
            } else {
                format!("{code}: {message}")
            })),
        }
    }
}
