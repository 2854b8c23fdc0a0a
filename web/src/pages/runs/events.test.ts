import { describe, expect, it } from 'vitest';
import { activeFaults, applyEvents, initialRunLive, logRows, offset, stageOf, type RunEventIn } from './events';

const T0 = Date.parse('2026-01-01T10:00:00Z');
const at = (ms: number) => new Date(T0 + ms).toISOString();

function check(seq: number, ms: number, probe: string, ok: boolean, phase = 'before', latencyMs = 2): RunEventIn {
  return { seq, at: at(ms), kind: 'probe.check', payload: { probe, ok, phase, latencyMs, mode: 'continuous', attempts: 1, detail: ok ? '200 OK' : 'refused', step: 0 } };
}
function fault(seq: number, ms: number, kind: 'fault.applied' | 'fault.reverted' | 'fault.ended' | 'fault.planned', step: number, path: string, f: string): RunEventIn {
  return { seq, at: at(ms), kind, payload: { step, path, fault: f, detail: `${f} detail` } };
}

/** A run shaped like the demo: pause (revertible), a pause stage, a one-shot kill, recovery. */
const demo: RunEventIn[] = [
  { seq: 1, at: at(0), kind: 'run.started', payload: { template: 'demo', version: 3 } },
  check(2, 10, 'web', true),
  check(3, 20, 'port', true),
  fault(4, 2000, 'fault.applied', 0, 'steps[0]', 'process-pause'),
  check(5, 2100, 'web', false, 'during', 1000),
  fault(6, 4000, 'fault.reverted', 0, 'steps[0]', 'process-pause'),
  { seq: 7, at: at(4000), kind: 'pause.started', payload: { stage: 1, durationMs: 1000 } },
  fault(8, 5000, 'fault.applied', 1, 'steps[2]', 'process-kill'),
  check(9, 5100, 'web', false, 'during', 0.3),
  check(10, 8000, 'web', true, 'after', 3),
  { seq: 11, at: at(8100), kind: 'run.recovered', payload: { recoveryMs: 1249 } },
  {
    seq: 12,
    at: at(8200),
    kind: 'run.finished',
    payload: { verdict: 'PASSED', score: 72.7, reason: 'recovered in 1249ms', checksPassed: 3, checksTotal: 5, recoveryMs: 1249, latency: [{ probe: 'web', summary: 'no change', significant: false }] },
  },
];

describe('applyEvents', () => {
  it('folds a whole run: counts, summaries, timeline, verdict', () => {
    const s = applyEvents(initialRunLive(), demo);
    expect(s.lastSeq).toBe(12);
    expect(s.applied).toBe(12);
    expect(s.startedAt).toBe(T0);
    expect(s.checks).toEqual({ passed: 3, failed: 2, total: 5 });
    expect(s.probes.web).toMatchObject({ passed: 2, failed: 2, lastOk: true, lastLatencyMs: 3, mode: 'continuous' });
    expect(s.probes.port).toMatchObject({ passed: 1, failed: 0 });
    expect(s.feed.map((r) => r.seq)).toEqual([10, 9, 5, 3, 2]); // newest first
    expect(s.recoveryMs).toBe(1249);
    expect(s.finished).toMatchObject({ verdict: 'PASSED', score: 72.7, checksPassed: 3, checksTotal: 5 });
    expect(s.finished?.latency).toEqual([{ probe: 'web', summary: 'no change', significant: false }]);
    expect(s.timeline.map((t) => t.kind)).toEqual([
      'run.started',
      'probe.phase',
      'fault.applied',
      'probe.phase',
      'fault.reverted',
      'pause.started',
      'fault.applied',
      'probe.phase',
      'run.recovered',
      'run.finished',
    ]);
    expect(s.timeline[0]).toMatchObject({ title: 'Run started', detail: 'demo v3' });
    expect(s.timeline[2].title).toBe('Applied process-pause (steps[0])');
    expect(s.timeline[5].title).toBe('Pause for 1.0 s');
    expect(s.timeline[9].title).toBe('Finished: PASSED, score 72.7');
    expect(activeFaults(s)).toEqual([]);
  });

  it('moves the probe phase forward only: a late check of an earlier phase adds no line', () => {
    const s = applyEvents(initialRunLive(), [
      check(1, 0, 'web', true, 'before'),
      check(2, 10, 'web', true, 'during'),
      check(3, 20, 'web', true, 'after'),
      check(4, 30, 'web', false, 'during'),
    ]);
    expect(s.timeline.map((t) => t.title)).toEqual([
      'Probes: steady state before the faults',
      'Probes: checking during the faults',
      'Probes: checking recovery after the faults',
    ]);
    expect(s.phase).toBe('after');
    expect(s.feed[0]).toMatchObject({ seq: 4, phase: 'during', ok: false });
  });

  it('orders an unsorted batch by seq', () => {
    const shuffled = [...demo].reverse();
    const s = applyEvents(initialRunLive(), shuffled);
    expect(s.timeline.map((t) => t.seq)).toEqual(applyEvents(initialRunLive(), demo).timeline.map((t) => t.seq));
    expect(s.feed.map((r) => r.seq)).toEqual([10, 9, 5, 3, 2]);
  });

  it('drops repeats, within a batch and across batches (a replay after reconnecting)', () => {
    const first = applyEvents(initialRunLive(), demo.slice(0, 6));
    const replayed = applyEvents(first, demo); // the subscription replayed from 0
    const once = applyEvents(initialRunLive(), demo);
    expect(replayed.checks).toEqual(once.checks);
    expect(replayed.applied).toBe(12);
    expect(replayed.timeline).toEqual(once.timeline);
    expect(replayed.feed).toEqual(once.feed);

    const doubled = applyEvents(initialRunLive(), [...demo, ...demo]);
    expect(doubled.checks.total).toBe(5);
    expect(doubled.applied).toBe(12);
  });

  it('returns the same state when nothing is new', () => {
    const s = applyEvents(initialRunLive(), demo);
    expect(applyEvents(s, demo.slice(3, 5))).toBe(s);
    expect(applyEvents(s, [])).toBe(s);
  });

  it('does not mutate the state it was given', () => {
    const s1 = applyEvents(initialRunLive(), demo.slice(0, 4));
    const snapshot = JSON.stringify(s1);
    applyEvents(s1, demo.slice(4));
    expect(JSON.stringify(s1)).toBe(snapshot);
  });

  it('tracks the faults active now', () => {
    let s = applyEvents(initialRunLive(), demo.slice(0, 4)); // pause applied
    expect(activeFaults(s).map((f) => f.fault)).toEqual(['process-pause']);
    s = applyEvents(s, demo.slice(4, 6)); // pause reverted
    expect(activeFaults(s)).toEqual([]);
    expect(s.faults[0]).toMatchObject({ ended: 'reverted', endedAt: T0 + 4000 });
    s = applyEvents(s, demo.slice(6, 9)); // kill applied: one-shot, never reverted
    expect(activeFaults(s).map((f) => f.fault)).toEqual(['process-kill']);
    s = applyEvents(s, demo.slice(9, 11)); // recovered: every fault has ended
    expect(activeFaults(s)).toEqual([]);
    expect(s.faults[1]).toMatchObject({ ended: 'inferred', endedAt: T0 + 8100 });
  });

  it('keeps a parallel group active together and ends an earlier stage when a later one starts', () => {
    let s = applyEvents(initialRunLive(), [
      fault(1, 0, 'fault.applied', 0, 'steps[0]', 'process-kill'),
      fault(2, 100, 'fault.applied', 1, 'steps[1].parallel[0]', 'network-latency'),
      fault(3, 100, 'fault.applied', 2, 'steps[1].parallel[1]', 'cpu-stress'),
    ]);
    expect(activeFaults(s).map((f) => f.step)).toEqual([1, 2]);
    // The run's final reverts carry no path: matched by ordinal.
    s = applyEvents(s, [{ seq: 4, at: at(500), kind: 'fault.reverted', payload: { step: 2, path: '', fault: 'cpu-stress', detail: '' } }]);
    expect(activeFaults(s).map((f) => f.step)).toEqual([1]);
    expect(s.timeline[3].title).toBe('Reverted cpu-stress (steps[1].parallel[1])');
    s = applyEvents(s, [{ seq: 5, at: at(600), kind: 'run.aborted', payload: { reason: 'aborted by user:a@b' } }]);
    expect(s.aborted).toBe('aborted by user:a@b');
    s = applyEvents(s, [{ seq: 6, at: at(700), kind: 'run.finished', payload: { verdict: 'ABORTED', score: null, reason: 'x', checksPassed: 0, checksTotal: 0, recoveryMs: null } }]);
    expect(activeFaults(s)).toEqual([]);
    expect(s.timeline[s.timeline.length - 1]).toMatchObject({ title: 'Finished: ABORTED', tone: 'warn' });
  });

  it('lists planned faults of a dry run without making them active', () => {
    const s = applyEvents(initialRunLive(), [
      { seq: 1, at: at(0), kind: 'run.started', payload: { template: 'demo', version: 1, dryRun: true } },
      fault(2, 5, 'fault.planned', 0, 'steps[0]', 'process-pause'),
    ]);
    expect(s.timeline.map((t) => t.title)).toEqual(['Dry run started', 'Planned process-pause (steps[0])']);
    expect(activeFaults(s)).toEqual([]);
  });

  it('shows guardrails, rollbacks and unknown kinds in the timeline', () => {
    const s = applyEvents(initialRunLive(), [
      { seq: 1, at: at(0), kind: 'guardrail.tripped', payload: { probe: 'web', consecutiveFailures: 40 } },
      { seq: 2, at: at(1), kind: 'rollback.done', payload: { index: 0, name: 'restart', ok: false, detail: 'exit 1' } },
      { seq: 3, at: at(2), kind: 'something.new', payload: { a: 1 } },
    ]);
    expect(s.timeline.map((t) => [t.title, t.detail, t.tone])).toEqual([
      ['Guardrail tripped: web', '40 failed checks in a row', 'bad'],
      ['Rollback restart failed', 'exit 1', 'bad'],
      ['something.new', '{"a":1}', 'info'],
    ]);
  });

  it('follows the phase back and forth between faults, and closes a kill at fault.ended', () => {
    const s = applyEvents(initialRunLive(), [
      check(1, 0, 'web', true, 'before'),
      fault(2, 100, 'fault.applied', 0, 'steps[0]', 'process-pause'),
      check(3, 200, 'web', false, 'during'),
      fault(4, 300, 'fault.reverted', 0, 'steps[0]', 'process-pause'),
      check(5, 400, 'web', true, 'between'),
      fault(6, 500, 'fault.applied', 1, 'steps[2]', 'process-kill'),
      check(7, 600, 'web', false, 'during'),
      fault(8, 700, 'fault.ended', 1, 'steps[2]', 'process-kill'),
      check(9, 800, 'web', true, 'after'),
      check(10, 900, 'web', true, 'during'), // a late check of an earlier phase adds no line
    ]);
    expect(s.timeline.filter((t) => t.kind === 'probe.phase').map((t) => t.title)).toEqual([
      'Probes: steady state before the faults',
      'Probes: checking during the faults',
      'Probes: no fault active, more to come',
      'Probes: checking during the faults',
      'Probes: checking recovery after the faults',
    ]);
    expect(s.timeline.find((t) => t.kind === 'fault.ended')?.title).toBe('Watch ended: process-kill (steps[2])');
    expect(s.faults[1]).toMatchObject({ ended: 'watched', endedAt: T0 + 700 });
    expect(activeFaults(s)).toEqual([]);
  });

  it('says what recovery was measured from', () => {
    const s = applyEvents(initialRunLive(), [
      { seq: 1, at: at(0), kind: 'run.recovered', payload: { recoveryMs: 1300, from: { event: 'fault.applied', path: 'steps[2]', what: 'process-kill', atMs: 5000 } } },
      { seq: 2, at: at(1), kind: 'run.recovered', payload: { recoveryMs: 40 } },
    ]);
    expect(s.timeline.map((t) => t.title)).toEqual(['Recovered 1.3 s after process-kill (steps[2])', 'Recovered in 40 ms']);
  });

  it('shows action steps, background ones and undos in the timeline', () => {
    const s = applyEvents(initialRunLive(), [
      { seq: 1, at: at(0), kind: 'action.started', payload: { step: 1, path: 'steps[1]', name: 'drain', detail: '/usr/bin/kubectl', background: true } },
      { seq: 2, at: at(5), kind: 'action.done', payload: { step: 1, path: 'steps[1]', name: 'drain', ok: true, detail: '/usr/bin/kubectl: exit status: 0', background: true } },
      { seq: 3, at: at(9), kind: 'action.undone', payload: { step: 1, path: 'steps[1]', ok: false, detail: 'POST http://x/: 500' } },
    ]);
    expect(s.timeline.map((t) => [t.title, t.detail, t.tone])).toEqual([
      ['Action drain started (background)', '/usr/bin/kubectl', 'fault'],
      ['Action drain done', '/usr/bin/kubectl: exit status: 0', 'ok'],
      ['Action steps[1] undo failed', 'POST http://x/: 500', 'bad'],
    ]);
  });

  it('tolerates malformed payloads', () => {
    const s = applyEvents(initialRunLive(), [
      { seq: 1, at: at(0), kind: 'probe.check', payload: null },
      { seq: 2, at: at(0), kind: 'fault.applied', payload: 'nonsense' },
      { seq: 3, at: at(0), kind: 'run.finished', payload: [] },
    ]);
    expect(s.checks).toEqual({ passed: 0, failed: 1, total: 1 });
    expect(s.finished).toMatchObject({ verdict: 'ERROR', score: null });
  });

  it('caps the feed and keeps full counts', () => {
    const events = Array.from({ length: 450 }, (_, i) => check(i + 1, i * 20, i % 2 ? 'a' : 'b', i % 3 !== 0));
    let s = initialRunLive();
    for (let i = 0; i < events.length; i += 37) s = applyEvents(s, events.slice(i, i + 37), 100);
    expect(s.feed).toHaveLength(100);
    expect(s.feed[0].seq).toBe(450);
    expect(s.feed[99].seq).toBe(351);
    expect(s.checks.total).toBe(450);
    expect(s.checks.failed).toBe(150);
    expect(s.probes.a.passed + s.probes.a.failed + s.probes.b.passed + s.probes.b.failed).toBe(450);
  });

  it('folds 5,000 events quickly, in one batch or in many', () => {
    const events: RunEventIn[] = [{ seq: 1, at: at(0), kind: 'run.started', payload: {} }];
    for (let i = 2; i <= 5000; i++) events.push(check(i, i * 20, `p${i % 5}`, i % 7 !== 0, i < 2500 ? 'before' : 'during', i % 50));
    const t0 = performance.now();
    const one = applyEvents(initialRunLive(), events);
    const t1 = performance.now();
    let many = initialRunLive();
    for (let i = 0; i < events.length; i += 10) many = applyEvents(many, events.slice(i, i + 10)); // a flush every 10 events
    const t2 = performance.now();
    expect(one.checks.total).toBe(4999);
    expect(many.checks).toEqual(one.checks);
    expect(many.feed).toEqual(one.feed);
    expect(one.feed).toHaveLength(200);
    expect(one.timeline).toHaveLength(3); // started, before, during
    expect(t1 - t0).toBeLessThan(200);
    expect(t2 - t1).toBeLessThan(1000);
  });
});

describe('what the chart and the live header read', () => {
  const action = (seq: number, ms: number, kind: string, ok?: boolean): RunEventIn => ({
    seq,
    at: at(ms),
    kind,
    payload: { step: 1, path: 'steps[1]', name: 'scale-down', detail: 'kubectl: exit status: 0', ...(ok === undefined ? {} : { ok }) },
  });

  it('keeps every check in order, the start, the latest event and where the method began', () => {
    const s = applyEvents(initialRunLive(), demo);
    expect(s.started).toBe(true);
    expect(s.lastAt).toBe(T0 + 8200);
    expect(s.methodAt).toBe(T0 + 2000); // the first fault: the baseline ends there
    expect(logRows(s.checkLog).map((r) => r.seq)).toEqual([2, 3, 5, 9, 10]);
    expect(s.checkLog?.size).toBe(5);
  });

  it('has no run.started until it arrives, though other events set the clock', () => {
    const s = applyEvents(initialRunLive(), [check(3, 500, 'web', true)]);
    expect(s.started).toBe(false);
    expect(s.startedAt).toBe(T0 + 500);
    const t = applyEvents(s, [{ seq: 4, at: at(0), kind: 'run.started', payload: {} }]);
    expect(t.started).toBe(true);
    expect(t.startedAt).toBe(T0);
    expect(t.lastAt).toBe(T0 + 500); // the latest event, not the last one applied
  });

  it('marks action steps: started, done, undone, and an action can begin the method', () => {
    const s = applyEvents(initialRunLive(), [
      { seq: 1, at: at(0), kind: 'run.started', payload: {} },
      action(2, 1500, 'action.started'),
      action(3, 1800, 'action.done', true),
      fault(4, 2000, 'fault.applied', 0, 'steps[2]', 'process-pause'),
      action(5, 6000, 'action.undone', false),
    ]);
    expect(s.methodAt).toBe(T0 + 1500);
    expect(s.actions).toEqual([
      { seq: 2, at: T0 + 1500, kind: 'action.started', name: 'scale-down' },
      { seq: 3, at: T0 + 1800, kind: 'action.done', name: 'scale-down', ok: true },
      { seq: 5, at: T0 + 6000, kind: 'action.undone', name: 'scale-down', ok: false },
    ]);
  });

  it('never changes an earlier state: the check log is shared, not copied', () => {
    const a = applyEvents(initialRunLive(), demo.slice(0, 3));
    const b = applyEvents(a, demo.slice(3, 6));
    const c = applyEvents(b, demo.slice(6));
    expect(logRows(a.checkLog).map((r) => r.seq)).toEqual([2, 3]);
    expect(logRows(b.checkLog).map((r) => r.seq)).toEqual([2, 3, 5]);
    expect(logRows(c.checkLog).map((r) => r.seq)).toEqual([2, 3, 5, 9, 10]);
    expect(c.checkLog!.prev!.prev).toBe(a.checkLog); // b's node, then a's: nothing copied
    expect(b.actions).toBe(a.actions); // no action event: the same list
    // A batch with no check adds no node.
    const d = applyEvents(c, [{ seq: 13, at: at(9000), kind: 'rollback.done', payload: { index: 0, ok: true, detail: '' } }]);
    expect(d.checkLog).toBe(c.checkLog);
  });

  it('keeps every check of a long run in linear time, however it is batched', () => {
    const events: RunEventIn[] = [{ seq: 1, at: at(0), kind: 'run.started', payload: {} }];
    for (let i = 2; i <= 30_000; i++) events.push(check(i, i * 20, `p${i % 3}`, i % 11 !== 0, 'before', i % 40));
    const t0 = performance.now();
    let s = initialRunLive();
    for (let i = 0; i < events.length; i += 8) s = applyEvents(s, events.slice(i, i + 8));
    const t1 = performance.now();
    expect(s.checkLog?.size).toBe(29_999);
    expect(logRows(s.checkLog)).toHaveLength(29_999);
    expect(t1 - t0).toBeLessThan(2000);
  });
});

describe('helpers', () => {
  it('stageOf reads the stage of a fault path', () => {
    expect(stageOf('steps[2].parallel[0]')).toBe(2);
    expect(stageOf('steps[10]')).toBe(10);
    expect(stageOf('')).toBeNull();
  });
  it('offset is relative to the run start', () => {
    expect(offset(T0 + 2140, T0)).toBe('+2.1 s');
    expect(offset(T0 + 125_000, T0)).toBe('+2 min 5 s');
    expect(offset(T0, null)).toBe('–');
  });
});
