// Clocks for things that tick while a run is unfinished.
import { useEffect, useState } from 'react';
import { formatDuration } from '../../ui';

/** The current time, refreshed every `every` ms while `active`. */
export function useNow(every: number, active = true): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!active) return;
    setNow(Date.now());
    const t = setInterval(() => setNow(Date.now()), every);
    return () => clearInterval(t);
  }, [every, active]);
  return now;
}

/** How long a run took (or has taken so far, against `now`); null before it started. */
export function runDuration(startedAt: string | null | undefined, endedAt: string | null | undefined, now: number): number | null {
  if (!startedAt) return null;
  const s = Date.parse(startedAt);
  const e = endedAt ? Date.parse(endedAt) : now;
  if (Number.isNaN(s) || Number.isNaN(e)) return null;
  return Math.max(0, e - s);
}

export function formatRunDuration(ms: number | null): string {
  return ms === null ? '–' : formatDuration(ms);
}

/** A score as the dashboard shows it: one decimal, "–" when there is none. */
export function formatScore(score: number | null | undefined): string {
  return score === null || score === undefined || !Number.isFinite(score) ? '–' : score.toFixed(1);
}

/** A short span with a decimal under a minute: "850 ms", "1.5 s", "4 min 12 s". */
export function formatPrecise(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return formatDuration(ms);
}
