// What the schedule pages share that is not React: cron presets, instants shown in a given IANA
// zone, the browser's zone and the zones it knows, jitter as the hub writes it, and the words
// for concurrency policies and fire outcomes.
import type { FireOutcome, ScheduleConcurrency } from '../../gql/graphql';

/** One-click expressions for the cron helper (5 fields: minute hour day-of-month month day-of-week). */
export const CRON_PRESETS: { label: string; cron: string }[] = [
  { label: 'Every 15 minutes', cron: '*/15 * * * *' },
  { label: 'Every hour', cron: '0 * * * *' },
  { label: 'Every day at 02:00', cron: '0 2 * * *' },
  { label: 'Weekdays at 09:00', cron: '0 9 * * 1-5' },
  { label: 'Mondays at 06:00', cron: '0 6 * * 1' },
];

/** What each concurrency policy does while the schedule's previous run is unfinished. */
export const CONCURRENCY: { value: ScheduleConcurrency; label: string; explain: string }[] = [
  { value: 'FORBID', label: 'Forbid', explain: 'Skip the fire while the previous run is unfinished.' },
  { value: 'QUEUE', label: 'Queue', explain: 'Start it when the previous run ends; one fire waits, later ones are skipped.' },
  { value: 'ALLOW', label: 'Allow', explain: 'Start it anyway, beside the unfinished run.' },
];

/** The badge class of each fire outcome (the same colours as run statuses). */
export const OUTCOME_CLASS: Record<FireOutcome, string> = {
  STARTED: 'ok',
  QUEUED: 'wait',
  SKIPPED: 'warn',
  MISSED: 'warn',
  FAILED: 'bad',
};

/** The zone this browser shows times in, e.g. `Europe/Berlin` (`UTC` when it cannot say). */
export function browserZone(): string {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  } catch {
    return 'UTC';
  }
}

/** Every IANA zone the browser knows, for the zone field's suggestions (none on old browsers). */
export function zoneNames(): string[] {
  const intl = Intl as unknown as { supportedValuesOf?: (key: string) => string[] };
  try {
    return intl.supportedValuesOf?.('timeZone') ?? [];
  } catch {
    return [];
  }
}

/**
 * An instant as a wall-clock time in `zone`, with the zone's abbreviation:
 * "Jan 5, 2026, 21:00:00 GMT+9". A zone the browser does not know falls back to UTC.
 */
export function formatInZone(iso: string, zone: string): string {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return '–';
  const opts: Intl.DateTimeFormatOptions = {
    year: 'numeric',
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    hourCycle: 'h23',
    timeZoneName: 'short',
  };
  try {
    return new Intl.DateTimeFormat(undefined, { ...opts, timeZone: zone }).format(t);
  } catch {
    return new Intl.DateTimeFormat(undefined, { ...opts, timeZone: 'UTC' }).format(t);
  }
}

/** Milliseconds as the hub reads a duration back: "" for none, "30s", "1500ms". */
export function formatJitter(ms: number): string {
  if (!ms) return '';
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

/** The hub's error on a field (`extensions.field`), e.g. `cron` or `timezone`. */
export function errorField(err: { graphQLErrors?: { extensions?: Record<string, unknown> }[] } | null | undefined): string | undefined {
  return err?.graphQLErrors?.[0]?.extensions?.field as string | undefined;
}
