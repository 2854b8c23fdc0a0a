// Test helpers: a urql client that answers each operation by name, and the providers a page
// needs (project, router). Used by the *.test.tsx files only.
import type { ReactNode } from 'react';
import { Provider, type Client } from 'urql';
import { Router } from 'wouter';
import { memoryLocation } from 'wouter/memory-location';
import { fromValue, never } from 'wonka';
import type { DocumentNode, OperationDefinitionNode } from 'graphql';
import { ProjectProvider } from '../../project';
import type { Role } from '../../gql/graphql';

type Vars = Record<string, unknown>;
export type Answer = (vars: Vars) => { data?: unknown; error?: unknown };

export interface Call {
  name: string;
  variables: Vars;
}

function opName(doc: DocumentNode): string {
  const def = doc.definitions.find((d): d is OperationDefinitionNode => d.kind === 'OperationDefinition');
  return def?.name?.value ?? '';
}

/** A client whose every operation is answered by `answers[operationName]`, or never. */
export function mockClient(answers: Record<string, Answer>): { client: Client; calls: Call[] } {
  const calls: Call[] = [];
  const run = (req: { query: DocumentNode; variables?: Vars }) => {
    const name = opName(req.query);
    const variables = req.variables ?? {};
    calls.push({ name, variables });
    const answer = answers[name];
    if (!answer) return never;
    return fromValue({ operation: req, stale: false, hasNext: false, ...answer(variables) });
  };
  const client = { executeQuery: run, executeMutation: run, executeSubscription: () => never } as unknown as Client;
  return { client, calls };
}

export function Wrap({
  client,
  role = 'OWNER',
  admin = false,
  path = '/',
  children,
}: {
  client: Client;
  role?: Role;
  admin?: boolean;
  path?: string;
  children: ReactNode;
}) {
  const loc = memoryLocation({ path });
  return (
    <Provider value={client}>
      <Router hook={loc.hook} searchHook={loc.searchHook}>
        <ProjectProvider name="default" role={role} admin={admin}>
          {children}
        </ProjectProvider>
      </Router>
    </Provider>
  );
}
