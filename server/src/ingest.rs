//! Event ingest: a delegate's batch of events, stored exactly once each under its (run_id, seq)
//! key, with what the new ones mean for their runs, in **one transaction per batch** whatever
//! the number of runs in it (a delegate's outbox interleaves its runs).
//!
//! The statements of a batch: lock and read its runs (owner, project, acknowledged prefix); read
//! which of the batch's seqs above each prefix are stored already (normally none); one plain
//! `INSERT … SELECT FROM UNNEST` of the new events (no `ON CONFLICT`: the row locks make the read
//! exact); the state changes (`run.started` in one UPDATE, `run.recovered` and `run.finished` per
//! run, rare); what is stored above a prefix that reached the top of its batch; the new contiguous
//! prefix and probe tally of every run in one UPDATE; one `pg_notify` per run that got events.
//!
//! A probe check is stored once, as its event: the hub writes a readable check in canonical
//! form (within the bounds below) and marks the row with `check_ok`; `probe_checks` is a view
//! over those rows (migration 0013). An unreadable `probe.check` is kept as an event, unmarked,
//! and counts for nothing.
use crate::error::{ApiError, ApiResult};
use crate::notify;
use crate::runs::{clean, TERMINAL};
use chrono::{DateTime, TimeZone, Utc};
use faultline_experiment::events::{self, ProbeCheck, RunFinished};
use faultline_experiment::Experiment;
use faultline_proto::v1 as pb;
use sqlx::{types::Json, PgPool, Postgres, Transaction};
use std::collections::{BTreeMap, HashSet};
use uuid::Uuid;

/// Largest event payload stored as sent; bigger ones are replaced by a marker.
const MAX_PAYLOAD: usize = 64 * 1024;
const MAX_SEQ: u64 = i64::MAX as u64;

/// One event of a batch, ready to store.
struct Incoming {
    run: Uuid,
    seq: i64,
    at: DateTime<Utc>,
    kind: String,
    /// JSON text Postgres accepts as jsonb.
    payload: String,
    /// The parsed check, for `probe.check`.
    check: Option<ProbeCheck>,
}

/// A run of the batch, as its row said.
struct Run {
    project: String,
    acked: i64,
}

/// Stores a batch of events from `delegate` exactly once each, applies the state changes of the
/// newly stored ones, and returns for each run the highest seq up to which everything is stored.
pub async fn ingest(
    pool: &PgPool,
    delegate: Uuid,
    batch: Vec<pb::Event>,
) -> ApiResult<Vec<(Uuid, u64)>> {
    let now = Utc::now();
    let mut evs: Vec<Incoming> = batch
        .into_iter()
        .filter_map(|e| incoming(delegate, e, now))
        .collect();
    if evs.is_empty() {
        return Ok(Vec::new());
    }
    evs.sort_by_key(|e| (e.run, e.seq));
    evs.dedup_by_key(|e| (e.run, e.seq));
    let mut ids: Vec<Uuid> = evs.iter().map(|e| e.run).collect();
    ids.dedup();

    let mut tx = pool.begin().await?;
    // Rows locked in id order: concurrent batches of a run serialise, and never deadlock.
    let rows: Vec<(Uuid, Option<Uuid>, String, i64)> = sqlx::query_as(
        "SELECT r.id, r.delegate_id, p.name, r.acked_seq FROM runs r JOIN projects p ON p.id = r.project_id \
         WHERE r.id = ANY($1) ORDER BY r.id FOR UPDATE OF r",
    )
    .bind(&ids)
    .fetch_all(&mut *tx)
    .await?;
    let mut runs: BTreeMap<Uuid, Run> = BTreeMap::new();
    for (id, owner, project, acked) in rows {
        if owner == Some(delegate) {
            runs.insert(id, Run { project, acked });
        }
    }
    if let Some(run) = ids.iter().find(|id| !runs.contains_key(id)) {
        return Err(ApiError::Forbidden(format!(
            "run {run} is not assigned to this delegate"
        )));
    }

    // Which events are stored already: everything up to a run's acknowledged prefix, and what
    // is stored above it up to the batch's highest seq of that run (events that arrived after a
    // gap, or a replay). Exact, because the batch holds its runs' row locks: no other batch of
    // these runs can store anything before this one commits. So the INSERT needs no ON CONFLICT
    // (a speculative insertion per row cost about half as much again as a plain one).
    let mut top: BTreeMap<Uuid, i64> = BTreeMap::new();
    for e in &evs {
        let t = top.entry(e.run).or_insert(e.seq);
        *t = (*t).max(e.seq);
    }
    let unsure: Vec<(Uuid, i64, i64)> = top
        .iter()
        .map(|(id, t)| (*id, runs[id].acked, *t))
        .filter(|(_, acked, t)| t > acked)
        .collect();
    let stored: HashSet<(Uuid, i64)> = if unsure.is_empty() {
        HashSet::new()
    } else {
        sqlx::query_as::<_, (Uuid, i64)>(
            "SELECT e.run_id, e.seq FROM UNNEST($1::uuid[], $2::bigint[], $3::bigint[]) AS u(id, above, upto) \
             JOIN run_events e ON e.run_id = u.id AND e.seq > u.above AND e.seq <= u.upto",
        )
        .bind(unsure.iter().map(|u| u.0).collect::<Vec<_>>())
        .bind(unsure.iter().map(|u| u.1).collect::<Vec<_>>())
        .bind(unsure.iter().map(|u| u.2).collect::<Vec<_>>())
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect()
    };
    let new: Vec<&Incoming> = evs
        .iter()
        .filter(|e| e.seq > runs[&e.run].acked && !stored.contains(&(e.run, e.seq)))
        .collect();
    if !new.is_empty() {
        sqlx::query(
            "INSERT INTO run_events (run_id, seq, at, kind, payload, check_ok) \
             SELECT u.run_id, u.seq, u.at, u.kind, u.payload::jsonb, u.check_ok \
             FROM UNNEST($1::uuid[], $2::bigint[], $3::timestamptz[], $4::text[], $5::text[], $6::bool[]) \
               AS u(run_id, seq, at, kind, payload, check_ok)",
        )
        .bind(new.iter().map(|e| e.run).collect::<Vec<_>>())
        .bind(new.iter().map(|e| e.seq).collect::<Vec<_>>())
        .bind(new.iter().map(|e| e.at).collect::<Vec<_>>())
        .bind(new.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>())
        .bind(new.iter().map(|e| e.payload.as_str()).collect::<Vec<_>>())
        .bind(new.iter().map(|e| e.check.as_ref().map(|c| c.ok)).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await?;
    }
    let checked = apply_effects(&mut tx, delegate, &runs, &new).await?;

    // Extend each run's contiguous prefix: through this batch and what was stored within its
    // range (walked together in seq order), then through anything stored earlier above it (a
    // batch that arrived after a gap).
    let mut prefix: BTreeMap<Uuid, i64> = runs.iter().map(|(id, r)| (*id, r.acked)).collect();
    let mut within: Vec<(Uuid, i64)> = evs
        .iter()
        .map(|e| (e.run, e.seq))
        .chain(stored.iter().copied())
        .collect();
    within.sort_unstable();
    for (run, seq) in within {
        let p = prefix
            .get_mut(&run)
            .expect("every run of the batch is read");
        if seq == *p + 1 {
            *p = seq;
        }
    }
    // Only a run whose prefix reached the top of its batch can go on above it.
    let reached: Vec<(Uuid, i64)> = prefix
        .iter()
        .filter(|(id, p)| top.get(id) == Some(p))
        .map(|(id, p)| (*id, *p))
        .collect();
    if !reached.is_empty() {
        let above: Vec<(Uuid, i64)> = sqlx::query_as(
            "SELECT u.id, s.seq FROM UNNEST($1::uuid[], $2::bigint[]) AS u(id, from_seq) \
             CROSS JOIN LATERAL (SELECT seq FROM run_events WHERE run_id = u.id AND seq > u.from_seq ORDER BY seq LIMIT 100000) s \
             ORDER BY u.id, s.seq",
        )
        .bind(reached.iter().map(|r| r.0).collect::<Vec<_>>())
        .bind(reached.iter().map(|r| r.1).collect::<Vec<_>>())
        .fetch_all(&mut *tx)
        .await?;
        for (id, seq) in above {
            let p = prefix.get_mut(&id).expect("asked for this run");
            if seq == *p + 1 {
                *p = seq;
            }
        }
    }
    // One UPDATE for every run whose prefix moved or that got checks: the prefix and the tally.
    let moved: Vec<(Uuid, i64, i32, i32)> = prefix
        .iter()
        .map(|(id, p)| {
            let (ok, failed) = checked.get(id).copied().unwrap_or_default();
            (*id, *p, ok, failed)
        })
        .filter(|(id, p, ok, failed)| runs[id].acked != *p || *ok + *failed > 0)
        .collect();
    if !moved.is_empty() {
        sqlx::query(
            "UPDATE runs r SET acked_seq = u.acked, checks_ok = r.checks_ok + u.ok, checks_failed = r.checks_failed + u.failed \
             FROM UNNEST($1::uuid[], $2::bigint[], $3::int[], $4::int[]) AS u(id, acked, ok, failed) WHERE r.id = u.id",
        )
        .bind(moved.iter().map(|m| m.0).collect::<Vec<_>>())
        .bind(moved.iter().map(|m| m.1).collect::<Vec<_>>())
        .bind(moved.iter().map(|m| m.2).collect::<Vec<_>>())
        .bind(moved.iter().map(|m| m.3).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await?;
    }
    let mut touched: Vec<String> = new.iter().map(|e| e.run.to_string()).collect();
    touched.dedup();
    if !touched.is_empty() {
        notify::notify_many(&mut *tx, notify::EVENTS, &touched).await?;
    }
    tx.commit().await?;

    // Counted once stored: a replayed duplicate is not fresh.
    let m = crate::metrics::get();
    // One increment per kind in the batch, not per event.
    let mut by_kind: BTreeMap<&str, u64> = BTreeMap::new();
    for e in &new {
        *by_kind.entry(e.kind.as_str()).or_default() += 1;
    }
    for (kind, n) in by_kind {
        m.events(kind, n);
    }
    let (ok, failed) = checked
        .values()
        .fold((0, 0), |a, c| (a.0 + c.0 as u64, a.1 + c.1 as u64));
    m.checks(ok, failed);
    Ok(prefix.into_iter().map(|(id, p)| (id, p as u64)).collect())
}

/// The event ready to store, or `None` (logged) when it is malformed: dropping it rather than
/// failing the batch, since resending would fail the same way forever and stall every run of
/// the delegate.
fn incoming(delegate: Uuid, e: pb::Event, now: DateTime<Utc>) -> Option<Incoming> {
    let (run, seq) = match (e.run_id.parse::<Uuid>(), e.seq) {
        (Ok(run), 1..=MAX_SEQ) => (run, e.seq as i64),
        _ => {
            tracing::warn!(%delegate, run_id = %e.run_id, seq = e.seq, "dropping a malformed event");
            return None;
        }
    };
    // The delegate's clock is informational; one that is off by more than a day is replaced.
    let at = Utc
        .timestamp_millis_opt(e.at_ms)
        .single()
        .filter(|t| (*t - now).num_hours().abs() < 24)
        .unwrap_or(now);
    let kind = clean(&e.kind, 64);
    let (payload, check) = payload(&kind, e.payload_json);
    Some(Incoming {
        run,
        seq,
        at,
        kind,
        payload,
        check,
    })
}

/// The payload as jsonb text, and the check it holds for `probe.check`. A readable check is
/// stored in canonical form, within [`bounded`]'s limits (what `probe_checks` reads back);
/// anything else goes through a full parse, which also drops what jsonb refuses (NUL, lone
/// surrogates).
fn payload(kind: &str, text: String) -> (String, Option<ProbeCheck>) {
    if text.len() > MAX_PAYLOAD {
        let marker = serde_json::json!({"truncated": true, "bytes": text.len()});
        return (marker.to_string(), None);
    }
    let text = if text.contains("\\u") {
        text.replace("\\u0000", "")
    } else {
        text
    };
    if kind == events::PROBE_CHECK {
        if let Some(c) = serde_json::from_str::<ProbeCheck>(&text)
            .ok()
            .and_then(bounded)
        {
            if let Ok(canonical) = serde_json::to_string(&c) {
                return (canonical, Some(c));
            }
        }
    }
    let value = serde_json::from_str::<serde_json::Value>(&text)
        .unwrap_or_else(|_| serde_json::json!({"raw": clean(&text, MAX_PAYLOAD)}));
    (value.to_string(), None)
}

/// The check within what is stored: names and texts capped and stripped of NUL (which jsonb
/// refuses), attempts at most 1000, at most 64 ordinals; `None` when its step or an ordinal does
/// not fit an `int` (it is then kept as an event that counts for nothing).
fn bounded(mut c: ProbeCheck) -> Option<ProbeCheck> {
    const INT: usize = i32::MAX as usize;
    c.probe = clean(&c.probe, 256);
    c.detail = clean(&c.detail, 1024);
    c.mode = clean(&c.mode, 32);
    c.output = c.output.map(|o| clean(&o, 16 * 1024));
    c.attempts = c.attempts.min(1000);
    if c.step > INT || c.counts_for.iter().any(|o| *o > INT) {
        return None;
    }
    c.counts_for.truncate(64);
    Some(c)
}

/// Applies what the batch's new events mean to their runs; returns the probe checks stored per
/// run as (ok, failed).
async fn apply_effects(
    tx: &mut Transaction<'_, Postgres>,
    delegate: Uuid,
    runs: &BTreeMap<Uuid, Run>,
    new: &[&Incoming],
) -> ApiResult<BTreeMap<Uuid, (i32, i32)>> {
    let started: Vec<Uuid> = new
        .iter()
        .filter(|e| e.kind == events::RUN_STARTED)
        .map(|e| e.run)
        .collect();
    if !started.is_empty() {
        sqlx::query("UPDATE runs SET state = 'RUNNING', started_at = COALESCE(started_at, now()) WHERE id = ANY($1) AND state IN ('PENDING', 'DISPATCHED')")
            .bind(&started)
            .execute(&mut **tx)
            .await?;
    }
    for e in new.iter().filter(|e| e.kind == events::RUN_RECOVERED) {
        let payload: serde_json::Value = serde_json::from_str(&e.payload).unwrap_or_default();
        let ms = payload.get("recoveryMs").and_then(|v| v.as_i64());
        let from = payload
            .get("from")
            .and_then(|f| serde_json::from_value::<events::RecoveryFrom>(f.clone()).ok());
        sqlx::query("UPDATE runs SET recovery_ms = $2, recovery_from = $4 WHERE id = $1 AND state <> ALL($3)")
            .bind(e.run)
            .bind(ms)
            .bind(TERMINAL)
            .bind(from.map(Json))
            .execute(&mut **tx)
            .await?;
    }
    let checks: Vec<(&Incoming, &ProbeCheck)> = new
        .iter()
        .filter(|e| e.kind == events::PROBE_CHECK)
        .filter_map(|e| match &e.check {
            Some(c) => Some((*e, c)),
            None => {
                let project = runs.get(&e.run).map(|r| r.project.as_str()).unwrap_or("");
                tracing::warn!(run_id = %e.run, %delegate, project, seq = e.seq, "malformed probe.check payload");
                None
            }
        })
        .collect();
    for e in new.iter().filter(|e| e.kind == events::RUN_FINISHED) {
        let project = runs.get(&e.run).map(|r| r.project.as_str()).unwrap_or("");
        let span = tracing::info_span!("run", run_id = %e.run, %delegate, project);
        tracing::Instrument::instrument(finish(tx, e), span).await?;
    }
    let mut tally: BTreeMap<Uuid, (i32, i32)> = BTreeMap::new();
    for (e, c) in &checks {
        let t = tally.entry(e.run).or_default();
        if c.ok {
            t.0 += 1;
        } else {
            t.1 += 1;
        }
    }
    Ok(tally)
}

/// The run's verdict, with the hub's own score from its stored checks.
async fn finish(tx: &mut Transaction<'_, Postgres>, e: &Incoming) -> ApiResult<()> {
    let run = e.run;
    let f = match serde_json::from_str::<RunFinished>(&e.payload) {
        Ok(f) => f,
        Err(err) => {
            tracing::warn!(run_id = %run, seq = e.seq, error = %err, "malformed run.finished payload");
            RunFinished {
                verdict: events::Verdict::Error,
                score: None,
                reason: format!("the delegate sent a malformed final event: {err}"),
                checks_passed: 0,
                checks_total: 0,
                recovery_ms: None,
                latency: Vec::new(),
                recovery_from: None,
            }
        }
    };
    // Only a run that measured what it promised is scored (docs/template-reference.md).
    let score = match f.verdict {
        events::Verdict::Passed | events::Verdict::Failed => recompute_score(tx, run).await?,
        events::Verdict::Aborted | events::Verdict::Error => None,
    };
    if score != f.score {
        tracing::error!(run_id = %run, hub = ?score, delegate = ?f.score, "score mismatch between hub and delegate");
    }
    tracing::info!(verdict = f.verdict.as_str(), ?score, "run finished");
    sqlx::query(
        "UPDATE runs SET state = $2, score = $3, delegate_score = $4, verdict_reason = $5, \
           recovery_ms = COALESCE($6, recovery_ms), latency = $8, recovery_from = COALESCE($9, recovery_from), \
           ended_at = now() WHERE id = $1 AND state <> ALL($7)",
    )
    .bind(run)
    .bind(f.verdict.as_str())
    .bind(score)
    .bind(f.score)
    .bind(clean(&f.reason, 2048))
    .bind(f.recovery_ms.map(|m| m as i64))
    .bind(TERMINAL)
    .bind((!f.latency.is_empty()).then(|| Json(f.latency.iter().take(64).collect::<Vec<_>>())))
    .bind(f.recovery_from.as_ref().map(Json))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The hub's own score from the stored checks, by the same rules the delegate applies.
async fn recompute_score(tx: &mut Transaction<'_, Postgres>, run: Uuid) -> ApiResult<Option<f64>> {
    let (spec,): (Json<Experiment>,) = sqlx::query_as(
        "SELECT v.spec FROM runs r JOIN template_versions v ON v.template_id = r.template_id AND v.version = r.template_version WHERE r.id = $1",
    )
    .bind(run)
    .fetch_one(&mut **tx)
    .await?;
    // One row per (fault ordinal, check): a check in a parallel group counts for each fault.
    let checks: Vec<(i32, bool)> = sqlx::query_as(
        "SELECT unnest(COALESCE(counts_for, ARRAY[step])), ok FROM probe_checks WHERE run_id = $1",
    )
    .bind(run)
    .fetch_all(&mut **tx)
    .await?;
    let weights = spec.0.weights();
    Ok(faultline_experiment::score::score(
        &weights,
        checks.into_iter().map(|(s, ok)| (s as usize, ok)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_check_is_stored_canonical_and_bounded_and_anything_else_is_made_valid_jsonb() {
        let sent = r#"{"latencyMs":1.5,"probe":"web","phase":"before","step":0,"ok":true,"detail":"200 OK","extra":1}"#;
        let (text, check) = payload(events::PROBE_CHECK, sent.to_string());
        assert_eq!(
            text,
            r#"{"probe":"web","phase":"before","step":0,"mode":"","attempts":1,"ok":true,"latencyMs":1.5,"detail":"200 OK"}"#
        );
        assert_eq!(check.unwrap().latency_ms, 1.5);

        // Within the bounds probe_checks reads back: long texts capped, attempts at most 1000,
        // at most 64 ordinals; an ordinal beyond `int` makes it no check.
        let long = format!(
            r#"{{"probe":"{}","phase":"during","step":1,"countsFor":[{}],"attempts":5000,"ok":false,"latencyMs":2,"detail":"{}"}}"#,
            "p".repeat(300),
            vec!["1"; 100].join(","),
            "d".repeat(2000)
        );
        let (text, check) = payload(events::PROBE_CHECK, long);
        let c = check.unwrap();
        assert_eq!(
            (
                c.probe.len(),
                c.detail.len(),
                c.attempts,
                c.counts_for.len()
            ),
            (256, 1024, 1000, 64)
        );
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["countsFor"].as_array().unwrap().len(), 64);
        let huge = r#"{"probe":"w","phase":"before","step":4294967296,"ok":true,"latencyMs":1,"detail":"x"}"#;
        assert!(payload(events::PROBE_CHECK, huge.into()).1.is_none());

        // NUL, which jsonb refuses, is dropped.
        let (text, check) = payload(
            events::PROBE_CHECK,
            r#"{"probe":"w\u0000eb","phase":"before","step":0,"ok":true,"latencyMs":1,"detail":"x"}"#.into(),
        );
        assert!(!text.contains("u0000"), "{text}");
        assert_eq!(check.unwrap().probe, "web");
        // A lone surrogate (jsonb refuses it too) makes the payload text kept as a string.
        let (text, check) = payload(
            events::PROBE_CHECK,
            r#"{"probe":"web","phase":"before","step":0,"ok":true,"latencyMs":1,"detail":"x\ud800"}"#.into(),
        );
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(v["raw"].as_str().unwrap().contains("x\\ud800"), "{text}");
        assert!(check.is_none());

        let (text, _) = payload("fault.applied", "not json".into());
        assert_eq!(text, r#"{"raw":"not json"}"#);
        let (text, _) = payload("x", "a".repeat(MAX_PAYLOAD + 1));
        assert!(text.contains("truncated"));
    }
}
