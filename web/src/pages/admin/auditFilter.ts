// The audit log's filters, kept in the URL query string so a filtered view can be shared, and
// turned into auditLog variables.

export type Outcome = '' | 'ok' | 'error';
/** A window ending now, or `custom` (then `since`/`until`, ISO instants, bound it). */
export type Window = '' | '1h' | '24h' | '7d' | '30d' | 'custom';

export interface AuditFilter {
  actor: string;
  action: string;
  outcome: Outcome;
  window: Window;
  since: string;
  until: string;
}

export const EMPTY_FILTER: AuditFilter = { actor: '', action: '', outcome: '', window: '', since: '', until: '' };

export const WINDOWS: { value: Window; label: string; ms?: number }[] = [
  { value: '', label: 'Any time' },
  { value: '1h', label: 'Last hour', ms: 3_600_000 },
  { value: '24h', label: 'Last 24 hours', ms: 86_400_000 },
  { value: '7d', label: 'Last 7 days', ms: 7 * 86_400_000 },
  { value: '30d', label: 'Last 30 days', ms: 30 * 86_400_000 },
  { value: 'custom', label: 'Between…' },
];

/** Actions the hub records; a prefix ending in `.` matches every action under it. */
export const KNOWN_ACTIONS = [
  'login',
  'token.use',
  'template.',
  'template.create',
  'template.update',
  'run.',
  'run.start',
  'run.abort',
  'delegate.revoke',
  'delegate_token.',
  'delegate_token.create',
  'delegate_token.revoke',
  'member.',
  'member.set',
  'member.remove',
  'api_token.',
  'api_token.create',
  'api_token.revoke',
  'project.',
  'project.create',
  'project.delete',
  'project.halt',
  'project.lift_halt',
  'user.create',
];

function validInstant(s: string): boolean {
  return s !== '' && !Number.isNaN(Date.parse(s));
}

/** Reads the filter from a query string; unknown or malformed values fall back to "any". */
export function parseAuditFilter(search: string | URLSearchParams): AuditFilter {
  const q = typeof search === 'string' ? new URLSearchParams(search) : search;
  const outcome = q.get('outcome');
  const window = q.get('window') ?? '';
  const since = q.get('since') ?? '';
  const until = q.get('until') ?? '';
  const w = (WINDOWS.some((x) => x.value === window) ? window : '') as Window;
  return {
    actor: (q.get('actor') ?? '').trim(),
    action: (q.get('action') ?? '').trim(),
    outcome: outcome === 'ok' || outcome === 'error' ? outcome : '',
    window: w,
    since: w === 'custom' && validInstant(since) ? since : '',
    until: w === 'custom' && validInstant(until) ? until : '',
  };
}

/** The query string for a filter (no leading `?`), without the empty parts. */
export function auditFilterToSearch(f: AuditFilter): string {
  const q = new URLSearchParams();
  if (f.actor.trim()) q.set('actor', f.actor.trim());
  if (f.action.trim()) q.set('action', f.action.trim());
  if (f.outcome) q.set('outcome', f.outcome);
  if (f.window) q.set('window', f.window);
  if (f.window === 'custom') {
    if (f.since) q.set('since', f.since);
    if (f.until) q.set('until', f.until);
  }
  return q.toString();
}

export interface AuditVariables {
  actor: string | null;
  action: string | null;
  outcome: string | null;
  since: string | null;
  until: string | null;
}

/** auditLog arguments for a filter, a relative window ending at `now`. */
export function auditVariables(f: AuditFilter, now: number): AuditVariables {
  const w = WINDOWS.find((x) => x.value === f.window);
  let since: string | null = null;
  let until: string | null = null;
  if (w?.ms) since = new Date(now - w.ms).toISOString();
  if (f.window === 'custom') {
    since = f.since ? new Date(f.since).toISOString() : null;
    until = f.until ? new Date(f.until).toISOString() : null;
  }
  return {
    actor: f.actor.trim() || null,
    action: f.action.trim() || null,
    outcome: f.outcome || null,
    since,
    until,
  };
}

/** The problem with a custom window, naming the field; null when there is none. */
export function windowProblem(f: AuditFilter): string | null {
  if (f.window !== 'custom') return null;
  if (f.since && f.until && Date.parse(f.since) >= Date.parse(f.until)) return 'Until: must be later than From';
  return null;
}

/** `2024-05-01T10:00:00.000Z` as a datetime-local input value in local time, and back. */
export function isoToLocalInput(iso: string): string {
  if (!validInstant(iso)) return '';
  const d = new Date(iso);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

export function localInputToIso(v: string): string {
  if (!v) return '';
  const t = new Date(v).getTime();
  return Number.isNaN(t) ? '' : new Date(t).toISOString();
}
