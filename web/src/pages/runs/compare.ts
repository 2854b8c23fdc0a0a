// Comparing two runs: the model behind the compare page (Compare.tsx): per-probe latency
// statistics from a run's stored checks, and whether each difference (B against A) is better or
// worse. Pure, so every rule here is unit-tested; the page only lays it out. Which runs make the
// pair, and the page's address, are in comparePair.ts (the Runs and Run pages need only that).
import { finished } from '../../ui';

/** One stored probe check, as `Run.probeResults` gives it. */
export interface CheckIn {
  probe: string;
  phase: string;
  ok: boolean;
  latencyMs: number;
}

/**
 * The phases of a run, in order (docs/template-reference.md#phases): `between` only exists when
 * the method has a gap between faults.
 */
export const PHASES = ['before', 'during', 'between', 'after'] as const;
export type Phase = (typeof PHASES)[number];

export interface PhaseStats {
  checks: number;
  failed: number;
  /**
   * Latency percentiles of the checks that passed, in ms (nearest rank); null when none passed.
   * A failed check's latency is how long it took to fail (a refused connection: almost nothing),
   * so failures are counted apart rather than mixed into the latency.
   */
  p50: number | null;
  p95: number | null;
  p99: number | null;
}

export interface ProbeStats {
  probe: string;
  phases: Partial<Record<Phase, PhaseStats>>;
}

/** The `q` quantile (0 < q ≤ 1) of ascending `sorted` by nearest rank; null when empty. */
export function percentile(sorted: readonly number[], q: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
  return sorted[rank - 1];
}

/** Per probe (by name) and phase: checks, failures and latency percentiles. Unknown phases are left out. */
export function probeStats(checks: readonly CheckIn[]): ProbeStats[] {
  const acc = new Map<string, Map<Phase, { checks: number; failed: number; ok: number[] }>>();
  for (const c of checks) {
    if (!(PHASES as readonly string[]).includes(c.phase)) continue;
    const phase = c.phase as Phase;
    let byPhase = acc.get(c.probe);
    if (!byPhase) acc.set(c.probe, (byPhase = new Map()));
    let s = byPhase.get(phase);
    if (!s) byPhase.set(phase, (s = { checks: 0, failed: 0, ok: [] }));
    s.checks += 1;
    if (c.ok) {
      if (Number.isFinite(c.latencyMs)) s.ok.push(c.latencyMs);
    } else s.failed += 1;
  }
  return [...acc.entries()]
    .sort(([x], [y]) => x.localeCompare(y))
    .map(([probe, byPhase]) => {
      const phases: ProbeStats['phases'] = {};
      for (const [phase, s] of byPhase) {
        const sorted = s.ok.sort((x, y) => x - y);
        phases[phase] = {
          checks: s.checks,
          failed: s.failed,
          p50: percentile(sorted, 0.5),
          p95: percentile(sorted, 0.95),
          p99: percentile(sorted, 0.99),
        };
      }
      return { probe, phases };
    });
}

/**
 * How B compares with A on one measure: `better` or `worse` for the service, `same` within the
 * measure's tolerance, `none` when either side has no value (or the values say nothing about
 * resilience, like an aborted run's verdict).
 */
export type Direction = 'better' | 'worse' | 'same' | 'none';

export interface Delta {
  direction: Direction;
  /** B − A, in the measure's unit; null with `none`. */
  diff: number | null;
  /** The difference as shown ("+12.5", "−40 ms"), or why there is none. */
  text: string;
}

const MINUS = '\u2212';

/** A signed number as shown: "+1.5", "−40" (a real minus sign). */
function signed(v: number, digits: number, unit = ''): string {
  const abs = Math.abs(v);
  const s = digits === 0 && abs >= 10 ? Math.round(abs).toString() : abs.toFixed(digits);
  return `${v > 0 ? '+' : v < 0 ? MINUS : '±'}${s}${unit}`;
}

const known = (v: number | null | undefined): v is number => v !== null && v !== undefined && Number.isFinite(v);

/**
 * A numeric measure: `lowerIsBetter` (latency, recovery, failures) or higher (score); changes
 * within `tolerance(a)` count as the same, so noise does not read as progress.
 */
function numeric(
  a: number | null | undefined,
  b: number | null | undefined,
  { lowerIsBetter, tolerance, format }: { lowerIsBetter: boolean; tolerance: (a: number) => number; format: (diff: number) => string },
  missing = '–',
): Delta {
  if (!known(a) || !known(b)) return { direction: 'none', diff: null, text: missing };
  const diff = b - a;
  if (Math.abs(diff) <= tolerance(a)) return { direction: 'same', diff, text: format(diff) };
  const improved = lowerIsBetter ? diff < 0 : diff > 0;
  return { direction: improved ? 'better' : 'worse', diff, text: format(diff) };
}

/** Scores are shown with one decimal: a change that does not show there is no change. */
export function scoreDelta(a: number | null | undefined, b: number | null | undefined): Delta {
  return numeric(a, b, { lowerIsBetter: false, tolerance: () => 0.05, format: (d) => signed(d, 1) }, 'no score to compare');
}

/** Recovery in ms: within 5 % (and at least 50 ms) is the same. */
export function recoveryDelta(a: number | null | undefined, b: number | null | undefined): Delta {
  return numeric(a, b, { lowerIsBetter: true, tolerance: (x) => Math.max(50, 0.05 * Math.abs(x)), format: (d) => signedMs(d) });
}

/** A latency percentile in ms: within 5 % (and at least 0.5 ms) is the same. */
export function latencyDelta(a: number | null | undefined, b: number | null | undefined): Delta {
  return numeric(a, b, { lowerIsBetter: true, tolerance: (x) => Math.max(0.5, 0.05 * Math.abs(x)), format: (d) => signedMs(d) });
}

/**
 * Failures: runs differ in how many checks they made, so the rates are compared (in
 * percentage points); any change in the rate counts.
 */
export function failureDelta(a: { failed: number; checks: number } | undefined, b: { failed: number; checks: number } | undefined): Delta {
  const rate = (s: { failed: number; checks: number } | undefined) => (s && s.checks > 0 ? (100 * s.failed) / s.checks : null);
  return numeric(rate(a), rate(b), { lowerIsBetter: true, tolerance: () => 1e-9, format: (d) => `${signed(d, 1)} pts` });
}

const VERDICT_RANK: Record<string, number> = { FAILED: 0, PASSED: 1 };

/** PASSED beats FAILED; an aborted, errored or unfinished run has no verdict on resilience. */
export function verdictDelta(a: string, b: string): Delta {
  const ra = VERDICT_RANK[a];
  const rb = VERDICT_RANK[b];
  if (ra === undefined || rb === undefined) return { direction: 'none', diff: null, text: 'not comparable' };
  if (ra === rb) return { direction: 'same', diff: 0, text: 'same verdict' };
  return rb > ra ? { direction: 'better', diff: 1, text: 'now passes' } : { direction: 'worse', diff: -1, text: 'now fails' };
}

/** "12 ms", "1.5 ms", "1.2 s": a latency or recovery as the compare page shows it. */
export function formatMs(v: number | null | undefined): string {
  if (!known(v)) return '–';
  const abs = Math.abs(v);
  if (abs >= 10_000) return `${(v / 1000).toFixed(1)} s`;
  if (abs >= 1000) return `${(v / 1000).toFixed(2)} s`;
  return `${abs < 10 ? v.toFixed(1) : Math.round(v)} ms`;
}

function signedMs(d: number): string {
  const sign = d > 0 ? '+' : d < 0 ? MINUS : '±';
  return `${sign}${formatMs(Math.abs(d))}`;
}

/** What the page must say about the pair before the numbers. */
export interface PairNotes {
  /** Different templates: allowed, but the numbers measure different experiments. */
  differentTemplates: boolean;
  /** The same template at different versions (the change being judged, often). */
  versionChanged: boolean;
  sameRun: boolean;
  /** Runs not finished yet: their numbers are partial. */
  unfinished: ('A' | 'B')[];
  /** Dry runs: nothing was applied, nothing measured. */
  dry: ('A' | 'B')[];
}

interface PairRun {
  id: string;
  status: string;
  dryRun: boolean;
  templateVersion: number;
  template: { id: string };
}

export function pairNotes(a: PairRun, b: PairRun): PairNotes {
  const both = [
    ['A', a],
    ['B', b],
  ] as const;
  return {
    differentTemplates: a.template.id !== b.template.id,
    versionChanged: a.template.id === b.template.id && a.templateVersion !== b.templateVersion,
    sameRun: a.id === b.id,
    unfinished: both.filter(([, r]) => !finished(r.status)).map(([k]) => k),
    dry: both.filter(([, r]) => r.dryRun).map(([k]) => k),
  };
}
