import { describe, expect, it } from 'vitest';
import {
  EMPTY_FILTER,
  auditFilterToSearch,
  auditVariables,
  isoToLocalInput,
  localInputToIso,
  parseAuditFilter,
  windowProblem,
} from './auditFilter';

describe('audit filter <-> URL query', () => {
  it('reads every filter from the query string', () => {
    expect(parseAuditFilter('?actor=user%3Aa%40x.io&action=run.&outcome=error&window=24h')).toEqual({
      ...EMPTY_FILTER,
      actor: 'user:a@x.io',
      action: 'run.',
      outcome: 'error',
      window: '24h',
    });
  });

  it('falls back to "any" for unknown or malformed values', () => {
    expect(parseAuditFilter('outcome=maybe&window=3w')).toEqual(EMPTY_FILTER);
    // since/until only count in a custom window, and only when they are instants
    expect(parseAuditFilter('since=2024-01-01T00:00:00Z')).toEqual(EMPTY_FILTER);
    expect(parseAuditFilter('window=custom&since=yesterday').since).toBe('');
  });

  it('writes only what is set, and reads back what it wrote', () => {
    expect(auditFilterToSearch(EMPTY_FILTER)).toBe('');
    const f = {
      ...EMPTY_FILTER,
      actor: 'token:ci',
      outcome: 'ok' as const,
      window: 'custom' as const,
      since: '2024-05-01T10:00:00.000Z',
      until: '2024-05-02T10:00:00.000Z',
    };
    const q = auditFilterToSearch(f);
    expect(q).toBe('actor=token%3Aci&outcome=ok&window=custom&since=2024-05-01T10%3A00%3A00.000Z&until=2024-05-02T10%3A00%3A00.000Z');
    expect(parseAuditFilter(q)).toEqual(f);
  });

  it('drops since/until from the URL once the window is not custom', () => {
    expect(auditFilterToSearch({ ...EMPTY_FILTER, window: '7d', since: '2024-05-01T10:00:00.000Z' })).toBe('window=7d');
  });
});

describe('auditVariables', () => {
  const now = Date.parse('2024-05-10T12:00:00.000Z');

  it('sends nulls for "any"', () => {
    expect(auditVariables(EMPTY_FILTER, now)).toEqual({ actor: null, action: null, outcome: null, since: null, until: null });
  });

  it('turns a relative window into since = now - window', () => {
    expect(auditVariables({ ...EMPTY_FILTER, window: '1h' }, now).since).toBe('2024-05-10T11:00:00.000Z');
    expect(auditVariables({ ...EMPTY_FILTER, window: '7d' }, now).since).toBe('2024-05-03T12:00:00.000Z');
  });

  it('passes an action prefix and a custom window through', () => {
    const v = auditVariables(
      { ...EMPTY_FILTER, action: ' member. ', window: 'custom', until: '2024-05-02T10:00:00.000Z' },
      now,
    );
    expect(v).toMatchObject({ action: 'member.', since: null, until: '2024-05-02T10:00:00.000Z' });
  });

  it('names the field of a window that ends before it starts', () => {
    const f = { ...EMPTY_FILTER, window: 'custom' as const, since: '2024-05-02T00:00:00Z', until: '2024-05-01T00:00:00Z' };
    expect(windowProblem(f)).toMatch(/^Until:/);
    expect(windowProblem({ ...f, until: '2024-05-03T00:00:00Z' })).toBeNull();
  });

  it('converts between ISO instants and datetime-local input values', () => {
    const iso = localInputToIso('2024-05-01T10:30');
    expect(isoToLocalInput(iso)).toBe('2024-05-01T10:30');
    expect(localInputToIso('')).toBe('');
    expect(isoToLocalInput('nonsense')).toBe('');
  });
});
