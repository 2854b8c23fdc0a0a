import { describe, expect, it } from 'vitest';
import { errorField, formatInZone, formatJitter } from './cron';

describe('schedule helpers', () => {
  it('shows an instant as the wall clock of a zone, UTC for a zone the browser does not know', () => {
    const at = '2026-01-05T12:00:00Z';
    expect(formatInZone(at, 'Asia/Tokyo')).toContain('21:00:00');
    expect(formatInZone(at, 'America/New_York')).toContain('07:00:00');
    expect(formatInZone(at, 'Mars/Olympus')).toBe(formatInZone(at, 'UTC'));
    expect(formatInZone('soon', 'UTC')).toBe('–');
  });

  it('writes jitter back as the hub reads it', () => {
    expect(formatJitter(0)).toBe('');
    expect(formatJitter(30_000)).toBe('30s');
    expect(formatJitter(120_000)).toBe('2m');
    expect(formatJitter(7_200_000)).toBe('2h');
    expect(formatJitter(1500)).toBe('1500ms');
  });

  it('finds the field the hub named', () => {
    expect(errorField({ graphQLErrors: [{ extensions: { code: 'BAD_USER_INPUT', field: 'cron' } }] })).toBe('cron');
    expect(errorField(null)).toBeUndefined();
  });
});
