// Test helper: a real urql client whose "hub" answers each operation by its name, and the
// providers the template pages need.
import type { ReactNode } from 'react';
import { Client, getOperationName, makeErrorResult, makeResult, Provider, type Exchange } from 'urql';
import { Router } from 'wouter';
import { memoryLocation } from 'wouter/memory-location';
import { filter, fromValue, mergeMap, pipe } from 'wonka';
import { GraphQLError } from 'graphql';
import { ProjectProvider } from '../../project';
import type { Role } from '../../gql/graphql';

export type Answer = Record<string, unknown> | GraphQLError;
export type Handlers = Record<string, (variables: Record<string, unknown>) => Answer>;

export function fakeHub(handlers: Handlers, seen: { name: string; variables: Record<string, unknown> }[] = []): Client {
  const exchange: Exchange = () => (ops$) =>
    pipe(
      ops$,
      filter((op) => op.kind !== 'teardown'),
      mergeMap((op) => {
        const name = getOperationName(op.query) ?? '';
        const variables = (op.variables ?? {}) as Record<string, unknown>;
        seen.push({ name, variables });
        const h = handlers[name];
        if (!h) return fromValue(makeErrorResult(op, new Error(`no handler for ${name}`)));
        const a = h(variables);
        if (a instanceof GraphQLError) return fromValue(makeResult(op, { errors: [a] }));
        return fromValue(makeResult(op, { data: a }));
      }),
    );
  return new Client({ url: '/graphql', exchanges: [exchange] });
}

export function Wrap({
  client,
  role = 'OWNER',
  location = memoryLocation({ path: '/' }),
  children,
}: {
  client: Client;
  role?: Role;
  /** From `memoryLocation({ path, record: true })` to see where a page navigated. */
  location?: { hook: ReturnType<typeof memoryLocation>['hook'] };
  children: ReactNode;
}) {
  const { hook } = location;
  return (
    <Provider value={client}>
      <ProjectProvider name="default" role={role} admin={false}>
        <Router hook={hook}>{children}</Router>
      </ProjectProvider>
    </Provider>
  );
}
