import { describe, expect, it } from 'vitest';
import { applyEvents, initialRunLive, type RunEventIn } from './events';
import { runChartModel } from './chart';

const T0 = Date.parse('2026-01-01T10:00:00Z');
const at = (ms: number) => new Date(T0 + ms).toISOString();
const check = (seq: number, ms: number, probe: string, ok: boolean, latencyMs: number): RunEventIn => ({
  seq,
  at: at(ms),
  kind: 'probe.check',
  payload: { probe, ok, phase: 'before', latencyMs, mode: 'continuous', attempts: 1, detail: '', step: 0 },
});
const fault = (seq: number, ms: number, kind: string, step: number, path: string, f: string): RunEventIn => ({
  seq,
  at: at(ms),
  kind,
  payload: { step, path, fault: f, detail: '' },
});

const run: RunEventIn[] = [
  { seq: 1, at: at(0), kind: 'run.started', payload: {} },
  check(2, 500, 'web', true, 2),
  check(3, 600, 'db', true, 5),
  fault(4, 2000, 'fault.applied', 0, 'steps[0]', 'process-pause'),
  check(5, 2500, 'web', false, 1000),
  fault(6, 4000, 'fault.reverted', 0, 'steps[0]', 'process-pause'),
  { seq: 7, at: at(4200), kind: 'action.started', payload: { step: 1, path: 'steps[1]', name: 'drain', detail: '' } },
  { seq: 8, at: at(4300), kind: 'action.done', payload: { step: 1, path: 'steps[1]', name: 'drain', ok: false, detail: '' } },
  fault(9, 5000, 'fault.applied', 1, 'steps[2]', 'process-kill'),
  check(10, 5100, 'web', false, 0.3),
  fault(11, 6000, 'fault.applied', 2, 'steps[3]', 'network-delay'),
];

describe('runChartModel', () => {
  const live = applyEvents(initialRunLive(), run);

  it('has one latency series per probe and failure markers at the failed checks', () => {
    const m = runChartModel(live, T0 + 7000, false);
    expect(m.probes).toEqual(['db', 'web']);
    const [xs, db, web, dbFailed, webFailed] = m.data;
    expect(xs).toEqual([0.5, 0.6, 2.5, 5.1]);
    expect(web).toEqual([2, null, 1000, 0.3]);
    expect(db).toEqual([null, 5, null, null]);
    expect(webFailed).toEqual([null, null, 1000, 0.3]);
    expect(dbFailed).toEqual([null, null, null, null]);
    expect(m.failures).toBe(2);
  });

  it('draws a check when it started, when the delegate says so', () => {
    const withStart = applyEvents(initialRunLive(), [
      { seq: 1, at: at(0), kind: 'run.started', payload: {} },
      // Ended at 2.5 s after a 500 ms timeout: started at 2.0 s, under the fault.
      { ...check(2, 2500, 'web', false, 500), payload: { ...check(2, 2500, 'web', false, 500).payload as object, startedMs: T0 + 2000 } },
      check(3, 2600, 'web', true, 2),
    ]);
    expect(runChartModel(withStart, T0 + 3000, false).data[0]).toEqual([2, 2.6]);
  });

  it('shades each fault: reverted, one-shot, and active to now', () => {
    const m = runChartModel(live, T0 + 7000, false);
    expect(m.bands).toEqual([
      { step: 0, label: 'process-pause', from: 2, to: 4, active: false, instant: false },
      // The kill's window was inferred from the next stage: it is an instant, not a window.
      { step: 1, label: 'process-kill', from: 5, to: 5, active: false, instant: true },
      { step: 2, label: 'network-delay', from: 6, to: 7, active: true, instant: false },
    ]);
    expect(m.xEnd).toBe(7);
    expect(m.baseline).toEqual({ from: 0, to: 2 });
    expect(m.actions).toEqual([
      { t: 4.2, label: 'drain started', kind: 'action.started', ok: undefined },
      { t: 4.3, label: 'drain failed', kind: 'action.done', ok: false },
    ]);
  });

  it("shows a kill's watch once its fault.ended came", () => {
    const watched = applyEvents(live, [fault(12, 6500, 'fault.ended', 1, 'steps[2]', 'process-kill')]);
    expect(runChartModel(watched, T0 + 7000, false).bands[1]).toEqual({
      step: 1,
      label: 'process-kill (watch)',
      from: 5,
      to: 6.5,
      active: false,
      instant: false,
    });
  });

  it('ends what is still open at the last event once the run is over', () => {
    const m = runChartModel(live, T0 + 60_000, true);
    expect(m.bands[2]).toMatchObject({ from: 6, to: 6, active: false });
    expect(m.xEnd).toBe(6);
  });

  it('shows the baseline growing until the method starts, and nothing before the run starts', () => {
    const early = applyEvents(initialRunLive(), run.slice(0, 3));
    expect(runChartModel(early, T0 + 1500, false).baseline).toEqual({ from: 0, to: 1.5 });
    const none = runChartModel(initialRunLive(), T0, false);
    expect(none.bands).toEqual([]);
    expect(none.data).toEqual([[]]);
  });

  it('keeps planned faults of a dry run off the chart', () => {
    const dry = applyEvents(initialRunLive(), [
      { seq: 1, at: at(0), kind: 'run.started', payload: { dryRun: true } },
      fault(2, 10, 'fault.planned', 0, 'steps[0]', 'process-pause'),
    ]);
    expect(runChartModel(dry, T0 + 100, false).bands).toEqual([]);
  });
});
