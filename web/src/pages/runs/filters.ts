// The runs list's filters, kept in the URL query string so a filtered view is a deep link:
// `?template=<id>&schedule=<id>&status=FAILED,ERROR&delegate=<name>&window=24h`.
import type { RunStatus } from '../../gql/graphql';

export const STATUSES: RunStatus[] = ['PENDING', 'DISPATCHED', 'RUNNING', 'ABORTING', 'PASSED', 'FAILED', 'ABORTED', 'ERROR'];
export const UNFINISHED: RunStatus[] = ['PENDING', 'DISPATCHED', 'RUNNING', 'ABORTING'];
export const FINISHED: RunStatus[] = ['PASSED', 'FAILED', 'ABORTED', 'ERROR'];

export const WINDOWS = {
  '1h': { label: 'Last hour', ms: 3_600_000 },
  '24h': { label: 'Last 24 hours', ms: 86_400_000 },
  '7d': { label: 'Last 7 days', ms: 7 * 86_400_000 },
  '30d': { label: 'Last 30 days', ms: 30 * 86_400_000 },
} as const;
export type Window = keyof typeof WINDOWS | 'all';

export interface RunFilters {
  templateId: string | null;
  /** Empty: any status. Always in the order of `STATUSES`, without repeats. */
  status: RunStatus[];
  delegate: string | null;
  window: Window;
  /** Only the runs this schedule started (from a schedule's page). */
  scheduleId?: string | null;
}

export const NO_FILTERS: RunFilters = { templateId: null, status: [], delegate: null, window: 'all' };

/** Reads the filters from a query string (with or without its `?`); ignores what it does not know. */
export function parseFilters(search: string): RunFilters {
  const q = new URLSearchParams(search.startsWith('?') ? search.slice(1) : search);
  const wanted = new Set(
    (q.get('status') ?? '')
      .split(',')
      .map((s) => s.trim().toUpperCase())
      .filter(Boolean),
  );
  const w = q.get('window') ?? 'all';
  return {
    templateId: q.get('template')?.trim() || null,
    status: STATUSES.filter((s) => wanted.has(s)),
    delegate: q.get('delegate')?.trim() || null,
    window: w in WINDOWS ? (w as Window) : 'all',
    ...(q.get('schedule')?.trim() ? { scheduleId: q.get('schedule')!.trim() } : {}),
  };
}

/** The query string for the filters, `?…` or empty when nothing is filtered. */
export function serializeFilters(f: RunFilters): string {
  const q = new URLSearchParams();
  if (f.templateId) q.set('template', f.templateId);
  if (f.scheduleId) q.set('schedule', f.scheduleId);
  if (f.status.length) q.set('status', STATUSES.filter((s) => f.status.includes(s)).join(','));
  if (f.delegate) q.set('delegate', f.delegate);
  if (f.window !== 'all') q.set('window', f.window);
  const s = q.toString().replace(/%2C/g, ',');
  return s ? `?${s}` : '';
}

/** The `since` of a time window, as of `now`; null for all time. */
export function sinceOf(w: Window, now: number = Date.now()): string | null {
  return w === 'all' ? null : new Date(now - WINDOWS[w].ms).toISOString();
}

/** The status choices the filter offers: any, two groups, then each status. */
export const STATUS_PRESETS: { value: string; label: string; statuses: RunStatus[] }[] = [
  { value: '', label: 'Any status', statuses: [] },
  { value: UNFINISHED.join(','), label: 'Unfinished', statuses: UNFINISHED },
  { value: FINISHED.join(','), label: 'Finished', statuses: FINISHED },
  { value: 'FAILED,ERROR', label: 'Failed or error', statuses: ['FAILED', 'ERROR'] },
  ...STATUSES.map((s) => ({ value: s, label: s.charAt(0) + s.slice(1).toLowerCase(), statuses: [s] })),
];
