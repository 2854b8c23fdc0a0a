// A time axis that fits its data, for charts over wall-clock time (the Trends page): the domain
// from the points themselves, and ticks on round local times labelled for the span shown. Pure
// and free of uPlot; TrendChart.tsx plugs these into uPlot's scale and axis options.
// Times are in seconds since the epoch (uPlot's time scale).

const MINUTE = 60;
const HOUR = 3600;
const DAY = 86_400;

/** The narrowest domain shown: a single point gets half of it on each side. */
export const MIN_SPAN = DAY;
/** Room on each side of a span wider than `MIN_SPAN`, as a fraction of the span. */
const PAD = 0.05;

/**
 * The domain for points at `xs` (sorted or not): their span with 5 % room on each side, and at
 * least a day, centred on the points (one run: 12 hours either side of it). No points: the day
 * around `now`.
 */
export function timeDomain(xs: ArrayLike<number | null | undefined>, now: number = Date.now() / 1000): [number, number] {
  const [lo, hi] = extent(xs);
  if (lo > hi) return [now - MIN_SPAN / 2, now + MIN_SPAN / 2];
  const span = hi - lo;
  if (span * (1 + 2 * PAD) < MIN_SPAN) {
    const mid = (lo + hi) / 2;
    return [mid - MIN_SPAN / 2, mid + MIN_SPAN / 2];
  }
  return [lo - span * PAD, hi + span * PAD];
}

/**
 * uPlot's range function for the x scale. uPlot proposes the data's first and last x when it
 * fits the scale to the data, but for a single point it proposes that point and `86400 / ms`
 * after it: with times in seconds, a thousand days, so one run was drawn at the left edge of
 * an axis almost three years long. Whenever the proposal covers every point it is such an
 * auto-fit, and the domain comes from the data instead; a narrower proposal is the user's zoom
 * and is kept.
 */
export function fitTimeRange(
  u: { data: readonly ArrayLike<number | null | undefined>[] },
  min: number | null,
  max: number | null,
): [number, number] {
  const xs = u.data[0] ?? [];
  const domain = timeDomain(xs);
  if (min === null || max === null) return domain;
  // The data's own extent (the x series is sorted, but take no chances).
  const [first, last] = extent(xs);
  if (first > last || (min <= first && max >= last)) return domain;
  return [min, max];
}

function extent(xs: ArrayLike<number | null | undefined>): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < xs.length; i++) {
    const x = xs[i];
    if (typeof x !== 'number' || !Number.isFinite(x)) continue;
    if (x < lo) lo = x;
    if (x > hi) hi = x;
  }
  return [lo, hi];
}

/** A tick spacing: a number of a calendar unit. */
export interface TickStep {
  unit: 'minute' | 'hour' | 'day' | 'week' | 'month' | 'year';
  n: number;
  /** Roughly how long one step is, in seconds (to pick a step, not to place ticks). */
  approx: number;
}

const STEPS: TickStep[] = [
  ...[1, 2, 5, 10, 15, 30].map((n) => ({ unit: 'minute' as const, n, approx: n * MINUTE })),
  ...[1, 2, 3, 6, 12].map((n) => ({ unit: 'hour' as const, n, approx: n * HOUR })),
  ...[1, 2].map((n) => ({ unit: 'day' as const, n, approx: n * DAY })),
  ...[1, 2].map((n) => ({ unit: 'week' as const, n, approx: n * 7 * DAY })),
  ...[1, 2, 3, 6].map((n) => ({ unit: 'month' as const, n, approx: n * 30.44 * DAY })),
  ...[1, 2, 5, 10, 25, 50, 100].map((n) => ({ unit: 'year' as const, n, approx: n * 365.25 * DAY })),
];

/** The finest step that puts at most `maxTicks` ticks in `[lo, hi]`. */
export function tickStep(lo: number, hi: number, maxTicks: number): TickStep {
  const span = Math.max(0, hi - lo);
  const most = Math.max(1, maxTicks);
  return STEPS.find((s) => span / s.approx <= most) ?? STEPS[STEPS.length - 1];
}

/** The first tick at or after `d` for `step`, in local time: a round minute, hour, day, Monday, month or year. */
function firstTick(d: Date, step: TickStep): Date {
  const t = new Date(d.getTime());
  switch (step.unit) {
    case 'minute':
      t.setSeconds(0, 0);
      if (t < d) t.setMinutes(t.getMinutes() + 1);
      while (t.getMinutes() % step.n) t.setMinutes(t.getMinutes() + 1);
      return t;
    case 'hour':
      t.setMinutes(0, 0, 0);
      if (t < d) t.setHours(t.getHours() + 1);
      while (t.getHours() % step.n) t.setHours(t.getHours() + 1);
      return t;
    case 'day':
    case 'week':
      t.setHours(0, 0, 0, 0);
      if (t < d) t.setDate(t.getDate() + 1);
      if (step.unit === 'week') while (t.getDay() !== 1) t.setDate(t.getDate() + 1);
      else while (!tickDay(t, step.n)) t.setDate(t.getDate() + 1);
      return t;
    case 'month':
      t.setDate(1);
      t.setHours(0, 0, 0, 0);
      if (t < d) t.setMonth(t.getMonth() + 1);
      while (t.getMonth() % step.n) t.setMonth(t.getMonth() + 1);
      return t;
    case 'year':
      t.setMonth(0, 1);
      t.setHours(0, 0, 0, 0);
      if (t < d) t.setFullYear(t.getFullYear() + 1);
      while (t.getFullYear() % step.n) t.setFullYear(t.getFullYear() + 1);
      return t;
  }
}

/**
 * Whether day `t` gets a tick every `n` days: the count restarts with each month (1st, 3rd, 5th
 * … 29th, then the 1st), so no two ticks end up a day apart at a month's end.
 */
function tickDay(t: Date, n: number): boolean {
  const date = t.getDate();
  return n === 1 || ((date - 1) % n === 0 && date + n <= 31);
}

function advance(t: Date, step: TickStep): void {
  switch (step.unit) {
    case 'minute':
      t.setMinutes(t.getMinutes() + step.n);
      break;
    case 'hour':
      t.setHours(t.getHours() + step.n);
      break;
    case 'day':
      t.setDate(t.getDate() + 1);
      while (!tickDay(t, step.n)) t.setDate(t.getDate() + 1);
      break;
    case 'week':
      t.setDate(t.getDate() + 7 * step.n);
      break;
    case 'month':
      t.setMonth(t.getMonth() + step.n);
      break;
    case 'year':
      t.setFullYear(t.getFullYear() + step.n);
      break;
  }
}

/** Tick positions (seconds) in `[lo, hi]`, on round local times, at most about `maxTicks`. */
export function timeSplits(lo: number, hi: number, maxTicks: number): number[] {
  if (!(Number.isFinite(lo) && Number.isFinite(hi)) || hi <= lo) return [];
  const step = tickStep(lo, hi, maxTicks);
  const out: number[] = [];
  const t = firstTick(new Date(lo * 1000), step);
  // The bound only guards against a runaway loop (a clock change cannot add many ticks).
  for (let i = 0; t.getTime() <= hi * 1000 && i < maxTicks * 2 + 4; i++) {
    out.push(t.getTime() / 1000);
    advance(t, step);
  }
  return out;
}

const pad2 = (n: number) => String(n).padStart(2, '0');

/**
 * Labels for ticks at `splits` (seconds, ascending), by their spacing: `14:00` for hours (with
 * the date under the first tick and each midnight), `Mar 2` for days and weeks (the year under
 * the first tick and each new year), `Mar` for months (the year under the first and each
 * January), `2026` for years. Lines are separated by `\n`, as uPlot draws them.
 */
export function timeLabels(splits: readonly number[], locale?: string): string[] {
  if (splits.length === 0) return [];
  const gap = splits.length > 1 ? splits[1] - splits[0] : DAY;
  const dates = splits.map((s) => new Date(s * 1000));
  const dayMonth = new Intl.DateTimeFormat(locale, { month: 'short', day: 'numeric' });
  const month = new Intl.DateTimeFormat(locale, { month: 'short' });
  return dates.map((d, i) => {
    const prev = i > 0 ? dates[i - 1] : null;
    const newDay = !prev || prev.toDateString() !== d.toDateString();
    const newYear = !prev || prev.getFullYear() !== d.getFullYear();
    if (gap < DAY - HOUR) {
      const time = `${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
      return newDay ? `${time}\n${dayMonth.format(d)}` : time;
    }
    if (gap < 28 * DAY) return newYear ? `${dayMonth.format(d)}\n${d.getFullYear()}` : dayMonth.format(d);
    if (gap < 360 * DAY) return newYear ? `${month.format(d)}\n${d.getFullYear()}` : month.format(d);
    return String(d.getFullYear());
  });
}

/** How many ticks fit an axis `widthPx` wide (a label needs about 90 px). */
export function ticksFor(widthPx: number): number {
  return Math.max(2, Math.floor(widthPx / 90));
}
