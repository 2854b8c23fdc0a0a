// The live run view's state, folded from the run's events (kinds and payloads: experiment/src/events.rs).
// Pure and batch-oriented: the view buffers what the subscription delivers and applies it here a
// few times a second, so 50 probe checks a second cost one render per flush, not fifty.

/** One stored run event, as the API returns it. */
export interface RunEventIn {
  seq: number;
  at: string;
  kind: string;
  payload: unknown;
}

export type Phase = 'before' | 'during' | 'after' | string;

/** One probe check, for the feed. */
export interface ProbeRow {
  seq: number;
  /** When the check's event was written (it ended). */
  at: number;
  /** When the check started (the moment its phase was read); older delegates do not say. */
  startedAt?: number;
  probe: string;
  ok: boolean;
  latencyMs: number;
  phase: Phase;
  mode: string;
  attempts: number;
  detail: string;
}

/** Counts per probe; kept in full however long the feed gets. */
export interface ProbeSummary {
  probe: string;
  mode: string;
  passed: number;
  failed: number;
  lastOk: boolean;
  lastLatencyMs: number;
  lastAt: number;
}

/** A fault the run applied (or, in a dry run, planned), by ordinal. */
export interface FaultState {
  step: number;
  path: string;
  fault: string;
  detail: string;
  appliedAt: number;
  /** When it ended: its `fault.reverted`, or inferred (a one-shot fault reports no revert). */
  endedAt?: number;
  /**
   * How we know it ended: `reverted` from its event, `watched` from the `fault.ended` of a
   * one-shot fault (a kill: its watch is over, nothing was undone), `inferred` from the next
   * stage or the run's end.
   */
  ended?: 'reverted' | 'watched' | 'inferred';
  planned?: boolean;
}

export type Tone = 'info' | 'fault' | 'ok' | 'bad' | 'warn';

/** A line of the timeline: everything but single probe checks. */
export interface TimelineItem {
  seq: number;
  at: number;
  kind: string;
  title: string;
  detail?: string;
  tone: Tone;
}

export interface LatencyShiftIn {
  probe: string;
  summary: string;
  significant: boolean;
}

/** The `run.finished` payload. */
export interface Finished {
  verdict: string;
  score: number | null;
  reason: string;
  checksPassed: number;
  checksTotal: number;
  recoveryMs: number | null;
  latency: LatencyShiftIn[];
}

/**
 * An append-only log shared between states: each batch adds one node pointing at the previous
 * ones, so a run of n events costs O(n) however often it is folded, and no state ever changes.
 * `logRows` flattens it, oldest first.
 */
export interface Log<T> {
  rows: readonly T[];
  prev: Log<T> | null;
  /** Rows in this node and every one before it. */
  size: number;
}

export function logRows<T>(log: Log<T> | null): T[] {
  const parts: (readonly T[])[] = [];
  for (let n = log; n; n = n.prev) parts.push(n.rows);
  const out: T[] = [];
  for (let i = parts.length - 1; i >= 0; i--) for (const r of parts[i]) out.push(r);
  return out;
}

/** An action step's mark on the chart: started, done or undone (ok is absent when started). */
export interface ActionMark {
  seq: number;
  at: number;
  kind: 'action.started' | 'action.done' | 'action.undone';
  name: string;
  ok?: boolean;
}

export interface RunLive {
  /** Highest seq applied; anything at or below it is a repeat and is dropped. */
  lastSeq: number;
  /** Events applied (repeats not counted). */
  applied: number;
  /** Time of `run.started` (ms since epoch), else of the first event. */
  startedAt: number | null;
  /** Whether `run.started` itself has arrived (`startedAt` is then its time). */
  started: boolean;
  /** The latest event time seen: the live clock never shows less than this. */
  lastAt: number | null;
  /** When the method began (its first fault, action or pause): the baseline window ends here. */
  methodAt: number | null;
  /** Every probe check, oldest first (for the chart; the feed keeps only the newest). */
  checkLog: Log<ProbeRow> | null;
  /** Action steps as they started, ended and were undone. */
  actions: ActionMark[];
  timeline: TimelineItem[];
  /** By fault ordinal, in the order they were first seen. */
  faults: FaultState[];
  probes: Record<string, ProbeSummary>;
  /** Newest first, at most `feedCap` rows. */
  feed: ProbeRow[];
  checks: { passed: number; failed: number; total: number };
  /** The furthest probe phase reached (before, during, after). */
  phase: Phase | null;
  recoveryMs: number | null;
  aborted: string | null;
  finished: Finished | null;
}

export const FEED_CAP = 200;

export function initialRunLive(): RunLive {
  return {
    lastSeq: 0,
    applied: 0,
    startedAt: null,
    started: false,
    lastAt: null,
    methodAt: null,
    checkLog: null,
    actions: [],
    timeline: [],
    faults: [],
    probes: {},
    feed: [],
    checks: { passed: 0, failed: 0, total: 0 },
    phase: null,
    recoveryMs: null,
    aborted: null,
    finished: null,
  };
}

/** Faults applied and not yet ended. */
export function activeFaults(s: RunLive): FaultState[] {
  return s.faults.filter((f) => !f.planned && f.endedAt === undefined);
}

const PHASE_TITLE: Record<string, string> = {
  before: 'Probes: steady state before the faults',
  during: 'Probes: checking during the faults',
  between: 'Probes: no fault active, more to come',
  after: 'Probes: checking recovery after the faults',
};

// `between` and `during` alternate while the method runs; only `before` and `after` are one-way.
const PHASE_RANK: Record<string, number> = { before: 0, during: 1, between: 1, after: 2 };

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : {});
const str = (v: unknown, d = ''): string => (typeof v === 'string' ? v : d);
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/** The stage index of a fault path: `steps[2].parallel[0]` → 2. */
export function stageOf(path: string): number | null {
  const m = /^steps\[(\d+)\]/.exec(path);
  return m ? Number(m[1]) : null;
}

function parseFinished(p: Obj): Finished {
  const latency = Array.isArray(p.latency)
    ? p.latency.map((l) => {
        const o = obj(l);
        return { probe: str(o.probe), summary: str(o.summary), significant: o.significant === true };
      })
    : [];
  return {
    verdict: str(p.verdict, 'ERROR'),
    score: num(p.score),
    reason: str(p.reason),
    checksPassed: num(p.checksPassed) ?? 0,
    checksTotal: num(p.checksTotal) ?? 0,
    recoveryMs: num(p.recoveryMs),
    latency,
  };
}

function ms(n: number): string {
  return n < 1000 ? `${Math.round(n)} ms` : `${(n / 1000).toFixed(1)} s`;
}

/**
 * Folds a batch of events into the state. Events at or below `lastSeq` are dropped (the
 * subscription replays after a reconnect); the batch may come in any order.
 */
export function applyEvents(state: RunLive, events: readonly RunEventIn[], feedCap = FEED_CAP): RunLive {
  const fresh = events.filter((e) => e.seq > state.lastSeq);
  if (fresh.length === 0) return state;
  fresh.sort((a, b) => a.seq - b.seq);

  // Copy once per batch, then mutate the copies: a batch of thousands stays linear.
  const timeline = state.timeline.slice();
  const faults = state.faults.slice();
  const faultIndex = new Map<number, number>();
  faults.forEach((f, i) => faultIndex.set(f.step, i));
  const probes: Record<string, ProbeSummary> = { ...state.probes };
  const touched = new Set<string>();
  const newRows: ProbeRow[] = [];
  const checks = { ...state.checks };
  let actions = state.actions;
  let { lastSeq, applied, startedAt, started, lastAt, methodAt, phase, recoveryMs, aborted, finished } = state;
  const method = (at: number) => {
    if (methodAt === null && Number.isFinite(at)) methodAt = at;
  };

  const endFaults = (at: number, before: (f: FaultState) => boolean) => {
    faults.forEach((f, i) => {
      if (!f.planned && f.endedAt === undefined && before(f)) faults[i] = { ...f, endedAt: at, ended: 'inferred' };
    });
  };
  const push = (item: TimelineItem) => timeline.push(item);

  for (const e of fresh) {
    if (e.seq <= lastSeq) continue; // a repeat inside the batch itself
    lastSeq = e.seq;
    applied += 1;
    const at = Date.parse(e.at);
    if (startedAt === null && Number.isFinite(at)) startedAt = at;
    if (Number.isFinite(at) && (lastAt === null || at > lastAt)) lastAt = at;
    const p = obj(e.payload);
    switch (e.kind) {
      case 'probe.check': {
        const probe = str(p.probe, '?');
        const ok = p.ok === true;
        const started = num(p.startedMs);
        const row: ProbeRow = {
          seq: e.seq,
          at,
          ...(started !== null ? { startedAt: started } : {}),
          probe,
          ok,
          latencyMs: num(p.latencyMs) ?? 0,
          phase: str(p.phase, '?'),
          mode: str(p.mode),
          attempts: num(p.attempts) ?? 1,
          detail: str(p.detail),
        };
        newRows.push(row);
        checks.total += 1;
        if (ok) checks.passed += 1;
        else checks.failed += 1;
        let sum = probes[probe];
        if (!touched.has(probe)) {
          sum = sum ? { ...sum } : { probe, mode: row.mode, passed: 0, failed: 0, lastOk: ok, lastLatencyMs: 0, lastAt: at };
          probes[probe] = sum;
          touched.add(probe);
        }
        if (ok) sum.passed += 1;
        else sum.failed += 1;
        sum.lastOk = ok;
        sum.lastLatencyMs = row.latencyMs;
        sum.lastAt = at;
        if (row.mode) sum.mode = row.mode;
        // Checks finish out of order (a slow 'during' check may land after the first 'after'
        // one): the phase only moves forward.
        if (row.phase !== phase && !(phase !== null && PHASE_RANK[row.phase] < PHASE_RANK[phase])) {
          phase = row.phase;
          push({ seq: e.seq, at, kind: 'probe.phase', title: PHASE_TITLE[phase] ?? `Probes: ${phase}`, tone: 'info' });
        }
        break;
      }
      case 'run.started': {
        if (Number.isFinite(at)) startedAt = at;
        started = true;
        const v = num(p.version);
        const title = p.dryRun === true ? 'Dry run started' : 'Run started';
        push({ seq: e.seq, at, kind: e.kind, title, detail: [str(p.template), v !== null ? `v${v}` : ''].filter(Boolean).join(' '), tone: 'info' });
        break;
      }
      case 'fault.applied':
      case 'fault.planned': {
        const planned = e.kind === 'fault.planned';
        const step = num(p.step) ?? -1;
        const path = str(p.path);
        const f: FaultState = { step, path, fault: str(p.fault, '?'), detail: str(p.detail), appliedAt: at, planned };
        // Stages run one after another: a later stage starting means every earlier one ended.
        const stage = stageOf(path);
        if (!planned) method(at);
        if (!planned && stage !== null) endFaults(at, (g) => (stageOf(g.path) ?? Infinity) < stage);
        const i = faultIndex.get(step);
        if (i === undefined) {
          faultIndex.set(step, faults.length);
          faults.push(f);
        } else faults[i] = f;
        push({
          seq: e.seq,
          at,
          kind: e.kind,
          title: `${planned ? 'Planned' : 'Applied'} ${f.fault}${path ? ` (${path})` : ''}`,
          detail: f.detail,
          tone: planned ? 'info' : 'fault',
        });
        break;
      }
      case 'fault.reverted':
      case 'fault.ended': {
        // fault.ended: a one-shot fault (a kill) whose watch is over; it is not undone.
        const step = num(p.step) ?? -1;
        const i = faultIndex.get(step);
        let path = str(p.path);
        if (i !== undefined) {
          faults[i] = { ...faults[i], endedAt: at, ended: e.kind === 'fault.ended' ? 'watched' : 'reverted' };
          path ||= faults[i].path;
        }
        const verb = e.kind === 'fault.ended' ? 'Watch ended:' : 'Reverted';
        push({ seq: e.seq, at, kind: e.kind, title: `${verb} ${str(p.fault, '?')}${path ? ` (${path})` : ''}`, detail: str(p.detail), tone: 'ok' });
        break;
      }
      case 'pause.started': {
        method(at);
        const stage = num(p.stage);
        if (stage !== null) endFaults(at, (g) => (stageOf(g.path) ?? Infinity) < stage);
        const d = num(p.durationMs);
        push({ seq: e.seq, at, kind: e.kind, title: `Pause${d !== null ? ` for ${ms(d)}` : ''}`, tone: 'info' });
        break;
      }
      case 'guardrail.tripped': {
        const n = num(p.consecutiveFailures);
        push({
          seq: e.seq,
          at,
          kind: e.kind,
          title: `Guardrail tripped: ${str(p.probe, '?')}`,
          detail: n !== null ? `${n} failed checks in a row` : undefined,
          tone: 'bad',
        });
        break;
      }
      case 'rollback.done': {
        const ok = p.ok === true;
        const name = str(p.name) || `#${num(p.index) ?? '?'}`;
        push({ seq: e.seq, at, kind: e.kind, title: `Rollback ${name} ${ok ? 'done' : 'failed'}`, detail: str(p.detail), tone: ok ? 'ok' : 'bad' });
        break;
      }
      case 'action.started':
      case 'action.done':
      case 'action.undone': {
        const name = str(p.name) || str(p.path) || 'action';
        const bg = p.background === true ? ' (background)' : '';
        if (e.kind === 'action.started') method(at);
        if (actions === state.actions) actions = actions.slice();
        actions.push({ seq: e.seq, at, kind: e.kind, name, ...(e.kind === 'action.started' ? {} : { ok: p.ok === true }) });
        if (e.kind === 'action.started') {
          push({ seq: e.seq, at, kind: e.kind, title: `Action ${name} started${bg}`, detail: str(p.detail), tone: 'fault' });
        } else {
          const ok = p.ok === true;
          const what = e.kind === 'action.done' ? (ok ? 'done' : 'failed') : ok ? 'undone' : 'undo failed';
          push({ seq: e.seq, at, kind: e.kind, title: `Action ${name} ${what}`, detail: str(p.detail), tone: ok ? 'ok' : 'bad' });
        }
        break;
      }
      case 'run.recovered': {
        recoveryMs = num(p.recoveryMs);
        endFaults(at, () => true);
        // What it was measured from (`from`, newer delegates): "after process-kill (steps[2]) at +5.0 s".
        const from = obj(p.from);
        const fromPath = str(from.path);
        const what = str(from.what);
        const since =
          fromPath && recoveryMs !== null
            ? ` ${ms(recoveryMs)} after ${what === 'action' ? `action ${fromPath}` : `${what} (${fromPath})`}`
            : recoveryMs !== null
              ? ` in ${ms(recoveryMs)}`
              : '';
        push({ seq: e.seq, at, kind: e.kind, title: `Recovered${since}`, tone: 'ok' });
        break;
      }
      case 'run.aborted': {
        aborted = str(p.reason, 'aborted');
        push({ seq: e.seq, at, kind: e.kind, title: 'Aborted', detail: aborted, tone: 'warn' });
        break;
      }
      case 'run.finished': {
        finished = parseFinished(p);
        if (finished.recoveryMs !== null) recoveryMs = finished.recoveryMs;
        endFaults(at, () => true);
        const score = finished.score !== null ? `, score ${finished.score.toFixed(1)}` : '';
        const tone: Tone = finished.verdict === 'PASSED' ? 'ok' : finished.verdict === 'ABORTED' ? 'warn' : 'bad';
        push({ seq: e.seq, at, kind: e.kind, title: `Finished: ${finished.verdict}${score}`, detail: finished.reason, tone });
        break;
      }
      default:
        push({ seq: e.seq, at, kind: e.kind, title: e.kind, detail: JSON.stringify(e.payload).slice(0, 300), tone: 'info' });
    }
  }

  let feed = state.feed;
  let checkLog = state.checkLog;
  if (newRows.length) {
    checkLog = { rows: newRows.slice(), prev: checkLog, size: (checkLog?.size ?? 0) + newRows.length };
    newRows.reverse();
    feed = newRows.length >= feedCap ? newRows.slice(0, feedCap) : newRows.concat(state.feed.slice(0, feedCap - newRows.length));
  }
  return {
    lastSeq,
    applied,
    startedAt,
    started,
    lastAt,
    methodAt,
    checkLog,
    actions,
    timeline,
    faults,
    probes,
    feed,
    checks,
    phase,
    recoveryMs,
    aborted,
    finished,
  };
}

/** "+2.0 s" from the run's start; "–" when the start is unknown. */
export function offset(at: number, start: number | null): string {
  if (start === null || !Number.isFinite(at)) return '–';
  const d = (at - start) / 1000;
  if (Math.abs(d) < 60) return `+${d.toFixed(1)} s`;
  const m = Math.floor(d / 60);
  return `+${m} min ${(d - m * 60).toFixed(0)} s`;
}
