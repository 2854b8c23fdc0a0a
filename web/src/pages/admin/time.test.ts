import { describe, expect, it } from 'vitest';
import { endOfLocalDay, formatWhen, labelPairs } from './time';
import { tokenState } from './common';

const now = Date.parse('2024-05-10T12:00:00.000Z');

describe('formatWhen', () => {
  it('reads future instants as "in …"', () => {
    expect(formatWhen('2024-05-10T12:00:30.000Z', now)).toBe('in 30 s');
    expect(formatWhen('2024-05-10T12:10:00.000Z', now)).toBe('in 10 min');
    expect(formatWhen('2024-05-11T11:00:00.000Z', now)).toBe('in 23 h');
    expect(formatWhen('2024-06-09T12:00:00.000Z', now)).toBe('in 30 days');
  });

  it('reads past instants as formatAgo does', () => {
    expect(formatWhen('2024-05-10T11:57:00.000Z', now)).toBe('3 min ago');
    expect(formatWhen('garbage', now)).toBe('–');
  });
});

describe('tokenState', () => {
  it('orders revoked, expired, used, active', () => {
    expect(tokenState({ revokedAt: '2024-05-01T00:00:00Z', expiresAt: '2024-05-02T00:00:00Z' }, now)).toBe('revoked');
    expect(tokenState({ expiresAt: '2024-05-02T00:00:00Z' }, now)).toBe('expired');
    expect(tokenState({ reusable: false, usedAt: '2024-05-09T00:00:00Z', expiresAt: '2024-06-01T00:00:00Z' }, now)).toBe('used');
    expect(tokenState({ reusable: true, usedAt: '2024-05-09T00:00:00Z', expiresAt: '2024-06-01T00:00:00Z' }, now)).toBe('active');
    expect(tokenState({ expiresAt: null }, now)).toBe('active');
  });
});

describe('endOfLocalDay', () => {
  it('is the last second of that local day', () => {
    const iso = endOfLocalDay('2030-01-31')!;
    const d = new Date(iso);
    expect([d.getFullYear(), d.getMonth(), d.getDate(), d.getHours(), d.getMinutes()]).toEqual([2030, 0, 31, 23, 59]);
    expect(endOfLocalDay('31/01/2030')).toBeNull();
  });
});

describe('labelPairs', () => {
  it('sorts a labels object into pairs and ignores non-objects', () => {
    expect(labelPairs({ team: 'web', env: 'prod', n: 3 })).toEqual([
      ['env', 'prod'],
      ['n', '3'],
      ['team', 'web'],
    ]);
    expect(labelPairs(null)).toEqual([]);
    expect(labelPairs(['a'])).toEqual([]);
  });
});
