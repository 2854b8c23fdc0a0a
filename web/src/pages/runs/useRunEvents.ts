// The run's events, live: the `runEvents` subscription replays every stored event from the start,
// then streams new ones until the run has ended. Events are buffered and folded into state at
// most every `flushMs`, so a burst of probe checks costs one render per flush. After an error
// (the socket dropped for good) it resubscribes from the last seq seen; repeats are dropped.
import { useEffect, useState } from 'react';
import { useClient, type CombinedError } from 'urql';
import { graphql } from '../../gql';
import { applyEvents, initialRunLive, type RunEventIn, type RunLive } from './events';

const RunViewEventsDoc = graphql(`
  subscription RunViewEvents($runId: ID!, $afterSeq: Int!) {
    runEvents(runId: $runId, afterSeq: $afterSeq) {
      seq
      at
      kind
      payload
    }
  }
`);

export interface RunEventsState {
  live: RunLive;
  /** The last subscription error, cleared by the next event; a lost connection is retried meanwhile. */
  error: CombinedError | null;
}

const RETRY_MS = 2000;

/** `runId` null: no run to follow yet (nothing is subscribed). */
export function useRunEvents(runId: string | null, flushMs = 150): RunEventsState {
  const client = useClient();
  const [live, setLive] = useState<RunLive>(initialRunLive);
  const [error, setError] = useState<CombinedError | null>(null);

  useEffect(() => {
    setLive(initialRunLive());
    setError(null);
    if (runId === null) return;
    let lastSeq = 0;
    let buffer: RunEventIn[] = [];
    let flushTimer: ReturnType<typeof setTimeout> | undefined;
    let retryTimer: ReturnType<typeof setTimeout> | undefined;
    let unsubscribe: (() => void) | undefined;
    let failed = false;
    let stopped = false;

    const flush = () => {
      flushTimer = undefined;
      if (buffer.length === 0) return;
      const batch = buffer;
      buffer = [];
      setLive((s) => applyEvents(s, batch));
    };

    const start = () => {
      if (stopped) return;
      let dead = false;
      const sub = client.subscription(RunViewEventsDoc, { runId, afterSeq: lastSeq }).subscribe((r) => {
        if (dead || stopped) return;
        if (r.error) {
          dead = true;
          failed = true;
          setError(r.error);
          // Unsubscribing inside the callback is not safe while it is being set up: defer it.
          setTimeout(() => sub?.unsubscribe(), 0);
          // The connection failed: try again. The hub refused (no such run, no access): don't.
          if (r.error.networkError || r.error.graphQLErrors.length === 0) retryTimer = setTimeout(start, RETRY_MS);
          return;
        }
        const e = r.data?.runEvents;
        if (!e) return;
        if (failed) {
          failed = false;
          setError(null);
        }
        if (e.seq <= lastSeq) return;
        lastSeq = e.seq;
        buffer.push(e);
        flushTimer ??= setTimeout(flush, flushMs);
      });
      unsubscribe = () => {
        dead = true;
        sub.unsubscribe();
      };
    };

    start();
    return () => {
      stopped = true;
      unsubscribe?.();
      clearTimeout(retryTimer);
      clearTimeout(flushTimer);
    };
  }, [client, runId, flushMs]);

  return { live, error };
}
