// The trends chart with the real uPlot: jsdom has no canvas, so drawing is stubbed, but uPlot
// fits its scales itself, which is where a single run once got an axis almost three years long.
import { afterEach, describe, expect, it, vi } from 'vitest';

vi.hoisted(() => {
  // uPlot reads these when it loads.
  const noop = () => {};
  const w = window as unknown as Record<string, unknown>;
  w.matchMedia ??= () => ({ matches: false, addEventListener: noop, removeEventListener: noop });
  (globalThis as Record<string, unknown>).Path2D ??= class {
    moveTo() {}
    lineTo() {}
    rect() {}
    arc() {}
    closePath() {}
    bezierCurveTo() {}
    addPath() {}
  };
});

import uPlot from 'uplot';
import { trendChartOptions } from './TrendChart';
import { chartData, computeTrends, type TrendRunIn } from './trends';

const noop = () => {};
const ctx = new Proxy({}, { get: (_t, k) => (k === 'measureText' ? () => ({ width: 30 }) : noop), set: () => true });
HTMLCanvasElement.prototype.getContext = (() => ctx) as unknown as HTMLCanvasElement['getContext'];

const DAY = 86_400;
const tpl = { id: 't1', name: 'quickstart' };
const run = (id: string, endedAt: number, score: number): TrendRunIn => ({ id, template: tpl, endedAt: new Date(endedAt * 1000).toISOString(), resilienceScore: score });

let plots: uPlot[] = [];
afterEach(() => {
  plots.forEach((u) => u.destroy());
  plots = [];
});

/** The x scale uPlot settles on for these runs. */
async function xScale(runs: TrendRunIn[]): Promise<[number, number]> {
  const t = computeTrends(runs);
  const chart = chartData(t.templates, t.project);
  const el = document.createElement('div');
  document.body.appendChild(el);
  const u = new uPlot(trendChartOptions(chart, 800), chart.data as uPlot.AlignedData, el);
  plots.push(u);
  await new Promise((r) => setTimeout(r, 0)); // uPlot commits its first layout in a microtask
  return [u.scales.x.min!, u.scales.x.max!];
}

describe('TrendChart time axis', () => {
  it('spans about a day around a single finished run', async () => {
    const at = Date.parse('2026-03-02T14:00:00Z') / 1000;
    const [lo, hi] = await xScale([run('r1', at, 100)]);
    expect(hi - lo).toBeGreaterThanOrEqual(0.9 * DAY);
    expect(hi - lo).toBeLessThanOrEqual(1.1 * DAY);
    expect(at - lo).toBeCloseTo(hi - at, 0);
  });

  it('spans runs over three weeks, and not much more', async () => {
    const first = Date.parse('2026-03-01T09:00:00Z') / 1000;
    const runs = [0, 3, 8, 15, 21].map((d, i) => run(`r${i}`, first + d * DAY, 60 + i * 5));
    const [lo, hi] = await xScale(runs);
    expect(lo).toBeLessThan(first);
    expect(hi).toBeGreaterThan(first + 21 * DAY);
    expect(first - lo).toBeLessThan(1.5 * DAY);
    expect(hi - (first + 21 * DAY)).toBeLessThan(1.5 * DAY);
  });
});
