import { describe, expect, it } from 'vitest';
import { render, screen } from '@testing-library/react';
import { finished, formatAgo, formatDuration, StatusBadge } from './ui';
import { wsUrl } from './client';

describe('formatDuration', () => {
  it('uses the largest sensible units', () => {
    expect(formatDuration(250)).toBe('250 ms');
    expect(formatDuration(12_400)).toBe('12 s');
    expect(formatDuration(252_000)).toBe('4 min 12 s');
    expect(formatDuration(7_500_000)).toBe('2 h 5 min');
  });
  it('shows a dash for nonsense', () => {
    expect(formatDuration(-1)).toBe('–');
    expect(formatDuration(Number.NaN)).toBe('–');
  });
});

describe('formatAgo', () => {
  const now = Date.parse('2026-11-24T12:00:00Z');
  it('counts back from now', () => {
    expect(formatAgo('2026-11-24T11:59:48Z', now)).toBe('12 s ago');
    expect(formatAgo('2026-11-24T11:57:00Z', now)).toBe('3 min ago');
    expect(formatAgo('2026-11-24T09:00:00Z', now)).toBe('3 h ago');
  });
  it('says so for a future time and a bad string', () => {
    expect(formatAgo('2026-11-24T12:00:05Z', now)).toBe('in the future');
    expect(formatAgo('yesterday', now)).toBe('–');
  });
});

describe('run status', () => {
  it('knows which statuses are final', () => {
    expect(['PASSED', 'FAILED', 'ABORTED', 'ERROR'].every(finished)).toBe(true);
    expect(['PENDING', 'DISPATCHED', 'RUNNING', 'ABORTING'].some(finished)).toBe(false);
  });
  it('colours a badge by outcome', () => {
    render(<StatusBadge status="FAILED" />);
    const b = screen.getByText('FAILED');
    expect(b.className).toContain('badge-bad');
    expect(b.dataset.status).toBe('FAILED');
  });
});

describe('wsUrl', () => {
  it('follows the page scheme', () => {
    expect(wsUrl({ protocol: 'https:', host: 'hub:8443' } as Location)).toBe('wss://hub:8443/graphql/ws');
    expect(wsUrl({ protocol: 'http:', host: '127.0.0.1:80' } as Location)).toBe('ws://127.0.0.1:80/graphql/ws');
  });
});
