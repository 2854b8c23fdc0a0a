//! Rollbacks: actions a template asks for after its method, whatever the outcome. Each runs at
//! most its `timeout`; a failure is reported (`rollback.done` with `ok: false`) and never
//! changes the verdict.
use faultline_spec::{
    events::RollbackDone,
    template::{CommandAction, HttpAction, Rollback},
};
use std::{process::Stdio, time::Duration};
use tokio::{io::AsyncReadExt, process::Command};

/// Output kept in a rollback's detail.
const MAX_OUTPUT: usize = 4096;

pub async fn run(index: usize, r: &Rollback) -> RollbackDone {
    let result = match (&r.command, &r.http) {
        (Some(c), _) => command(c, r.timeout.0).await,
        (None, Some(h)) => http(h, r.timeout.0).await,
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
    }
}

async fn command(c: &CommandAction, timeout: Duration) -> Result<String, String> {
    let mut cmd = match (&c.shell, c.run.split_first()) {
        (Some(script), _) => {
            let mut cmd = Command::new("/bin/sh");
            cmd.arg("-c").arg(script);
            cmd
        }
        (None, Some((prog, args))) => {
            let mut cmd = Command::new(prog);
            cmd.args(args);
            cmd
        }
        (None, None) => return Err("nothing to run".into()),
    };
    cmd.envs(&c.env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let what = c.shell.clone().unwrap_or_else(|| c.run.join(" "));
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {what}: {e}"))?;
    let (mut out, mut err) = (child.stdout.take(), child.stderr.take());
    let run = async {
        let (mut o, mut e) = (Vec::new(), Vec::new());
        let read_o = async {
            if let Some(s) = out.as_mut() {
                let _ = s.take(MAX_OUTPUT as u64).read_to_end(&mut o).await;
            }
        };
        let read_e = async {
            if let Some(s) = err.as_mut() {
                let _ = s.take(MAX_OUTPUT as u64).read_to_end(&mut e).await;
            }
        };
        let (_, _, status) = tokio::join!(read_o, read_e, child.wait());
        (status, o, e)
    };
    match tokio::time::timeout(timeout, run).await {
        Err(_) => Err(format!("{what}: timed out after {timeout:?}; killed")),
        Ok((Err(e), _, _)) => Err(format!("{what}: {e}")),
        Ok((Ok(status), o, e)) => {
            let text = String::from_utf8_lossy(if status.success() { &o } else { &e })
                .trim()
                .to_string();
            let line = if text.is_empty() {
                format!("{what}: {status}")
            } else {
                format!("{what}: {status}: {text}")
            };
            if status.success() {
                Ok(line)
            } else {
                Err(line)
            }
        }
    }
}

async fn http(h: &HttpAction, timeout: Duration) -> Result<String, String> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(timeout)
        .build()
        .map_err(|e| format!("cannot build an http client: {e}"))?;
    let method = reqwest::Method::from_bytes(h.method.as_bytes())
        .map_err(|_| format!("unsupported method {:?}", h.method))?;
    let mut req = client.request(method, &h.url);
    for (k, v) in &h.headers {
        req = req.header(k, v);
    }
    if let Some(b) = &h.body {
        req = req.body(b.clone());
    }
    let resp = req
        .send()
        .await
        .map_err(|e| format!("{} {}: {e}", h.method, h.url))?;
    let status = resp.status();
    let line = format!("{} {}: {status}", h.method, h.url);
    if status.is_success() {
        Ok(line)
    } else {
        Err(line)
    }
}
