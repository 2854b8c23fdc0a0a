// The run chart's model: what RunChart.tsx draws, computed from the folded run state. Pure and
// free of uPlot, so it is unit-tested and the chart stays a thin drawing layer.
import { logRows, type ActionMark, type FaultState, type ProbeRow, type RunLive } from './events';

/** A fault's window on the chart, in seconds since the run started. */
export interface FaultBand {
  step: number;
  label: string;
  from: number;
  to: number;
  /** Still active: shaded to now. */
  active: boolean;
  /**
   * A one-shot fault (a kill) whose watch has not ended: drawn as a thin band at its time. Once
   * its `fault.ended` came, the band is its watch: from the kill to then.
   */
  instant: boolean;
}

export interface ActionLine {
  t: number;
  label: string;
  kind: ActionMark['kind'];
  ok?: boolean;
}

export interface RunChartModel {
  /** Probe names, one series each (sorted). */
  probes: string[];
  /**
   * uPlot's aligned data: x (seconds since start), then per probe its latency where it has a
   * check at that x (else null), then per probe the latency of its failed checks only (the
   * failure markers).
   */
  data: (number | null)[][];
  bands: FaultBand[];
  actions: ActionLine[];
  /** From the run's start to its method's first step (null before either is known). */
  baseline: { from: number; to: number } | null;
  /** Where the x axis ends when not zoomed: now for a live run, else the last event. */
  xEnd: number;
  /** Failed checks, for the caption. */
  failures: number;
}

/** Kinds whose fault is an instant, not a window (unless it reports a revert). */
const ONE_SHOT = new Set(['process-kill']);

const secs = (at: number, start: number) => (at - start) / 1000;

export function faultBand(f: FaultState, start: number, now: number): FaultBand {
  const from = secs(f.appliedAt, start);
  const oneShot = ONE_SHOT.has(f.fault);
  const instant = oneShot && f.ended !== 'reverted' && f.ended !== 'watched';
  const active = !instant && f.endedAt === undefined;
  const to = instant ? from : active ? Math.max(from, secs(now, start)) : secs(f.endedAt!, start);
  const label = oneShot && f.ended === 'watched' ? `${f.fault} (watch)` : f.fault;
  return { step: f.step, label, from, to, active, instant };
}

/**
 * The chart's model at `now` (ms since epoch). `done` says the run has ended: then nothing is
 * active any more, and the axis ends at the last event.
 */
export function runChartModel(live: RunLive, now: number, done: boolean): RunChartModel {
  const start = live.startedAt;
  if (start === null) return { probes: [], data: [[]], bands: [], actions: [], baseline: null, xEnd: 1, failures: 0 };
  const rows = logRows(live.checkLog);
  const probes = [...new Set(rows.map((r) => r.probe))].sort();
  const index = new Map(probes.map((p, i) => [p, i]));
  const n = probes.length;
  // A check is drawn when it started, the moment its phase was read, so it lines up with the
  // fault windows that decided it; rows arrive in seq order (when they ended), so sort.
  const when = (r: ProbeRow) => r.startedAt ?? r.at;
  const sorted = rows.slice().sort((a, b) => when(a) - when(b) || a.seq - b.seq);
  const xs: number[] = [];
  const ys: (number | null)[][] = Array.from({ length: 2 * n }, () => []);
  let failures = 0;
  for (const r of sorted) {
    const t = secs(when(r), start);
    const i = index.get(r.probe)!;
    xs.push(t);
    for (let k = 0; k < 2 * n; k++) ys[k].push(null);
    const last = xs.length - 1;
    ys[i][last] = r.latencyMs;
    if (!r.ok) {
      ys[n + i][last] = r.latencyMs;
      failures += 1;
    }
  }
  const end = done ? (live.lastAt ?? now) : Math.max(now, live.lastAt ?? now);
  const bands = live.faults
    .filter((f) => !f.planned && Number.isFinite(f.appliedAt))
    .map((f) => faultBand(done && f.endedAt === undefined ? { ...f, endedAt: end, ended: 'inferred' } : f, start, end));
  const actions = live.actions.map((a) => ({
    t: secs(a.at, start),
    label: `${a.name} ${a.kind === 'action.started' ? 'started' : a.kind === 'action.done' ? (a.ok ? 'done' : 'failed') : a.ok ? 'undone' : 'undo failed'}`,
    kind: a.kind,
    ok: a.ok,
  }));
  const xEnd = Math.max(1, secs(end, start), xs.length ? xs[xs.length - 1] : 0);
  // Until the method's first step the run is still in its baseline (a live run); a run that
  // ended before any step has none.
  const methodAt = live.methodAt;
  const baseline =
    methodAt !== null ? (methodAt > start ? { from: 0, to: secs(methodAt, start) } : null) : done ? null : { from: 0, to: xEnd };
  return { probes, data: [xs, ...ys], bands, actions, baseline, xEnd, failures };
}
