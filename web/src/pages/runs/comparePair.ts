// Which two runs to compare, and the compare page's address: what the Runs page's ticks and the
// run page's "Compare with…" need, kept apart from the statistics (compare.ts) so those stay in
// the lazy-loaded compare page.

/** The compare page's address for baseline `a` and candidate `b` (relative to the project). */
export function compareHref(a: string, b: string): string {
  return `/runs/compare?a=${encodeURIComponent(a)}&b=${encodeURIComponent(b)}`;
}

/** `?a=…&b=…` from the compare page's address; a missing or blank id is null. */
export function parseCompare(search: string): { a: string | null; b: string | null } {
  const q = new URLSearchParams(search);
  const id = (k: string) => q.get(k)?.trim() || null;
  return { a: id('a'), b: id('b') };
}

/** The two runs in order: the older (by creation) is the baseline A, the newer the candidate B. */
export function orderPair<R extends { id: string; createdAt: string }>(x: R, y: R): [R, R] {
  const dx = Date.parse(x.createdAt);
  const dy = Date.parse(y.createdAt);
  return dx < dy || (dx === dy && x.id < y.id) ? [x, y] : [y, x];
}

/** A run a "Compare with…" picker can offer. */
export interface CandidateRun {
  id: string;
  status: string;
  createdAt: string;
  dryRun: boolean;
}

/**
 * The run to compare `current` with by default: the latest run of the same template created
 * before it that passed or failed (a finished run with a score), else the latest finished one
 * before it (aborted or errored), else none. Dry runs measure nothing and are never the default.
 * `runs` are the template's runs, in any order.
 */
export function defaultBaseline<R extends CandidateRun>(runs: readonly R[], current: { id: string; createdAt: string }): R | null {
  const at = Date.parse(current.createdAt);
  const before = runs
    .filter((r) => r.id !== current.id && !r.dryRun && Date.parse(r.createdAt) < at)
    .sort((x, y) => Date.parse(y.createdAt) - Date.parse(x.createdAt));
  return (
    before.find((r) => r.status === 'PASSED' || r.status === 'FAILED') ??
    before.find((r) => r.status === 'ABORTED' || r.status === 'ERROR') ??
    null
  );
}
