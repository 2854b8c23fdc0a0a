import { describe, expect, it } from 'vitest';
import { NO_FILTERS, parseFilters, serializeFilters, sinceOf } from './filters';

describe('run filters in the URL', () => {
  it('reads every filter', () => {
    expect(parseFilters('?template=t1&status=FAILED,ERROR&delegate=edge-1&window=24h')).toEqual({
      templateId: 't1',
      status: ['FAILED', 'ERROR'],
      delegate: 'edge-1',
      window: '24h',
    });
  });

  it('reads and writes the schedule, only when given', () => {
    expect(parseFilters('?schedule=s1&status=ERROR')).toEqual({ ...NO_FILTERS, scheduleId: 's1', status: ['ERROR'] });
    expect('scheduleId' in parseFilters('?template=t1')).toBe(false);
    expect(serializeFilters({ ...NO_FILTERS, scheduleId: 's1', templateId: 't1' })).toBe('?template=t1&schedule=s1');
  });

  it('reads nothing as no filter', () => {
    expect(parseFilters('')).toEqual(NO_FILTERS);
    expect(parseFilters('?')).toEqual(NO_FILTERS);
  });

  it('ignores unknown statuses and windows, repeats, case and order', () => {
    expect(parseFilters('status=error,bogus,PASSED,error&window=1y&x=1')).toEqual({ ...NO_FILTERS, status: ['PASSED', 'ERROR'] });
  });

  it('writes a minimal, stable query string', () => {
    expect(serializeFilters(NO_FILTERS)).toBe('');
    expect(serializeFilters({ templateId: 'a b', status: ['ERROR', 'PASSED'], delegate: 'env=demo', window: '7d' })).toBe(
      '?template=a+b&status=PASSED,ERROR&delegate=env%3Ddemo&window=7d',
    );
  });

  it('round-trips', () => {
    for (const f of [
      NO_FILTERS,
      { templateId: 'x', status: [], delegate: null, window: 'all' as const },
      { templateId: null, status: ['PENDING', 'RUNNING'] as const, delegate: 'k=v,a=b', window: '30d' as const },
    ]) {
      const back = parseFilters(serializeFilters({ ...f, status: [...f.status] }));
      expect(back).toEqual({ ...f, status: [...f.status] });
    }
  });

  it('turns a window into since', () => {
    const now = Date.parse('2026-03-10T12:00:00Z');
    expect(sinceOf('1h', now)).toBe('2026-03-10T11:00:00.000Z');
    expect(sinceOf('7d', now)).toBe('2026-03-03T12:00:00.000Z');
    expect(sinceOf('all', now)).toBeNull();
  });
});
