// API tokens (owners): tokens CI/CD uses with one role in this project. A new token's secret
// is shown once, with an example request.
import { useState, type FormEvent } from 'react';
import { useMutation, useQuery, type CombinedError } from 'urql';
import { graphql } from '../../gql';
import type { AccessApiTokensQuery, Role } from '../../gql/graphql';
import { useProject } from '../../project';
import { Confirm, Empty, ErrorBox, Loading, ShownOnce } from '../../ui';
import { CopyBlock, TokenStateBadge, When, tokenState, FormProblems } from './common';
import { ROLES } from './Members';
import { shellQuote } from './delegateCommand';
import { endOfLocalDay } from './time';

const AccessApiTokensDoc = graphql(`
  query AccessApiTokens($project: String!) {
    apiTokens(project: $project) {
      id
      name
      role
      createdBy
      createdAt
      expiresAt
      lastUsedAt
      revokedAt
    }
  }
`);

const AccessCreateApiTokenDoc = graphql(`
  mutation AccessCreateApiToken($project: String!, $name: String!, $role: Role!, $expiresAt: DateTime) {
    createApiToken(project: $project, name: $name, role: $role, expiresAt: $expiresAt) {
      secret
      token {
        id
        name
        role
      }
    }
  }
`);

const AccessRevokeApiTokenDoc = graphql(`
  mutation AccessRevokeApiToken($id: ID!) {
    revokeApiToken(id: $id) {
      id
      revokedAt
    }
  }
`);

type Token = AccessApiTokensQuery['apiTokens'][number];

/** A request CI can make with the token: the project's latest runs. */
export function apiTokenExample(origin: string, project: string, secret: string): string {
  const body = JSON.stringify({ query: `{ runs(project: ${JSON.stringify(project)}, limit: 5) { id status resilienceScore } }` });
  return [
    'curl -sS',
    `-H ${shellQuote(`Authorization: Bearer ${secret}`)}`,
    `-H 'content-type: application/json'`,
    `-d ${shellQuote(body)}`,
    `${origin}/graphql`,
  ].join(' \\\n  ');
}

/** The problem with the create form, naming the field; null when it can be sent. */
export function apiTokenProblem(name: string, expiry: string, now: number = Date.now()): string | null {
  const n = name.trim();
  if (!n) return 'Name: give the token a name, e.g. the CI job that uses it';
  if (n.length > 100) return 'Name: at most 100 characters';
  if (expiry) {
    const at = endOfLocalDay(expiry);
    if (!at) return 'Expires on: not a date';
    if (Date.parse(at) <= now) return 'Expires on: must be in the future';
  }
  return null;
}

export function ApiTokens() {
  const project = useProject();
  const [{ data, fetching, error }, refetch] = useQuery({ query: AccessApiTokensDoc, variables: { project: project.name } });
  const reload = () => refetch({ requestPolicy: 'network-only' });
  const [revoking, setRevoking] = useState<Token | null>(null);
  const [revokeState, revoke] = useMutation(AccessRevokeApiTokenDoc);
  // The refusal of this confirmation only, not of an earlier one.
  const [confirmError, setConfirmError] = useState<CombinedError | null>(null);
  const [created, setCreated] = useState<{ name: string; secret: string } | null>(null);
  const tokens = data?.apiTokens ?? [];
  const now = Date.now();

  return (
    <section className="panel" aria-labelledby="api-tokens-h">
      <div className="panel-head">
        <h2 id="api-tokens-h">API tokens</h2>
        <span className="muted">For CI/CD: one role in {project.name}, sent as a bearer token.</span>
      </div>
      {error && <ErrorBox error={error} retry={reload} />}
      {!data && fetching ? (
        <Loading what="API tokens" />
      ) : data && tokens.length === 0 ? (
        <Empty>No API token yet.</Empty>
      ) : data ? (
        <table aria-label="API tokens">
          <thead>
            <tr>
              <th>Name</th>
              <th>Role</th>
              <th>Created</th>
              <th>Expires</th>
              <th>Last used</th>
              <th>State</th>
              <th className="actions">
                <span className="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {tokens.map((t) => {
              const state = tokenState(t, now);
              return (
                <tr key={t.id} className={state === 'active' ? '' : 'revoked'} data-testid="api-token-row">
                  <td>{t.name}</td>
                  <td>{t.role}</td>
                  <td className="nowrap">
                    <When at={t.createdAt} /> <span className="muted">by {t.createdBy.replace(/^user:/, '')}</span>
                  </td>
                  <td className="nowrap">
                    <When at={t.expiresAt} none="never" />
                  </td>
                  <td className="nowrap">
                    <When at={t.lastUsedAt} none="never" />
                  </td>
                  <td>
                    <TokenStateBadge state={state} />
                  </td>
                  <td className="actions">
                    {state === 'active' && (
                      <button
                        type="button"
                        onClick={() => {
                          setConfirmError(null);
                          setRevoking(t);
                        }}
                        aria-label={`Revoke API token ${t.name}`}
                      >
                        Revoke
                      </button>
                    )}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      ) : null}

      <CreateApiTokenForm
        onCreated={(name, secret) => {
          setCreated({ name, secret });
          reload();
        }}
      />
      {created && (
        <div className="new-secret" data-testid="new-api-token">
          <h3>New API token “{created.name}”</h3>
          <ShownOnce label="API token" value={created.secret} />
          <p>Use it in CI as a bearer token, e.g. to list the latest runs:</p>
          <CopyBlock
            text={apiTokenExample(window.location.origin, project.name, created.secret)}
            testId="api-token-example"
            label="Example request"
          />
          <p className="muted">
            Keep it in your CI's secret store. Add <code>--cacert hub-ca.pem</code> when the hub's certificate is its own.
          </p>
          <button type="button" onClick={() => setCreated(null)}>
            Done
          </button>
        </div>
      )}

      {revoking && (
        <Confirm
          title={`Revoke API token ${revoking.name}?`}
          confirmLabel="Revoke token"
          danger
          busy={revokeState.fetching}
          onCancel={() => setRevoking(null)}
          onConfirm={() => {
            void revoke({ id: revoking.id }).then((r) => {
              if (r.error) return setConfirmError(r.error);
              setRevoking(null);
              reload();
            });
          }}
        >
          <p>Every request with it is refused from now on. This cannot be undone.</p>
          <ErrorBox error={confirmError} />
        </Confirm>
      )}
    </section>
  );
}

function CreateApiTokenForm({ onCreated }: { onCreated(name: string, secret: string): void }) {
  const project = useProject();
  const [name, setName] = useState('');
  const [role, setRole] = useState<Role>('EDITOR');
  const [expiry, setExpiry] = useState('');
  const [problem, setProblem] = useState<string | null>(null);
  const [state, create] = useMutation(AccessCreateApiTokenDoc);

  function submit(e: FormEvent) {
    e.preventDefault();
    const p = apiTokenProblem(name, expiry);
    setProblem(p);
    if (p) return;
    const n = name.trim();
    void create({ project: project.name, name: n, role, expiresAt: expiry ? endOfLocalDay(expiry) : null }).then((r) => {
      if (r.data) {
        onCreated(r.data.createApiToken.token.name, r.data.createApiToken.secret);
        setName('');
        setExpiry('');
      }
    });
  }

  return (
    <form className="admin-form" onSubmit={submit} aria-label="Create API token" noValidate>
      <label>
        Name
        <input type="text" value={name} onChange={(e) => setName(e.target.value)} placeholder="e.g. github-actions" />
      </label>
      <label>
        Role
        <select value={role} onChange={(e) => setRole(e.target.value as Role)}>
          {ROLES.map((r) => (
            <option key={r.value} value={r.value}>
              {r.label} ({r.hint})
            </option>
          ))}
        </select>
      </label>
      <label>
        Expires on (optional)
        <input type="date" value={expiry} onChange={(e) => setExpiry(e.target.value)} />
      </label>
      <button type="submit" className="primary" disabled={state.fetching}>
        {state.fetching ? 'Creating…' : 'Create API token'}
      </button>
      <FormProblems problem={problem} error={state.error} />
    </form>
  );
}
