// Test helpers: a mocked urql client answering by operation name, and the providers pages need.
import type { ReactNode } from 'react';
import { Provider, type Client, type Operation } from 'urql';
import { Router } from 'wouter';
import { memoryLocation } from 'wouter/memory-location';
import { concat, fromValue, never } from 'wonka';
import type { Role } from '../../gql/graphql';
import { ProjectProvider } from '../../project';

export function opName(op: Operation): string {
  for (const d of op.query?.definitions ?? []) if (d.kind === 'OperationDefinition' && d.name) return d.name.value;
  return '';
}

export interface MockClient {
  client: Client;
  /** Every operation executed, in order. */
  ops: Operation[];
}

/**
 * `answers` maps an operation name to its data (or a function of its variables); unknown queries
 * never answer. `events` are what the runEvents subscription delivers, synchronously.
 */
export function mockClient(
  answers: Record<string, unknown | ((vars: Record<string, unknown>) => unknown)>,
  events: unknown[] = [],
): MockClient {
  const ops: Operation[] = [];
  const answer = (op: Operation) => {
    ops.push(op);
    const a = answers[opName(op)];
    if (a === undefined) return never;
    const data = typeof a === 'function' ? (a as (v: Record<string, unknown>) => unknown)(op.variables as Record<string, unknown>) : a;
    // A real client's query source stays open after its result (urql drops an error when it ends).
    const result = data instanceof Error ? { operation: op, data: undefined, error: data } : { operation: op, data };
    return concat([fromValue({ ...result, stale: false, hasNext: false }), never]);
  };
  const client = {
    executeQuery: answer,
    executeMutation: answer,
    executeSubscription: () => never,
    subscription: (_q: unknown, variables: Record<string, unknown>) => ({
      subscribe(cb: (r: unknown) => void) {
        ops.push({ kind: 'subscription', variables } as unknown as Operation);
        for (const e of events) cb({ data: { runEvents: e }, stale: false, hasNext: true });
        return { unsubscribe() {} };
      },
    }),
  } as unknown as Client;
  return { client, ops };
}

export function renderWith(
  ui: ReactNode,
  { client, path = '/', role = 'OWNER' }: { client: Client; path?: string; role?: Role },
) {
  const location = memoryLocation({ path, record: true });
  const tree = (
    <Provider value={client}>
      <ProjectProvider name="default" role={role} admin={false}>
        <Router hook={location.hook} searchHook={location.searchHook}>
          {ui}
        </Router>
      </ProjectProvider>
    </Provider>
  );
  return { tree, location };
}
