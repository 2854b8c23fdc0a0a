import { act, render, screen } from '@testing-library/react';
import { Client, getOperationName, makeResult, Provider, type Exchange } from 'urql';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { delay, fromValue, mergeMap, pipe, filter } from 'wonka';
import { useCronPreview } from './useCronPreview';

/** A hub answering `cronPreview` after `slowMs` for `slow`, at once for anything else. */
function slowHub(slow: string, slowMs: number, asked: string[]): Client {
  const exchange: Exchange = () => (ops$) =>
    pipe(
      ops$,
      filter((op) => op.kind !== 'teardown' && getOperationName(op.query) === 'CronPreview'),
      mergeMap((op) => {
        const cron = String(op.variables?.cron);
        asked.push(cron);
        const answer = fromValue(
          makeResult(op, { data: { cronPreview: { description: `words for ${cron}`, timezone: 'UTC', nextFires: [] } } }),
        );
        return cron === slow ? pipe(answer, delay(slowMs)) : answer;
      }),
    );
  return new Client({ url: '/graphql', exchanges: [exchange] });
}

function Probe({ cron }: { cron: string }) {
  const { preview, pending } = useCronPreview(cron, 'UTC');
  return <div data-testid="out">{pending ? 'pending' : preview?.description ?? 'none'}</div>;
}

describe('useCronPreview', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('waits 300 ms after the last keystroke and ignores an answer to an older expression', async () => {
    const asked: string[] = [];
    const client = slowHub('0 * * * *', 1000, asked);
    const tree = (cron: string) => (
      <Provider value={client}>
        <Probe cron={cron} />
      </Provider>
    );
    const { rerender } = render(tree('0'));
    rerender(tree('0 *'));
    rerender(tree('0 * * * *'));
    await act(async () => {
      await vi.advanceTimersByTimeAsync(299);
    });
    expect(asked).toEqual([]); // still typing
    await act(async () => {
      await vi.advanceTimersByTimeAsync(1);
    });
    expect(asked).toEqual(['0 * * * *']);
    // A newer expression is asked and answered while the older answer is on its way.
    rerender(tree('*/5 * * * *'));
    await act(async () => {
      await vi.advanceTimersByTimeAsync(300);
    });
    expect(asked).toEqual(['0 * * * *', '*/5 * * * *']);
    expect(screen.getByTestId('out').textContent).toBe('words for */5 * * * *');
    await act(async () => {
      await vi.advanceTimersByTimeAsync(1000);
    });
    expect(screen.getByTestId('out').textContent).toBe('words for */5 * * * *');
  });
});
