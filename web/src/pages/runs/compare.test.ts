import { describe, expect, it } from 'vitest';
import {
  failureDelta,
  formatMs,
  latencyDelta,
  pairNotes,
  percentile,
  probeStats,
  recoveryDelta,
  scoreDelta,
  verdictDelta,
  type CheckIn,
} from './compare';

const A = 'aaaaaaaa-1111-4111-8111-111111111111';
const B = 'bbbbbbbb-2222-4222-8222-222222222222';

describe('probeStats', () => {
  it('takes nearest-rank percentiles', () => {
    const xs = Array.from({ length: 100 }, (_, i) => i + 1);
    expect([percentile(xs, 0.5), percentile(xs, 0.95), percentile(xs, 0.99)]).toEqual([50, 95, 99]);
    expect(percentile([7], 0.99)).toBe(7);
    expect(percentile([], 0.5)).toBeNull();
    expect(percentile([1, 2, 3], 0.5)).toBe(2);
  });

  it('groups checks by probe and phase, counting failures apart from the latency', () => {
    const c = (probe: string, phase: string, ok: boolean, latencyMs: number): CheckIn => ({ probe, phase, ok, latencyMs });
    const checks = [
      c('web', 'before', true, 10),
      c('web', 'before', true, 30),
      c('web', 'before', true, 20),
      c('web', 'during', false, 0.2), // refused at once: not a fast answer
      c('web', 'during', true, 400),
      c('web', 'during', false, 0.3),
      c('db', 'after', true, 5),
      c('web', 'mystery', true, 1), // an unknown phase: left out
    ];
    const s = probeStats(checks);
    expect(s.map((p) => p.probe)).toEqual(['db', 'web']);
    const web = s[1].phases;
    expect(Object.keys(web)).toEqual(['before', 'during']);
    expect(web.before).toEqual({ checks: 3, failed: 0, p50: 20, p95: 30, p99: 30 });
    expect(web.during).toEqual({ checks: 3, failed: 2, p50: 400, p95: 400, p99: 400 });
    expect(s[0].phases.after).toMatchObject({ checks: 1, failed: 0, p50: 5 });
  });

  it('has no latency for a phase where every check failed', () => {
    const s = probeStats([{ probe: 'web', phase: 'during', ok: false, latencyMs: 1000 }]);
    expect(s[0].phases.during).toEqual({ checks: 1, failed: 1, p50: null, p95: null, p99: null });
  });
});

describe('deltas (B against A)', () => {
  it('calls a higher score better and a lower one worse, within the shown precision the same', () => {
    expect(scoreDelta(70, 85)).toEqual({ direction: 'better', diff: 15, text: '+15.0' });
    expect(scoreDelta(85, 70)).toMatchObject({ direction: 'worse', text: '\u221215.0' });
    expect(scoreDelta(80, 80.04).direction).toBe('same');
  });

  it('has no score difference when a run has no score', () => {
    expect(scoreDelta(80, null)).toEqual({ direction: 'none', diff: null, text: 'no score to compare' });
    expect(scoreDelta(undefined, 80).direction).toBe('none');
  });

  it('calls lower latency and faster recovery better, and ignores noise', () => {
    expect(latencyDelta(100, 50)).toMatchObject({ direction: 'better', text: '\u221250 ms' });
    expect(latencyDelta(10, 40)).toMatchObject({ direction: 'worse', text: '+30 ms' });
    expect(latencyDelta(100, 104).direction).toBe('same');
    expect(latencyDelta(1, 1.4).direction).toBe('same');
    expect(latencyDelta(null, 5).direction).toBe('none');
    expect(recoveryDelta(4000, 1500)).toMatchObject({ direction: 'better', text: '\u22122.50 s' });
    expect(recoveryDelta(1500, 4000).direction).toBe('worse');
    expect(recoveryDelta(1000, 1040).direction).toBe('same');
  });

  it('compares failure rates, not counts: runs make different numbers of checks', () => {
    // A: 2 of 40 failed (5 %); B: 1 of 10 (10 %): fewer failures, but a worse rate.
    expect(failureDelta({ failed: 2, checks: 40 }, { failed: 1, checks: 10 })).toMatchObject({ direction: 'worse', text: '+5.0 pts' });
    expect(failureDelta({ failed: 3, checks: 10 }, { failed: 0, checks: 10 })).toMatchObject({ direction: 'better', text: '\u221230.0 pts' });
    expect(failureDelta({ failed: 0, checks: 10 }, { failed: 0, checks: 30 }).direction).toBe('same');
    expect(failureDelta(undefined, { failed: 0, checks: 3 }).direction).toBe('none');
  });

  it('ranks PASSED over FAILED, and does not judge an aborted, errored or unfinished run', () => {
    expect(verdictDelta('FAILED', 'PASSED')).toMatchObject({ direction: 'better', text: 'now passes' });
    expect(verdictDelta('PASSED', 'FAILED')).toMatchObject({ direction: 'worse', text: 'now fails' });
    expect(verdictDelta('PASSED', 'PASSED').direction).toBe('same');
    for (const s of ['ABORTED', 'ERROR', 'RUNNING']) expect(verdictDelta('PASSED', s).direction).toBe('none');
  });

  it('formats milliseconds for the table', () => {
    expect([formatMs(0.25), formatMs(12.4), formatMs(1500), formatMs(12_345), formatMs(null)]).toEqual(['0.3 ms', '12 ms', '1.50 s', '12.3 s', '–']);
  });
});

describe('pairNotes', () => {
  const run = (over: Partial<{ id: string; status: string; dryRun: boolean; templateVersion: number; template: { id: string } }>) => ({
    id: A,
    status: 'PASSED',
    dryRun: false,
    templateVersion: 1,
    template: { id: 't1' },
    ...over,
  });

  it('says when the templates differ, the version changed, or a run is unfinished or dry', () => {
    expect(pairNotes(run({}), run({ id: B, template: { id: 't2' } }))).toMatchObject({ differentTemplates: true, versionChanged: false });
    expect(pairNotes(run({}), run({ id: B, templateVersion: 2 }))).toMatchObject({ differentTemplates: false, versionChanged: true, sameRun: false });
    expect(pairNotes(run({ status: 'RUNNING' }), run({ id: B, dryRun: true }))).toMatchObject({ unfinished: ['A'], dry: ['B'] });
    expect(pairNotes(run({}), run({})).sameRun).toBe(true);
  });
});
