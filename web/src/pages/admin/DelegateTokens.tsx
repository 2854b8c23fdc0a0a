// Registration tokens (owners): the list, revoking one, and making one, after which the
// secret is shown once together with the command that starts a delegate with it.
import { useState, type FormEvent } from 'react';
import { useMutation, useQuery, type CombinedError } from 'urql';
import { graphql } from '../../gql';
import type { DelegateTokensListQuery } from '../../gql/graphql';
import { useProject } from '../../project';
import { Confirm, Empty, ErrorBox, Loading, ShownOnce } from '../../ui';
import { CopyBlock, TokenStateBadge, When, tokenState, FormProblems } from './common';
import {
  DEFAULT_HUB_CA,
  DEFAULT_STATE_DIR,
  delegateCommand,
  delegateEnvFile,
  parseLabels,
  validDelegateName,
} from './delegateCommand';

const DelegateTokensListDoc = graphql(`
  query DelegateTokensList($project: String!) {
    delegateTokens(project: $project) {
      id
      name
      reusable
      uses
      createdBy
      createdAt
      expiresAt
      usedAt
      revokedAt
    }
  }
`);

const DelegateTokensCreateDoc = graphql(`
  mutation DelegateTokensCreate($project: String!, $name: String!, $reusable: Boolean!, $expiresIn: String!) {
    createDelegateToken(project: $project, name: $name, reusable: $reusable, expiresIn: $expiresIn)
  }
`);

const DelegateTokensRevokeDoc = graphql(`
  mutation DelegateTokensRevoke($id: ID!) {
    revokeDelegateToken(id: $id) {
      id
      revokedAt
    }
  }
`);

type Token = DelegateTokensListQuery['delegateTokens'][number];

export const EXPIRIES = [
  { value: '1h', label: '1 hour' },
  { value: '24h', label: '24 hours' },
  { value: '7d', label: '7 days' },
  { value: '30d', label: '30 days' },
];

export function DelegateTokens() {
  const project = useProject();
  const [{ data, fetching, error }, refetch] = useQuery({
    query: DelegateTokensListDoc,
    variables: { project: project.name },
  });
  const reload = () => refetch({ requestPolicy: 'network-only' });
  const [revoking, setRevoking] = useState<Token | null>(null);
  const [revokeState, revoke] = useMutation(DelegateTokensRevokeDoc);
  // The refusal of this confirmation only, not of an earlier one.
  const [confirmError, setConfirmError] = useState<CombinedError | null>(null);
  const [created, setCreated] = useState<{ secret: string; name: string } | null>(null);
  const tokens = data?.delegateTokens ?? [];
  const now = Date.now();

  return (
    <section className="panel" aria-labelledby="reg-tokens">
      <div className="panel-head">
        <h2 id="reg-tokens">Registration tokens</h2>
        <span className="muted">A new delegate signs up with one; afterwards it keeps its own credential.</span>
      </div>
      {error && <ErrorBox error={error} retry={reload} />}
      {!data && fetching ? (
        <Loading what="registration tokens" />
      ) : data && tokens.length === 0 ? (
        <Empty>No registration token yet.</Empty>
      ) : data ? (
        <table aria-label="Registration tokens">
          <thead>
            <tr>
              <th>Name</th>
              <th>Kind</th>
              <th>Uses</th>
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
                <tr key={t.id} className={state === 'active' ? '' : 'revoked'} data-testid="delegate-token-row">
                  <td>{t.name || <span className="muted">(unnamed)</span>}</td>
                  <td>{t.reusable ? 'reusable' : 'one-time'}</td>
                  <td>{t.uses}</td>
                  <td className="nowrap">
                    <When at={t.createdAt} /> <span className="muted">by {t.createdBy.replace(/^user:/, '')}</span>
                  </td>
                  <td className="nowrap">
                    <When at={t.expiresAt} none="never" />
                  </td>
                  <td className="nowrap">
                    <When at={t.usedAt} none="never" />
                  </td>
                  <td>
                    <TokenStateBadge state={state} />
                    {t.revokedAt && (
                      <span className="muted">
                        {' '}
                        <When at={t.revokedAt} />
                      </span>
                    )}
                  </td>
                  <td className="actions">
                    {state === 'active' && (
                      <button
                        type="button"
                        onClick={() => {
                          setConfirmError(null);
                          setRevoking(t);
                        }}
                        aria-label={`Revoke registration token ${t.name || t.id}`}
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

      <CreateDelegateTokenForm
        onCreated={(secret, name) => {
          setCreated({ secret, name });
          reload();
        }}
      />
      {created && <NewDelegateToken secret={created.secret} tokenName={created.name} onDone={() => setCreated(null)} />}

      {revoking && (
        <Confirm
          title={`Revoke registration token ${revoking.name || '(unnamed)'}?`}
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
          <p>No new delegate can register with it. Delegates it already registered keep working.</p>
          <ErrorBox error={confirmError} />
        </Confirm>
      )}
    </section>
  );
}

function CreateDelegateTokenForm({ onCreated }: { onCreated(secret: string, name: string): void }) {
  const project = useProject();
  const [name, setName] = useState('');
  const [reusable, setReusable] = useState(false);
  const [expiresIn, setExpiresIn] = useState('24h');
  const [problem, setProblem] = useState<string | null>(null);
  const [state, create] = useMutation(DelegateTokensCreateDoc);

  function submit(e: FormEvent) {
    e.preventDefault();
    const n = name.trim();
    if (n.length > 100) {
      setProblem('Name: at most 100 characters');
      return;
    }
    setProblem(null);
    void create({ project: project.name, name: n, reusable, expiresIn }).then((r) => {
      if (r.data) {
        onCreated(r.data.createDelegateToken, n);
        setName('');
        setReusable(false);
      }
    });
  }

  return (
    <form className="admin-form" onSubmit={submit} aria-label="Create registration token" noValidate>
      <label>
        Name
        <input type="text" value={name} onChange={(e) => setName(e.target.value)} placeholder="e.g. web-servers" />
      </label>
      <label>
        Expires in
        <select value={expiresIn} onChange={(e) => setExpiresIn(e.target.value)}>
          {EXPIRIES.map((x) => (
            <option key={x.value} value={x.value}>
              {x.label}
            </option>
          ))}
        </select>
      </label>
      <label className="check">
        <input type="checkbox" checked={reusable} onChange={(e) => setReusable(e.target.checked)} />
        Reusable (registers any number of delegates until it expires)
      </label>
      <button type="submit" className="primary" disabled={state.fetching}>
        {state.fetching ? 'Creating…' : 'Create registration token'}
      </button>
      <FormProblems problem={problem} error={state.error} />
    </form>
  );
}

/** The new secret, and the command (and systemd env file) that start a delegate with it. */
export function NewDelegateToken({ secret, tokenName, onDone }: { secret: string; tokenName: string; onDone(): void }) {
  const [name, setName] = useState(validDelegateName(tokenName) ? tokenName : '');
  const [labelText, setLabelText] = useState('env=prod');
  const [hubCa, setHubCa] = useState(DEFAULT_HUB_CA);
  const { labels, error: labelError } = parseLabels(labelText);
  const nameError = name.trim() && !validDelegateName(name.trim()) ? "Delegate name: use 1 to 63 letters, digits, '-', '_' or '.'" : null;
  const input = { hub: window.location.origin, token: secret, name, labels, hubCa, stateDir: DEFAULT_STATE_DIR };
  return (
    <div className="new-secret" data-testid="new-delegate-token">
      <h3>New registration token</h3>
      <ShownOnce label="Registration token" value={secret} />
      <p>Start a delegate with it on the machine where faults should be injected:</p>
      <div className="tailor">
        <label>
          Delegate name
          <input type="text" value={name} onChange={(e) => setName(e.target.value)} placeholder="host name" />
        </label>
        <label>
          Labels
          <input type="text" value={labelText} onChange={(e) => setLabelText(e.target.value)} placeholder="env=prod,team=web" />
        </label>
        <label>
          Hub CA file
          <input type="text" value={hubCa} onChange={(e) => setHubCa(e.target.value)} placeholder="empty: public roots" />
        </label>
      </div>
      {(nameError || labelError) && (
        <div className="field-error" role="alert">
          {nameError ?? labelError}
        </div>
      )}
      <CopyBlock text={delegateCommand(input)} testId="delegate-command" label="Delegate command" />
      <p className="muted">
        The hub CA is the hub's <code>tls/ca.pem</code> in its data directory when it made its own certificate; leave it
        empty when the certificate is publicly trusted. Passing the token in <code>FAULTLINE_DELEGATE_TOKEN</code> instead
        of <code>--token</code> keeps it out of <code>ps</code>. The token is needed only until the state directory holds
        the delegate's own credential.
      </p>
      <details>
        <summary>Run it as a systemd service</summary>
        <p>
          Install <code>deploy/systemd/faultline-delegate.service</code> from the Faultline repository and put these
          settings in <code>/etc/faultline/faultline-delegate.env</code> (mode 0600), then{' '}
          <code>systemctl enable --now faultline-delegate</code>:
        </p>
        <CopyBlock text={delegateEnvFile(input)} testId="delegate-env-file" label="Delegate environment file" />
      </details>
      <button type="button" onClick={onDone}>
        Done
      </button>
    </div>
  );
}
