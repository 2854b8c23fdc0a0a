//! The outbox: every run event, numbered and persisted before it is sent, kept until the hub
//! acknowledges it.
//!
//! Per run, in `runs/`: `<run_id>.jsonl` holds one line per event (`{seq, at_ms, kind,
//! payload_json}`, `seq` counting from 1) and `<run_id>.acked` the highest acknowledged seq. In
//! memory the outbox keeps the unacknowledged events and, for the current stream, how far each
//! run has been sent. A run's files (including the `<run_id>.spec.json` the executor saves beside
//! them) are deleted once the run has finished and the hub has acknowledged all its events.
//!
//! When an event cannot be written (the state disk is full), it keeps its seq and waits in memory;
//! it is written, and only then sent, on a later push or [`Outbox::retry_unwritten`]. The hub
//! therefore never acknowledges an event that is not on disk, and a full disk delays events
//! instead of losing them (a crash while the disk is still full loses those few, but the fault
//! journal reverts the run's faults on restart either way).
//!
//! The outbox does not talk to the hub: the link pulls batches and feeds acks back.
use crate::state::{run_ids_with_suffix, sync_dir, valid_run_id, write_durable};
use anyhow::{Context, Result};
use faultline_experiment::events;
use faultline_proto::v1 as pb;
use serde::{Deserialize, Serialize};
use std::{
    collections::{BTreeMap, VecDeque},
    fs::{self, File, OpenOptions},
    io::Write,
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, Ordering},
        Mutex, MutexGuard,
    },
};
use tokio::sync::Notify;

/// Most events in one `EventBatch`.
pub const MAX_BATCH: usize = 500;

/// One event as stored on disk (and, with the run id, as sent).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct StoredEvent {
    pub seq: u64,
    pub at_ms: i64,
    pub kind: String,
    pub payload_json: String,
}

impl StoredEvent {
    /// The payload as JSON (`Null` if it is somehow not JSON).
    pub fn payload(&self) -> serde_json::Value {
        serde_json::from_str(&self.payload_json).unwrap_or_default()
    }
}

pub struct Outbox {
    dir: PathBuf,
    runs: Mutex<BTreeMap<String, RunLog>>,
    /// Wakes the link when there is something new to send.
    changed: Notify,
    /// Some events wait in memory because the last write failed; logged once per episode.
    behind: AtomicBool,
    /// The last `.acked` write failed; logged once per episode.
    acked_failing: AtomicBool,
}

struct RunLog {
    next_seq: u64,
    acked: u64,
    /// Highest seq handed to the current stream; rewound to `acked` on reconnect.
    sent: u64,
    pending: VecDeque<StoredEvent>,
    /// Highest seq written to the file; later ones wait in `pending` for the disk (and are not
    /// sent before they are written).
    written: u64,
    /// `run.finished` is among the events: the files can go once everything is acked.
    finished: bool,
    /// Opened (created) with the first event that can be written.
    file: Option<File>,
    /// Bytes in the file, to cut off a torn write.
    len: u64,
    /// Written since the last fsync.
    dirty: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Outbox {
    /// Loads what a previous process left: unacknowledged events are sent again.
    pub fn open(dir: &Path) -> Result<Self> {
        fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
        let outbox = Outbox {
            dir: dir.to_path_buf(),
            runs: Mutex::new(BTreeMap::new()),
            changed: Notify::new(),
            behind: AtomicBool::new(false),
            acked_failing: AtomicBool::new(false),
        };
        let ids = run_ids_with_suffix(dir, ".jsonl")?;
        for id in ids {
            let log = outbox.load(&id)?;
            let settled = log.finished && log.pending.is_empty();
            let unacked = log.pending.len();
            lock(&outbox.runs).insert(id.clone(), log);
            if settled {
                outbox.purge(&id);
            } else {
                tracing::info!(run_id = %id, unacked, "loaded undelivered run events");
            }
        }
        Ok(outbox)
    }

    fn events_path(&self, run_id: &str) -> PathBuf {
        self.dir.join(format!("{run_id}.jsonl"))
    }

    fn acked_path(&self, run_id: &str) -> PathBuf {
        self.dir.join(format!("{run_id}.acked"))
    }

    /// The directory holding every run's files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the executor keeps a run's spec; deleted with the run's events.
    pub fn spec_path(&self, run_id: &str) -> PathBuf {
        self.dir.join(format!("{run_id}.spec.json"))
    }

    fn load(&self, run_id: &str) -> Result<RunLog> {
        let path = self.events_path(run_id);
        let bytes =
            fs::read(&path).with_context(|| format!("failed to read {}", path.display()))?;
        // A crash can leave half a line at the end: cut it off so appends start clean.
        let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .with_context(|| format!("failed to open {}", path.display()))?;
        if complete < bytes.len() {
            tracing::warn!(%run_id, "dropping a torn event line at the end of the outbox file");
            file.set_len(complete as u64)
                .with_context(|| format!("failed to truncate {}", path.display()))?;
        }
        let acked = fs::read_to_string(self.acked_path(run_id))
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(0);
        let mut log = RunLog {
            next_seq: 1,
            acked,
            sent: acked,
            pending: VecDeque::new(),
            written: 0,
            finished: false,
            file: Some(file),
            len: complete as u64,
            dirty: false,
        };
        for line in bytes[..complete]
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
        {
            match serde_json::from_slice::<StoredEvent>(line) {
                Ok(ev) => {
                    log.next_seq = log.next_seq.max(ev.seq + 1);
                    log.written = log.written.max(ev.seq);
                    log.finished |= ev.kind == events::RUN_FINISHED;
                    if ev.seq > acked {
                        log.pending.push_back(ev);
                    }
                }
                Err(e) => {
                    tracing::warn!(%run_id, error = %e, "skipping an unreadable outbox line")
                }
            }
        }
        Ok(log)
    }

    /// Numbers, persists and queues one event. Returns its seq. An event that cannot be written
    /// now (disk full) still gets its seq and waits in memory until a later write succeeds.
    pub fn push<P: Serialize + ?Sized>(
        &self,
        run_id: &str,
        kind: &str,
        payload: &P,
    ) -> Result<u64> {
        anyhow::ensure!(valid_run_id(run_id), "invalid run id {run_id:?}");
        let payload_json =
            serde_json::to_string(payload).context("failed to encode an event payload")?;
        let (seq, wrote) = {
            let mut runs = lock(&self.runs);
            let log = runs.entry(run_id.to_string()).or_insert_with(|| RunLog {
                next_seq: 1,
                acked: 0,
                sent: 0,
                pending: VecDeque::new(),
                written: 0,
                finished: false,
                file: None,
                len: 0,
                dirty: false,
            });
            let ev = StoredEvent {
                seq: log.next_seq,
                at_ms: crate::now_ms(),
                kind: kind.to_string(),
                payload_json,
            };
            log.next_seq += 1;
            log.finished |= kind == events::RUN_FINISHED;
            log.pending.push_back(ev);
            let seq = log.next_seq - 1;
            (seq, self.write_tail(run_id, log))
        };
        let notify = matches!(wrote, Ok(true));
        self.note_write(run_id, wrote);
        if notify {
            self.changed.notify_one();
        }
        Ok(seq)
    }

    /// Appends the run's events not yet on disk, in order; `Ok(true)` if any was written. Stops
    /// at the first failure, cutting off what it wrote of that line.
    fn write_tail(&self, run_id: &str, log: &mut RunLog) -> Result<bool> {
        let mut wrote = false;
        while log.pending.back().is_some_and(|e| e.seq > log.written) {
            if log.file.is_none() {
                let path = self.events_path(run_id);
                let file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .mode(0o600)
                    .open(&path)
                    .with_context(|| format!("failed to create {}", path.display()))?;
                sync_dir(&self.dir)?;
                log.file = Some(file);
            }
            let file = log.file.as_mut().expect("opened above");
            let written = log.written;
            let ev = log
                .pending
                .iter()
                .find(|e| e.seq > written)
                .expect("an unwritten event");
            let mut line = serde_json::to_vec(ev).context("failed to encode an event")?;
            line.push(b'\n');
            if let Err(e) = file.write_all(&line) {
                // Never leave half a line for the next event to be glued to.
                let _ = file.set_len(log.len);
                return Err(e).context("failed to append to the outbox");
            }
            log.len += line.len() as u64;
            log.dirty = true;
            log.written = ev.seq;
            wrote = true;
        }
        Ok(wrote)
    }

    /// Logs the start and the end of a stretch of failed writes (not every failure).
    fn note_write(&self, run_id: &str, wrote: Result<bool>) {
        match wrote {
            Err(e) => {
                if !self.behind.swap(true, Ordering::Relaxed) {
                    tracing::error!(%run_id, error = format!("{e:#}"), "cannot write run events to the state directory (disk full?); keeping them in memory and retrying");
                }
            }
            Ok(_) => {
                if self.behind.load(Ordering::Relaxed) && self.unwritten() == 0 {
                    self.behind.store(false, Ordering::Relaxed);
                    tracing::info!("run events are written to the state directory again");
                }
            }
        }
    }

    /// Events waiting in memory for the disk.
    pub fn unwritten(&self) -> usize {
        lock(&self.runs)
            .values()
            .map(|l| l.pending.iter().filter(|e| e.seq > l.written).count())
            .sum()
    }

    /// Tries again to write the events a full disk held back; wakes the link if it could.
    pub fn retry_unwritten(&self) {
        if !self.behind.load(Ordering::Relaxed) {
            return;
        }
        let mut any = false;
        let mut last = Ok(false);
        {
            let mut runs = lock(&self.runs);
            for (run_id, log) in runs.iter_mut() {
                match self.write_tail(run_id, log) {
                    Ok(w) => any |= w,
                    Err(e) => {
                        last = Err(e);
                        break;
                    }
                }
            }
        }
        self.note_write("-", last.map(|_| any));
        if any {
            self.changed.notify_one();
        }
    }

    /// The hub has stored everything of `run_id` up to `seq`.
    pub fn ack(&self, run_id: &str, seq: u64) {
        let settled = {
            let mut runs = lock(&self.runs);
            let Some(log) = runs.get_mut(run_id) else {
                return;
            };
            let seq = seq.min(log.next_seq - 1);
            if seq <= log.acked {
                return;
            }
            log.acked = seq;
            log.sent = log.sent.max(seq);
            while log.pending.front().is_some_and(|e| e.seq <= seq) {
                log.pending.pop_front();
            }
            let settled = log.finished && log.pending.is_empty();
            if !settled {
                // Losing this file only means resending a few events, which the hub ignores.
                match write_durable(&self.acked_path(run_id), seq.to_string().as_bytes(), 0o600) {
                    // Once per stretch of failures (a full disk fails every ack).
                    Err(e) if !self.acked_failing.swap(true, Ordering::Relaxed) => {
                        tracing::warn!(%run_id, error = format!("{e:#}"), "failed to record the acked seq");
                    }
                    Err(_) => {}
                    Ok(()) => self.acked_failing.store(false, Ordering::Relaxed),
                }
            }
            settled
        };
        if settled {
            self.purge(run_id);
        }
    }

    /// Deletes a settled run's files (spec first: a crash midway leaves a run that loads as
    /// settled and is purged on the next start).
    fn purge(&self, run_id: &str) {
        lock(&self.runs).remove(run_id);
        let leftovers = [
            self.dir.join(format!("{run_id}.spec.tmp")),
            self.dir.join(format!("{run_id}.tmp")),
        ];
        for path in [
            self.spec_path(run_id),
            self.events_path(run_id),
            self.acked_path(run_id),
        ]
        .into_iter()
        .chain(leftovers)
        {
            if let Err(e) = fs::remove_file(&path) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(file = %path.display(), error = %e, "failed to delete a settled run file");
                }
            }
        }
        tracing::debug!(%run_id, "run settled; its files are deleted");
    }

    /// The hub refuses this run's events (e.g. it belongs to another delegate): drop them, or they
    /// would break every stream.
    pub fn discard(&self, run_id: &str) {
        tracing::warn!(%run_id, "the hub refused this run's events; discarding them");
        self.purge(run_id);
    }

    /// Up to `max` events not yet handed to the current stream, oldest run first. Their files are
    /// fsynced first, so nothing the hub may acknowledge can be lost in a crash.
    pub fn next_batch(&self, max: usize) -> Vec<pb::Event> {
        let mut runs = lock(&self.runs);
        let mut out = Vec::new();
        for (run_id, log) in runs.iter_mut() {
            if out.len() >= max {
                break;
            }
            // Only what is on disk: the hub must never acknowledge an event a crash could lose.
            let unsent = log
                .pending
                .iter()
                .filter(|e| e.seq > log.sent && e.seq <= log.written)
                .take(max - out.len());
            let before = out.len();
            out.extend(unsent.map(|e| pb::Event {
                run_id: run_id.clone(),
                seq: e.seq,
                at_ms: e.at_ms,
                kind: e.kind.clone(),
                payload_json: e.payload_json.clone(),
            }));
            if out.len() > before {
                if let (true, Some(file)) = (log.dirty, &log.file) {
                    match file.sync_data() {
                        Ok(()) => log.dirty = false,
                        Err(e) => {
                            tracing::warn!(%run_id, error = %e, "failed to fsync the outbox")
                        }
                    }
                }
                log.sent = out.last().map_or(log.sent, |e| e.seq);
            }
        }
        out
    }

    /// A new stream starts: everything unacknowledged is sent again, lowest seq first.
    pub fn rewind(&self) {
        for log in lock(&self.runs).values_mut() {
            log.sent = log.acked;
        }
    }

    /// Events wait for the current stream.
    pub fn has_unsent(&self) -> bool {
        lock(&self.runs)
            .values()
            .any(|l| l.written > l.sent && l.pending.back().is_some_and(|e| e.seq > l.sent))
    }

    /// Runs with events the hub has not acknowledged, or that have not finished.
    pub fn unsettled_runs(&self) -> Vec<String> {
        lock(&self.runs).keys().cloned().collect()
    }

    /// Unacknowledged events over all runs.
    pub fn unacked(&self) -> usize {
        lock(&self.runs).values().map(|l| l.pending.len()).sum()
    }

    /// The run has events here (it is not settled yet).
    pub fn knows(&self, run_id: &str) -> bool {
        lock(&self.runs).contains_key(run_id)
    }

    /// The run's `run.finished` is recorded (and not yet settled).
    pub fn is_finished(&self, run_id: &str) -> bool {
        lock(&self.runs).get(run_id).is_some_and(|l| l.finished)
    }

    /// Every event of a run that is still on disk, in order.
    pub fn history(&self, run_id: &str) -> Result<Vec<StoredEvent>> {
        let path = self.events_path(run_id);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("failed to read {}", path.display())),
        };
        Ok(bytes
            .split(|b| *b == b'\n')
            .filter_map(|l| serde_json::from_slice::<StoredEvent>(l).ok())
            .collect())
    }

    /// Resolves when events were pushed since the last call.
    pub async fn changed(&self) {
        self.changed.notified().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const RUN: &str = "6f1c5c1e-0000-4000-8000-000000000001";

    #[test]
    fn seqs_count_from_one_and_acks_drop_events() {
        let dir = tempfile::tempdir().unwrap();
        let ob = Outbox::open(dir.path()).unwrap();
        for i in 0..3 {
            assert_eq!(
                ob.push(RUN, "probe.check", &json!({ "i": i })).unwrap(),
                i + 1
            );
        }
        let batch = ob.next_batch(MAX_BATCH);
        assert_eq!(
            batch.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        assert!(
            ob.next_batch(MAX_BATCH).is_empty(),
            "sent events are not sent twice on one stream"
        );
        ob.ack(RUN, 2);
        assert_eq!(ob.unacked(), 1);
        ob.rewind();
        assert_eq!(
            ob.next_batch(MAX_BATCH)
                .iter()
                .map(|e| e.seq)
                .collect::<Vec<_>>(),
            vec![3]
        );
        ob.ack(RUN, 99);
        assert_eq!(ob.unacked(), 0);
        assert!(ob.knows(RUN), "not finished yet");
    }

    #[test]
    fn unacked_events_survive_a_reload_and_settled_runs_are_deleted() {
        let dir = tempfile::tempdir().unwrap();
        {
            let ob = Outbox::open(dir.path()).unwrap();
            ob.push(RUN, "run.started", &json!({})).unwrap();
            ob.push(RUN, "probe.check", &json!({"ok": true})).unwrap();
            ob.ack(RUN, 1);
        }
        // A torn write from a crash.
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join(format!("{RUN}.jsonl")))
            .unwrap();
        f.write_all(b"{\"seq\":3,\"at_").unwrap();
        drop(f);
        let ob = Outbox::open(dir.path()).unwrap();
        let batch = ob.next_batch(MAX_BATCH);
        assert_eq!(batch.len(), 1);
        assert_eq!((batch[0].seq, batch[0].kind.as_str()), (2, "probe.check"));
        assert_eq!(ob.unsettled_runs(), vec![RUN.to_string()]);
        assert_eq!(ob.push(RUN, events::RUN_FINISHED, &json!({})).unwrap(), 3);
        assert_eq!(ob.history(RUN).unwrap().len(), 3);
        ob.ack(RUN, 3);
        assert!(!ob.knows(RUN));
        assert!(!dir.path().join(format!("{RUN}.jsonl")).exists());
        assert!(!dir.path().join(format!("{RUN}.acked")).exists());
    }

    #[test]
    fn events_that_cannot_be_written_wait_in_memory_and_are_sent_only_once_written() {
        let dir = tempfile::tempdir().unwrap();
        let ob = Outbox::open(dir.path()).unwrap();
        ob.push(RUN, "run.started", &json!({})).unwrap();
        assert_eq!(ob.next_batch(MAX_BATCH).len(), 1);
        // The disk refuses writes: a handle that cannot write stands in for ENOSPC.
        let path = dir.path().join(format!("{RUN}.jsonl"));
        let good = lock(&ob.runs).get_mut(RUN).unwrap().file.take();
        lock(&ob.runs).get_mut(RUN).unwrap().file = Some(File::open(&path).unwrap());
        assert_eq!(
            ob.push(RUN, "probe.check", &json!({"ok": true})).unwrap(),
            2
        );
        assert_eq!(ob.push(RUN, events::RUN_FINISHED, &json!({})).unwrap(), 3);
        assert_eq!(ob.unwritten(), 2);
        assert!(!ob.has_unsent(), "nothing unwritten is offered to the hub");
        assert!(ob.next_batch(MAX_BATCH).is_empty());
        ob.retry_unwritten();
        assert_eq!(ob.unwritten(), 2, "still refused");
        // The disk has room again.
        lock(&ob.runs).get_mut(RUN).unwrap().file = good;
        ob.retry_unwritten();
        assert_eq!(ob.unwritten(), 0);
        let batch = ob.next_batch(MAX_BATCH);
        assert_eq!(batch.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(
            ob.history(RUN)
                .unwrap()
                .iter()
                .map(|e| e.seq)
                .collect::<Vec<_>>(),
            vec![1, 2, 3],
            "written in order, no gap, nothing twice"
        );
        ob.ack(RUN, 3);
        assert!(!ob.knows(RUN), "settled once everything is acknowledged");
    }

    #[test]
    fn batches_are_capped() {
        let dir = tempfile::tempdir().unwrap();
        let ob = Outbox::open(dir.path()).unwrap();
        for _ in 0..7 {
            ob.push(RUN, "probe.check", &json!({})).unwrap();
        }
        assert_eq!(ob.next_batch(5).len(), 5);
        assert_eq!(ob.next_batch(5).len(), 2);
        assert!(!ob.has_unsent());
    }
}
