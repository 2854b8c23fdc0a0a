//! Custom actions: a method step's `action` and `undo`, and the rollbacks after the method. Each
//! runs at most its `timeout` through the [`Sandbox`] (allowed programs and addresses only). A
//! command is done when it exits with `expectExit` (default 0), a request when its status is
//! `expectStatus` (default any 2xx). A command's output stays on the host unless the action sets
//! `captureOutput: true`.
//!
//! An `undo` is journalled like a fault's revert (kind [`UNDO_KIND`], before its action runs) and
//! run by [`undo`] when the method ends, when the run is stopped, and by [`recover`] after a
//! restart; its entry goes once it has run, whatever its outcome, as a fault's goes once
//! reverted.
use crate::{
    faults::{Applied, RunCtx},
    journal::Journal,
    sandbox::{egress::MAX_REDIRECTS, Sandbox},
};
use faultline_experiment::{
    events::{ActionEvent, RollbackDone},
    template::{Action, CommandAction, HttpAction, PlannedAction, Rollback},
};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The journal kind of an action step's undo.
pub const UNDO_KIND: &str = "action-undo";
/// Journal steps of undos start here, clear of fault ordinals (a journal entry is named by run and
/// step).
const UNDO_STEP_BASE: usize = 1_000_000;

/// How an action ended.
pub struct Done {
    pub ok: bool,
    /// What ran and how it ended; never its output.
    pub detail: String,
    /// At most 4 KiB of stdout and of stderr, with `captureOutput: true`.
    pub output: Option<String>,
}

/// Runs `a` once, at most its timeout.
pub async fn run(sandbox: &Sandbox, a: &Action) -> Done {
    let mut output = None;
    let result = match (&a.command, &a.http) {
        (Some(c), _) => command(sandbox, c, a.timeout.0, &mut output).await,
        (None, Some(h)) => http(sandbox, h, a.timeout.0).await,
        (None, None) => Err("the action names no command and no request".into()),
    };
    let (ok, detail) = match result {
        Ok(d) => (true, d),
        Err(d) => (false, d),
    };
    Done { ok, detail, output }
}

/// What `a` runs, for `action.started`: the program, or the method and URL.
pub fn describe(a: &Action) -> String {
    match (&a.command, &a.http) {
        (Some(c), _) => faultline_experiment::policy::program_of(&c.run, &c.shell),
        (None, Some(h)) => format!("{} {}", h.method, h.url),
        (None, None) => String::new(),
    }
}

/// What `a` would run, checked against the policy without running it: the program must be
/// allowed, an IP-literal URL's address too (names are checked when they are dialled).
pub fn check(sandbox: &Sandbox, a: &Action) -> Result<(), String> {
    match (&a.command, &a.http) {
        (Some(c), _) => sandbox
            .command(&c.run, &c.shell, &c.env, c.workdir.as_deref())
            .map(drop),
        (None, Some(h)) => {
            let url = reqwest::Url::parse(&h.url).map_err(|e| format!("invalid url: {e}"))?;
            sandbox.check_url(&url)
        }
        (None, None) => Err("the action names no command and no request".into()),
    }
}

/// A rollback after the method; a failure is reported and never changes the verdict.
pub async fn rollback(sandbox: &Sandbox, index: usize, r: &Rollback) -> RollbackDone {
    let done = run(sandbox, &r.action()).await;
    RollbackDone {
        index,
        name: r.name.clone().unwrap_or_default(),
        ok: done.ok,
        detail: done.detail,
        output: done.output,
    }
}

/// An undo as the journal keeps it: enough to run it and report it after a restart.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UndoRecord {
    step: usize,
    path: String,
    #[serde(default)]
    name: String,
    undo: Action,
}

/// Journals `undo`, the undo of action step `a` (call before running the action).
pub fn journal_undo(
    journal: &Journal,
    run_id: &str,
    a: &PlannedAction,
    undo: &Action,
) -> anyhow::Result<()> {
    let record = UndoRecord {
        step: a.step,
        path: a.path.clone(),
        name: a.name.clone().unwrap_or_default(),
        undo: undo.clone(),
    };
    let ctx = RunCtx {
        run_id,
        step: UNDO_STEP_BASE + a.step,
    };
    let entry = Applied::new(
        ctx,
        UNDO_KIND,
        format!("undo of {}", a.path),
        serde_json::to_value(record)?,
    );
    journal.record(&entry)
}

/// Runs a journalled undo and forgets it; the event to report. An entry that cannot be read is
/// kept for a human (logged), like an unreadable fault entry.
pub async fn undo(sandbox: &Sandbox, journal: &Journal, entry: &Applied) -> Option<ActionEvent> {
    let record: UndoRecord = match serde_json::from_value(entry.data.clone()) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(run_id = %entry.run_id, step = entry.step, error = %e, "unreadable undo in the journal; run it by hand");
            return None;
        }
    };
    let done = run(sandbox, &record.undo).await;
    if let Err(e) = journal.remove(&entry.run_id, entry.step) {
        tracing::error!(run_id = %entry.run_id, step = entry.step, error = format!("{e:#}"), "failed to remove a journalled undo");
    }
    tracing::info!(run_id = %entry.run_id, step = record.step, path = %record.path, ok = done.ok, detail = %done.detail, "action undone");
    Some(ActionEvent {
        step: record.step,
        path: record.path,
        name: record.name,
        ok: Some(done.ok),
        detail: done.detail,
        background: false,
        output: done.output,
    })
}

/// The undos a run has journalled and not yet run, newest first.
pub fn pending_undos(journal: &Journal, run_id: &str) -> Vec<Applied> {
    let mut undos: Vec<Applied> = journal
        .entries_for(run_id)
        .into_iter()
        .filter(|a| a.kind == UNDO_KIND)
        .collect();
    undos.reverse();
    undos
}

/// After a restart: runs every undo a previous process left journalled, newest first. Returns
/// how many ran.
pub async fn recover(sandbox: &Sandbox, journal: &Journal) -> anyhow::Result<usize> {
    let mut entries: Vec<Applied> = journal
        .entries()?
        .into_iter()
        .filter(|a| a.kind == UNDO_KIND)
        .collect();
    entries.reverse();
    let mut ran = 0;
    for e in &entries {
        if let Some(ev) = undo(sandbox, journal, e).await {
            ran += 1;
            tracing::warn!(run_id = %e.run_id, path = %ev.path, ok = ev.ok, detail = %ev.detail, "ran an undo left journalled by a previous run of the delegate");
        }
    }
    Ok(ran)
}

async fn command(
    sandbox: &Sandbox,
    c: &CommandAction,
    timeout: Duration,
    captured: &mut Option<String>,
) -> Result<String, String> {
    let prepared = sandbox.command(&c.run, &c.shell, &c.env, c.workdir.as_deref())?;
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
    if out.status.code() == Some(c.expect_exit) {
        Ok(line)
    } else if c.expect_exit != 0 {
        Err(format!("{line}, expected exit {}", c.expect_exit))
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
    match h.expect_status {
        Some(want) if status.as_u16() == want => Ok(line),
        Some(want) => Err(format!("{line}, expected {want}")),
        None if status.is_success() => Ok(line),
        None => Err(line),
    }
}
