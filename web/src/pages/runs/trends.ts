// Resilience score trends, computed from finished runs: one series per template (score by end
// time) and a project series (the daily mean over every template).

export interface TrendRunIn {
  id: string;
  resilienceScore?: number | null;
  endedAt?: string | null;
  template: { id: string; name: string };
}

export interface TrendPoint {
  /** End time, ms since the epoch. */
  t: number;
  score: number;
  runId: string;
}

export interface TemplateTrend {
  id: string;
  name: string;
  /** Oldest first. */
  points: TrendPoint[];
  latest: number;
  mean: number;
  min: number;
  count: number;
  lastAt: number;
}

export interface DayPoint {
  /** Start of the day, ms since the epoch. */
  day: number;
  /** End of the day's last run: where the chart plots the day, so it stays within the data. */
  at: number;
  mean: number;
  count: number;
}

export interface Trends {
  /** By name. */
  templates: TemplateTrend[];
  /** Oldest day first; days without runs are left out. */
  project: DayPoint[];
}

/** The start of `t`'s day in local time. */
export function localDay(t: number): number {
  const d = new Date(t);
  d.setHours(0, 0, 0, 0);
  return d.getTime();
}

/** Runs without a score or an end time are skipped. */
export function computeTrends(runs: readonly TrendRunIn[], dayOf: (t: number) => number = localDay): Trends {
  const byTemplate = new Map<string, { name: string; points: TrendPoint[] }>();
  const byDay = new Map<number, { sum: number; count: number; at: number }>();
  for (const r of runs) {
    const score = r.resilienceScore;
    if (score === null || score === undefined || !Number.isFinite(score) || !r.endedAt) continue;
    const t = Date.parse(r.endedAt);
    if (Number.isNaN(t)) continue;
    let tpl = byTemplate.get(r.template.id);
    if (!tpl) {
      tpl = { name: r.template.name, points: [] };
      byTemplate.set(r.template.id, tpl);
    }
    tpl.points.push({ t, score, runId: r.id });
    const day = dayOf(t);
    const d = byDay.get(day) ?? { sum: 0, count: 0, at: t };
    d.sum += score;
    d.count += 1;
    d.at = Math.max(d.at, t);
    byDay.set(day, d);
  }
  const templates: TemplateTrend[] = [...byTemplate.entries()].map(([id, { name, points }]) => {
    points.sort((a, b) => a.t - b.t || a.runId.localeCompare(b.runId));
    let sum = 0;
    let min = Infinity;
    for (const p of points) {
      sum += p.score;
      min = Math.min(min, p.score);
    }
    const last = points[points.length - 1];
    return { id, name, points, latest: last.score, mean: sum / points.length, min, count: points.length, lastAt: last.t };
  });
  templates.sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
  const project = [...byDay.entries()]
    .map(([day, d]) => ({ day, at: d.at, mean: d.sum / d.count, count: d.count }))
    .sort((a, b) => a.day - b.day);
  return { templates, project };
}

export interface ChartSeries {
  label: string;
  color: string;
  /** The project line is drawn dashed. */
  dashed?: boolean;
}

export interface ChartData {
  /** x in seconds (uPlot's time scale), then one array per series, aligned, null where a series has no point. */
  data: [number[], ...(number | null)[][]];
  series: ChartSeries[];
}

const PALETTE = ['#2563eb', '#ea580c', '#16a34a', '#9333ea', '#dc2626', '#0891b2', '#ca8a04', '#db2777', '#4b5563', '#65a30d'];

/**
 * The chart's aligned data: one line per template in `templates`, then the project's daily mean,
 * plotted at the end of each day's last run.
 */
export function chartData(templates: readonly TemplateTrend[], project: readonly DayPoint[], projectLabel = 'Project (daily mean)'): ChartData {
  const lines: { label: string; color: string; dashed?: boolean; pts: Map<number, number> }[] = templates.map((tpl, i) => ({
    label: tpl.name,
    color: PALETTE[i % PALETTE.length],
    pts: new Map(tpl.points.map((p) => [p.t, p.score])),
  }));
  if (project.length) {
    lines.push({ label: projectLabel, color: '#111827', dashed: true, pts: new Map(project.map((d) => [d.at, d.mean])) });
  }
  const xs = [...new Set(lines.flatMap((l) => [...l.pts.keys()]))].sort((a, b) => a - b);
  const data: ChartData['data'] = [xs.map((x) => x / 1000)];
  for (const l of lines) data.push(xs.map((x) => l.pts.get(x) ?? null));
  return { data, series: lines.map(({ label, color, dashed }) => ({ label, color, dashed })) };
}
