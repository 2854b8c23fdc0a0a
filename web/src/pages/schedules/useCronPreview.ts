// The cron helper's preview: asks the hub (`cronPreview`) what an expression means in a zone and
// when it fires next, debounced, and only the answer for the newest input counts (a slow answer
// for an older expression never overwrites a newer one).
import { useEffect, useRef, useState } from 'react';
import { useClient, type CombinedError } from 'urql';
import { graphql } from '../../gql';

export const CronPreviewDoc = graphql(`
  query CronPreview($cron: String!, $timezone: String!, $n: Int!) {
    cronPreview(cron: $cron, timezone: $timezone, n: $n) {
      description
      timezone
      nextFires
    }
  }
`);

export interface CronPreview {
  description: string;
  timezone: string;
  nextFires: string[];
}

export interface PreviewState {
  /** The preview of the current input; null while it is checked or when the hub refused it. */
  preview: CronPreview | null;
  /** The hub's refusal of the current input (names the field: `cron` or `timezone`). */
  error: CombinedError | null;
  /** True while the current input has not been answered yet. */
  pending: boolean;
}

export function useCronPreview(cron: string, timezone: string, n = 5, delayMs = 300): PreviewState {
  const client = useClient();
  const key = `${cron}\u0000${timezone}`;
  const [result, setResult] = useState<{ key: string; preview: CronPreview | null; error: CombinedError | null }>({
    key: '',
    preview: null,
    error: null,
  });
  // Bumped for every new input: an answer is used only if its number is still the newest.
  const latest = useRef(0);

  useEffect(() => {
    const mine = ++latest.current;
    if (!cron.trim()) return;
    const timer = setTimeout(() => {
      void client
        .query(CronPreviewDoc, { cron, timezone, n }, { requestPolicy: 'network-only' })
        .toPromise()
        .then((r) => {
          if (mine !== latest.current) return;
          setResult({ key, preview: r.data?.cronPreview ?? null, error: r.error ?? null });
        });
    }, delayMs);
    return () => clearTimeout(timer);
  }, [key, cron, timezone, n, client, delayMs]);

  // Answers that arrive after unmount are dropped too.
  useEffect(
    () => () => {
      latest.current = -1;
    },
    [],
  );

  const current = result.key === key;
  return {
    preview: current ? result.preview : null,
    error: current ? result.error : null,
    pending: !current && cron.trim() !== '',
  };
}
