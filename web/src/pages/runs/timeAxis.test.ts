import { describe, expect, it } from 'vitest';
import { fitTimeRange, MIN_SPAN, tickStep, ticksFor, timeDomain, timeLabels, timeSplits } from './timeAxis';

const HOUR = 3600;
const DAY = 86_400;
/** A local time, in seconds (the axis works in the browser's time zone). */
const local = (y: number, mo: number, d: number, h = 0, mi = 0) => new Date(y, mo - 1, d, h, mi).getTime() / 1000;
const t = local(2026, 3, 2, 14, 37);

describe('timeDomain', () => {
  it('puts a day around a single run, centred on it', () => {
    expect(timeDomain([t])).toEqual([t - 12 * HOUR, t + 12 * HOUR]);
  });

  it('spans runs over three weeks with 5 % room each side', () => {
    const xs = [t, t + 4 * DAY, t + 10 * DAY, t + 21 * DAY];
    const [lo, hi] = timeDomain(xs);
    const span = 21 * DAY;
    expect(lo).toBeCloseTo(t - 0.05 * span);
    expect(hi).toBeCloseTo(t + 21 * DAY + 0.05 * span);
    expect(hi - lo).toBeLessThan(24 * DAY);
  });

  it('widens a short span to a day around its middle, whatever the order of the points', () => {
    const [lo, hi] = timeDomain([t + HOUR, t]);
    expect(hi - lo).toBe(MIN_SPAN);
    expect((lo + hi) / 2).toBe(t + HOUR / 2);
  });

  it('shows the day around now without points', () => {
    expect(timeDomain([], 1_000_000)).toEqual([1_000_000 - 12 * HOUR, 1_000_000 + 12 * HOUR]);
  });
});

describe('fitTimeRange (uPlot x range)', () => {
  it('ignores uPlot’s thousand-day proposal for a single point', () => {
    // uPlot fits a lone x to [x, x + 86400 / ms]: with seconds, 86,400,000 s (2.7 years).
    const [lo, hi] = fitTimeRange({ data: [[t], [80]] }, t, t + 86_400_000);
    expect(lo).toBe(t - 12 * HOUR);
    expect(hi).toBe(t + 12 * HOUR);
  });

  it('fits the data when uPlot proposes its first and last point', () => {
    const xs = [t, t + 7 * DAY, t + 21 * DAY];
    expect(fitTimeRange({ data: [xs, [1, 2, 3]] }, xs[0], xs[2])).toEqual(timeDomain(xs));
  });

  it('keeps a zoom inside the data', () => {
    const xs = [t, t + 7 * DAY, t + 21 * DAY];
    expect(fitTimeRange({ data: [xs, [1, 2, 3]] }, t + DAY, t + 8 * DAY)).toEqual([t + DAY, t + 8 * DAY]);
  });
});

describe('ticks', () => {
  it('ticks a day in round hours, labelled HH:MM, with the date at midnight', () => {
    const [lo, hi] = timeDomain([t]);
    const splits = timeSplits(lo, hi, ticksFor(800));
    expect(tickStep(lo, hi, ticksFor(800)).unit).toBe('hour');
    expect(splits.length).toBeGreaterThanOrEqual(4);
    expect(splits.length).toBeLessThanOrEqual(ticksFor(800));
    for (const s of splits) {
      expect(s).toBeGreaterThanOrEqual(lo);
      expect(s).toBeLessThanOrEqual(hi);
      expect(new Date(s * 1000).getMinutes()).toBe(0);
    }
    const labels = timeLabels(splits, 'en-US');
    labels.forEach((l) => expect(l).toMatch(/^\d\d:00(\n[A-Z][a-z]{2} \d{1,2})?$/));
    // The first tick says its date, and so does the next midnight (the span crosses one).
    expect(labels[0]).toContain('\nMar 2');
    const midnight = splits.indexOf(local(2026, 3, 3));
    expect(midnight).toBeGreaterThan(0);
    expect(labels[midnight]).toBe('00:00\nMar 3');
  });

  it('ticks three weeks in days or weeks at midnight, labelled by date', () => {
    const [lo, hi] = timeDomain([t, t + 21 * DAY]);
    const splits = timeSplits(lo, hi, ticksFor(800));
    expect(['day', 'week']).toContain(tickStep(lo, hi, ticksFor(800)).unit);
    expect(splits.length).toBeGreaterThanOrEqual(3);
    for (const s of splits) {
      const d = new Date(s * 1000);
      expect([d.getHours(), d.getMinutes()]).toEqual([0, 0]);
    }
    const labels = timeLabels(splits, 'en-US');
    expect(labels[0]).toMatch(/^Mar \d{1,2}\n2026$/);
    labels.slice(1).forEach((l) => expect(l).toMatch(/^(Mar|Apr) \d{1,2}$/));
  });

  it('ticks years of runs by month or year, with the year shown', () => {
    const [lo, hi] = timeDomain([local(2024, 1, 10), local(2026, 11, 20)]);
    const splits = timeSplits(lo, hi, ticksFor(800));
    expect(['month', 'year']).toContain(tickStep(lo, hi, ticksFor(800)).unit);
    for (const s of splits) expect(new Date(s * 1000).getDate()).toBe(1);
    const labels = timeLabels(splits, 'en-US');
    expect(labels.join(' ')).toMatch(/2025/);
    expect(labels.every((l) => !/\d\d:\d\d/.test(l))).toBe(true);
  });

  it('restarts every-other-day ticks with each month (no ticks a day apart)', () => {
    const lo = local(2026, 1, 20);
    const hi = local(2026, 2, 12);
    const splits = timeSplits(lo, hi, 12);
    expect(tickStep(lo, hi, 12)).toMatchObject({ unit: 'day', n: 2 });
    expect(splits).toContain(local(2026, 2, 1));
    expect(splits).not.toContain(local(2026, 1, 31));
    for (let i = 1; i < splits.length; i++) expect(splits[i] - splits[i - 1]).toBeGreaterThanOrEqual(2 * DAY - HOUR);
  });
});
