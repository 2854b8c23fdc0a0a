import { describe, expect, it } from 'vitest';
import { chartData, computeTrends, type TrendRunIn } from './trends';

const utcDay = (t: number) => t - (t % 86_400_000);
const A = { id: 'a', name: 'alpha' };
const B = { id: 'b', name: 'beta' };
const run = (id: string, template: typeof A, endedAt: string | null, score: number | null): TrendRunIn => ({ id, template, endedAt, resilienceScore: score });

const runs: TrendRunIn[] = [
  // newest first, as the API lists them
  run('r5', B, '2026-03-02T09:00:00Z', 50),
  run('r4', A, '2026-03-02T08:00:00Z', 90),
  run('r3', A, '2026-03-01T18:00:00Z', 70),
  run('r2', B, '2026-03-01T10:00:00Z', 100),
  run('r1', A, '2026-03-01T09:00:00Z', 80),
  run('r0', A, null, 10), // no end: skipped
  run('rn', B, '2026-03-01T11:00:00Z', null), // no score: skipped
];

describe('computeTrends', () => {
  it('makes one series per template, oldest first, with latest/mean/min/count', () => {
    const t = computeTrends(runs, utcDay);
    expect(t.templates.map((x) => x.name)).toEqual(['alpha', 'beta']);
    const [a, b] = t.templates;
    expect(a.points.map((p) => p.score)).toEqual([80, 70, 90]);
    expect(a).toMatchObject({ latest: 90, mean: 80, min: 70, count: 3, lastAt: Date.parse('2026-03-02T08:00:00Z') });
    expect(b).toMatchObject({ latest: 50, mean: 75, min: 50, count: 2 });
  });

  it('makes a project line of daily means', () => {
    const t = computeTrends(runs, utcDay);
    expect(t.project).toEqual([
      { day: Date.parse('2026-03-01T00:00:00Z'), at: Date.parse('2026-03-01T18:00:00Z'), mean: (80 + 100 + 70) / 3, count: 3 },
      { day: Date.parse('2026-03-02T00:00:00Z'), at: Date.parse('2026-03-02T09:00:00Z'), mean: 70, count: 2 },
    ]);
  });

  it('is empty without finished, scored runs', () => {
    expect(computeTrends([], utcDay)).toEqual({ templates: [], project: [] });
    expect(computeTrends([run('x', A, null, 50)], utcDay).templates).toEqual([]);
  });
});

describe('chartData', () => {
  it('aligns every series on one sorted x axis in seconds, null where a series has no point', () => {
    const t = computeTrends(runs, utcDay);
    const c = chartData(t.templates, t.project);
    expect(c.series.map((s) => s.label)).toEqual(['alpha', 'beta', 'Project (daily mean)']);
    expect(c.series[2].dashed).toBe(true);
    const [xs, alpha, beta, project] = c.data;
    expect(xs).toHaveLength(5); // day points sit on each day's last run
    expect([...xs].sort((p, q) => p - q)).toEqual(xs);
    expect(xs[0]).toBe(Date.parse('2026-03-01T09:00:00Z') / 1000);
    for (const s of [alpha, beta, project]) expect(s).toHaveLength(5);
    expect(alpha.filter((v) => v !== null)).toEqual([80, 70, 90]);
    expect(beta.filter((v) => v !== null)).toEqual([100, 50]);
    expect(project[xs.indexOf(Date.parse('2026-03-01T18:00:00Z') / 1000)]).toBeCloseTo(250 / 3);
    expect(project.filter((v) => v !== null)).toHaveLength(2);
  });

  it('draws only the chosen templates, and no project line without days', () => {
    const t = computeTrends(runs, utcDay);
    const c = chartData([t.templates[1]], []);
    expect(c.series.map((s) => s.label)).toEqual(['beta']);
    expect(c.data).toHaveLength(2);
    expect(c.data[1]).toEqual([100, 50]);
  });
});
