import { act, renderHook, waitFor } from '@testing-library/react';
import type { ReactNode } from 'react';
import { Client, makeResult, Provider, type Exchange } from 'urql';
import { delay, filter, fromValue, mergeMap, pipe } from 'wonka';
import { describe, expect, it } from 'vitest';
import { useValidation } from './useValidation';

/** A client whose hub answers `validateTemplate` after `latency(yaml)` ms: one problem per text. */
function slowHub(latency: (yaml: string) => number, asked: string[]) {
  const exchange: Exchange = () => (ops$) =>
    pipe(
      ops$,
      filter((op) => op.kind === 'query'),
      mergeMap((op) => {
        const yaml = (op.variables as { yaml: string }).yaml;
        asked.push(yaml);
        const problems = yaml === 'good' ? [] : [{ __typename: 'TemplateProblem', line: 1, column: 1, field: yaml, message: 'bad', hint: null }];
        return pipe(fromValue(makeResult(op, { data: { validateTemplate: problems } })), delay(latency(yaml)));
      }),
    );
  return new Client({ url: '/graphql', exchanges: [exchange] });
}

function wrap(client: Client) {
  return ({ children }: { children: ReactNode }) => <Provider value={client}>{children}</Provider>;
}

describe('useValidation', () => {
  it('debounces: only the text that stayed is checked', async () => {
    const asked: string[] = [];
    const client = slowHub(() => 1, asked);
    const { result, rerender } = renderHook(({ text }) => useValidation(text, 30), {
      wrapper: wrap(client),
      initialProps: { text: 'a' },
    });
    rerender({ text: 'ab' });
    rerender({ text: 'good' });
    expect(result.current.pending).toBe(true);
    await waitFor(() => expect(result.current.problems).toEqual([]));
    expect(result.current.pending).toBe(false);
    expect(result.current.checked).toBe('good');
    expect(asked).toEqual(['good']);
  });

  it('ignores a slow answer for older text', async () => {
    const asked: string[] = [];
    const client = slowHub((y) => (y === 'old' ? 150 : 5), asked);
    const { result, rerender } = renderHook(({ text }) => useValidation(text, 5), {
      wrapper: wrap(client),
      initialProps: { text: 'old' },
    });
    // Let the request for "old" leave, then type: the newer answer comes first.
    await act(() => new Promise((r) => setTimeout(r, 30)));
    expect(asked).toEqual(['old']);
    rerender({ text: 'new' });
    await waitFor(() => expect(result.current.checked).toBe('new'));
    await act(() => new Promise((r) => setTimeout(r, 200)));
    expect(result.current.checked).toBe('new');
    expect(result.current.problems?.[0].field).toBe('new');
    expect(asked).toEqual(['old', 'new']);
  });
});
