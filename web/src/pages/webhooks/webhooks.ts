// Webhooks page helpers (pure): the events and formats offered, the create form's check, and
// how an attempt and a delivery state read.
import type { WebhookEvent, WebhookFormat } from '../../gql/graphql';

export const EVENTS: { value: WebhookEvent; label: string }[] = [
  { value: 'RUN_STARTED', label: 'Run started' },
  { value: 'RUN_FINISHED', label: 'Run finished (passed / failed)' },
  { value: 'RUN_ABORTED', label: 'Run aborted' },
  { value: 'RUN_ERROR', label: 'Run error' },
  { value: 'GUARDRAIL_TRIPPED', label: 'Guardrail tripped' },
  { value: 'SCHEDULE_FIRE_FAILED', label: 'Schedule fire failed' },
  { value: 'DELEGATE_DISCONNECTED', label: 'Delegate disconnected' },
  { value: 'PROJECT_HALTED', label: 'Project halted' },
];

export const FORMATS: { value: WebhookFormat; label: string }[] = [
  { value: 'JSON', label: 'JSON (signed)' },
  { value: 'SLACK', label: 'Slack' },
  { value: 'TEAMS', label: 'Microsoft Teams' },
];

/** The events a webhook subscribes to, short. */
export function eventsText(events: readonly WebhookEvent[]): string {
  if (events.length === EVENTS.length) return 'all events';
  return EVENTS.filter((e) => events.includes(e.value))
    .map((e) => e.label.replace(/ \(.*\)$/, ''))
    .join(', ');
}

/** The problem with the create form, naming the field; null when it can be sent. */
export function webhookProblem(url: string, events: readonly WebhookEvent[], secret: string): string | null {
  const u = url.trim();
  if (!u) return 'URL: where to send, e.g. https://hooks.slack.com/services/…';
  let parsed: URL;
  try {
    parsed = new URL(u);
  } catch {
    return 'URL: not a valid URL';
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') return 'URL: use an https:// (or http://) URL';
  if (events.length === 0) return 'Events: pick at least one';
  const s = secret.trim();
  if (s && (s.length < 16 || s.length > 256)) return 'Secret: 16 to 256 characters, or leave it empty to have one generated';
  return null;
}

export interface AttemptLike {
  n: number;
  status?: number | null;
  latencyMs: number;
  error?: string | null;
}

/** One attempt in a line: `#2 HTTP 503 · 12 ms`, or `#1 connection failed: … · 3 ms`. */
export function attemptText(a: AttemptLike): string {
  const what = a.status != null ? `HTTP ${a.status}` : (a.error ?? 'no response');
  return `#${a.n} ${what} · ${Math.round(a.latencyMs)} ms`;
}

export function attemptOk(a: AttemptLike): boolean {
  return a.status != null && a.status >= 200 && a.status < 300;
}

export function deliveryBadge(state: string): string {
  if (state === 'delivered') return 'badge-ok';
  if (state === 'failed') return 'badge-bad';
  return 'badge-wait';
}
