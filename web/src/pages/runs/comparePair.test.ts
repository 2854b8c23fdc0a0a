import { describe, expect, it } from 'vitest';
import { compareHref, defaultBaseline, orderPair, parseCompare } from './comparePair';

const A = 'aaaaaaaa-1111-4111-8111-111111111111';
const B = 'bbbbbbbb-2222-4222-8222-222222222222';

describe('the compare address', () => {
  it('parses a deep link, and writes one that parses back', () => {
    expect(parseCompare(`?a=${A}&b=${B}`)).toEqual({ a: A, b: B });
    expect(parseCompare(`b=${B}&a=${A}`)).toEqual({ a: A, b: B });
    expect(parseCompare(compareHref('abc 1', 'd&e').split('?')[1])).toEqual({ a: 'abc 1', b: 'd&e' });
    expect(compareHref(A, B)).toBe(`/runs/compare?a=${A}&b=${B}`);
  });

  it('reads a missing or blank id as none', () => {
    expect(parseCompare('')).toEqual({ a: null, b: null });
    expect(parseCompare(`?a=${A}&b=%20`)).toEqual({ a: A, b: null });
  });
});

describe('orderPair', () => {
  it('makes the older run the baseline, whichever comes first', () => {
    const old = { id: 'z', createdAt: '2026-03-01T10:00:00Z' };
    const young = { id: 'a', createdAt: '2026-03-02T10:00:00Z' };
    expect(orderPair(old, young)).toEqual([old, young]);
    expect(orderPair(young, old)).toEqual([old, young]);
  });
});

describe('defaultBaseline', () => {
  const current = { id: 'now', createdAt: '2026-03-05T10:00:00Z' };
  const r = (id: string, createdAt: string, status: string, dryRun = false) => ({ id, createdAt, status, dryRun });

  it('is the latest run before this one that passed or failed', () => {
    const runs = [
      r('later', '2026-03-06T10:00:00Z', 'PASSED'),
      r('aborted', '2026-03-04T12:00:00Z', 'ABORTED'),
      r('dry', '2026-03-04T11:00:00Z', 'PASSED', true),
      r('running', '2026-03-04T10:30:00Z', 'RUNNING'),
      r('failed', '2026-03-04T10:00:00Z', 'FAILED'),
      r('passed', '2026-03-03T10:00:00Z', 'PASSED'),
    ];
    expect(defaultBaseline(runs, current)?.id).toBe('failed');
    expect(defaultBaseline([...runs].reverse(), current)?.id).toBe('failed');
  });

  it('falls back to an aborted or errored run before it, and else to none', () => {
    expect(defaultBaseline([r('err', '2026-03-04T10:00:00Z', 'ERROR'), r('later', '2026-03-06T10:00:00Z', 'PASSED')], current)?.id).toBe('err');
    expect(defaultBaseline([r('later', '2026-03-06T10:00:00Z', 'PASSED'), r('pending', '2026-03-04T10:00:00Z', 'PENDING')], current)).toBeNull();
  });
});
