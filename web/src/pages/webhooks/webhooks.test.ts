import { describe, expect, it } from 'vitest';
import { attemptOk, attemptText, deliveryBadge, eventsText, webhookProblem, EVENTS } from './webhooks';

describe('webhookProblem', () => {
  it('names the field', () => {
    expect(webhookProblem('', ['RUN_FINISHED'], '')).toMatch(/^URL:/);
    expect(webhookProblem('hooks.slack.com', ['RUN_FINISHED'], '')).toBe('URL: not a valid URL');
    expect(webhookProblem('ftp://x.io/a', ['RUN_FINISHED'], '')).toMatch(/^URL: use an https/);
    expect(webhookProblem('https://x.io/a', [], '')).toBe('Events: pick at least one');
    expect(webhookProblem('https://x.io/a', ['RUN_FINISHED'], 'short')).toMatch(/^Secret:/);
  });
  it('accepts a good form, with or without a secret', () => {
    expect(webhookProblem(' https://x.io/a ', ['RUN_FINISHED'], '')).toBeNull();
    expect(webhookProblem('http://10.0.0.1:8080/h', ['RUN_ERROR'], 'a'.repeat(16))).toBeNull();
  });
});

describe('attempts and states', () => {
  it('reads an attempt in one line', () => {
    expect(attemptText({ n: 2, status: 503, latencyMs: 12.4 })).toBe('#2 HTTP 503 · 12 ms');
    expect(attemptText({ n: 1, status: null, latencyMs: 3, error: 'connection failed: refused' })).toBe(
      '#1 connection failed: refused · 3 ms',
    );
    expect(attemptOk({ n: 3, status: 204, latencyMs: 1 })).toBe(true);
    expect(attemptOk({ n: 3, status: 302, latencyMs: 1 })).toBe(false);
    expect(attemptOk({ n: 3, status: null, latencyMs: 1 })).toBe(false);
  });
  it('colours states', () => {
    expect(deliveryBadge('delivered')).toBe('badge-ok');
    expect(deliveryBadge('failed')).toBe('badge-bad');
    expect(deliveryBadge('pending')).toBe('badge-wait');
  });
  it('lists events short', () => {
    expect(eventsText(['RUN_FINISHED', 'RUN_ERROR'])).toBe('Run finished, Run error');
    expect(eventsText(EVENTS.map((e) => e.value))).toBe('all events');
  });
});
