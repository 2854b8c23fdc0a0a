// Times on the admin pages: past ones relative ("3 min ago"), future ones too ("in 23 h"), so
// an expiry reads at a glance; the exact instant is in the tooltip.
import { formatAgo } from '../../ui';

export function formatWhen(iso: string, now: number = Date.now()): string {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return '–';
  const d = t - now;
  if (d <= 0) return formatAgo(iso, now);
  if (d < 60_000) return `in ${Math.ceil(d / 1000)} s`;
  if (d < 3_600_000) return `in ${Math.round(d / 60_000)} min`;
  if (d < 2 * 86_400_000) return `in ${Math.round(d / 3_600_000)} h`;
  return `in ${Math.round(d / 86_400_000)} days`;
}

/** Whether an optional instant has passed. */
export function past(iso: string | null | undefined, now: number = Date.now()): boolean {
  return !!iso && Date.parse(iso) <= now;
}

/** The end of a local calendar day (`YYYY-MM-DD`), as an ISO instant. */
export function endOfLocalDay(date: string): string | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(date);
  if (!m) return null;
  const d = new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]), 23, 59, 59);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

/** `key=value` pairs of a labels JSON object, sorted by key. */
export function labelPairs(labels: unknown): [string, string][] {
  if (!labels || typeof labels !== 'object' || Array.isArray(labels)) return [];
  return Object.entries(labels as Record<string, unknown>)
    .map(([k, v]): [string, string] => [k, typeof v === 'string' ? v : JSON.stringify(v)])
    .sort(([a], [b]) => a.localeCompare(b));
}
