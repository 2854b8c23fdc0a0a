//! Rollbacks: actions a template asks for after its method, whatever the outcome. Each runs at
//! most its `timeout` through the [`Sandbox`] (allowed programs and addresses only); a failure
//! is reported (`rollback.done` with `ok: false`) and never changes the verdict. A command's
//! output stays on the host unless the rollback sets `captureOutput: true`.
use crate::sandbox::{egress::MAX_REDIRECTS, Sandbox};
use faultline_experiment::{
    events::RollbackDone,
    template::{CommandAction, HttpAction, Rollback},
};
use std::time::Duration;

pub async fn run(sandbox: &Sandbox, index: usize, r: &Rollback) -> RollbackDone {
    let mut output = None;
    let result = match (&r.command, &r.http) {
        (Some(c), _) => command(sandbox, c, r.timeout.0, &mut output).await,
        (None, Some(h)) => http(sandbox, h, r.timeout.0).await,
        (None, None) => Err("the rollback names no action".into()),
    };
    let (ok, detail) = match result {
        Ok(d) => (true, d),
        Err(d) => (false, d),
    };
    RollbackDone {
        index,
        name: r.name.clone().unwrap_or_default(),
        ok,
        detail,
        output,
    }
}

async fn command(
    sandbox: &Sandbox,
    c: &CommandAction,
    timeout: Duration,
    captured: &mut Option<String>,
) -> Result<String, String> {
    let prepared = sandbox.command(&c.run, &c.shell, &c.env, None)?;
    let what = prepared.program.clone();
    let out = match tokio::time::timeout(timeout, prepared.output()).await {
        // Dropping the run killed the program's process group.
        Err(_) => return Err(format!("{what}: timed out after {timeout:?}; killed")),
        Ok(r) => r?,
    };
    if c.capture_output {
        *captured = Some(out.captured());
    }
    let line = format!("{what}: {}", out.status);
    if out.status.success() {
        Ok(line)
    } else {
        Err(line)
    }
}

async fn http(sandbox: &Sandbox, h: &HttpAction, timeout: Duration) -> Result<String, String> {
    let client = sandbox
        .http_client(MAX_REDIRECTS)
        .timeout(timeout)
        .build()
        .map_err(|e| format!("cannot build an http client: {e}"))?;
    let method = reqwest::Method::from_bytes(h.method.as_bytes())
        .map_err(|_| format!("unsupported method {:?}", h.method))?;
    let url = reqwest::Url::parse(&h.url).map_err(|e| format!("invalid url: {e}"))?;
    sandbox.check_url(&url)?;
    let mut req = client.request(method, url);
    for (k, v) in &h.headers {
        req = req.header(k, v);
    }
    if let Some(b) = &h.body {
        req = req.body(b.clone());
    }
    let resp = req.send().await.map_err(|e| {
        format!(
            "{} {}: {}",
            h.method,
            h.url,
            crate::probes::describe_http(&e)
        )
    })?;
    let status = resp.status();
    let line = format!("{} {}: {status}", h.method, h.url);
    if status.is_success() {
        Ok(line)
    } else {
        Err(line)
    }
}
