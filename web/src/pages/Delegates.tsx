// Delegates of the project: who is connected, what it runs, refreshed every 5 s. Owners may
// revoke a delegate and manage the registration tokens new delegates sign up with.
import { useEffect, useState } from 'react';
import { useMutation, useQuery, type CombinedError } from 'urql';
import { graphql } from '../gql';
import type { DelegatesListQuery } from '../gql/graphql';
import { useProject } from '../project';
import { Confirm, Empty, ErrorBox, Loading } from '../ui';
import { DelegateTokens } from './admin/DelegateTokens';
import { Labels, When } from './admin/common';
import './admin/admin.css';

const DelegatesListDoc = graphql(`
  query DelegatesList($project: String!) {
    delegates(project: $project) {
      id
      name
      labels
      version
      capabilities
      connected
      lastHeartbeat
      replica
      activeRuns
    }
  }
`);

const DelegatesRevokeDoc = graphql(`
  mutation DelegatesRevoke($id: ID!) {
    revokeDelegate(id: $id)
  }
`);

export const REFRESH_MS = 5000;

type Delegate = DelegatesListQuery['delegates'][number];

/** "faults: a, b; probes: c" from the advertised capabilities, for a tooltip. */
export function capabilitiesText(caps: unknown): string {
  if (!caps || typeof caps !== 'object') return '';
  return Object.entries(caps as Record<string, unknown>)
    .map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(', ') : JSON.stringify(v)}`)
    .join('\n');
}

export function DelegatesPage() {
  const project = useProject();
  const owner = project.can('OWNER');
  const [{ data, fetching, error }, refetch] = useQuery({
    query: DelegatesListDoc,
    variables: { project: project.name },
  });
  useEffect(() => {
    const t = setInterval(() => refetch({ requestPolicy: 'network-only' }), REFRESH_MS);
    return () => clearInterval(t);
  }, [refetch]);
  const [revoking, setRevoking] = useState<Delegate | null>(null);
  const [revoked, setRevoked] = useState<string | null>(null);
  const [revokeState, revoke] = useMutation(DelegatesRevokeDoc);
  // The refusal of this confirmation only, not of an earlier one.
  const [confirmError, setConfirmError] = useState<CombinedError | null>(null);

  const delegates = data?.delegates ?? [];
  const connected = delegates.filter((d) => d.connected).length;
  return (
    <div className="page admin-page">
      <div className="row">
        <h1>Delegates</h1>
        <div className="spacer" />
        {data && (
          <span className="muted" role="status">
            {delegates.length > 0 && `${connected} of ${delegates.length} connected · `}refreshes every {REFRESH_MS / 1000} s
          </span>
        )}
      </div>
      {revoked && (
        <div className="muted" role="status">
          {revoked}
        </div>
      )}
      {error && <ErrorBox error={error} retry={() => refetch({ requestPolicy: 'network-only' })} />}
      {!data && fetching ? (
        <Loading what="delegates" />
      ) : data && delegates.length === 0 ? (
        <Empty>
          No delegate of {project.name} is registered.{' '}
          {owner ? 'Create a registration token below and start a delegate with it.' : 'An owner of the project can register one.'}
        </Empty>
      ) : data ? (
        <table aria-label="Delegates" data-testid="delegates-table">
          <thead>
            <tr>
              <th>Name</th>
              <th>Labels</th>
              <th>Version</th>
              <th>Status</th>
              <th>Last heartbeat</th>
              <th>Active runs</th>
              <th>Replica</th>
              {owner && (
                <th className="actions">
                  <span className="sr-only">Actions</span>
                </th>
              )}
            </tr>
          </thead>
          <tbody>
            {delegates.map((d) => (
              <tr key={d.id} data-testid="delegate-row" data-delegate={d.name}>
                <td>
                  <strong title={capabilitiesText(d.capabilities)}>{d.name}</strong>
                </td>
                <td>
                  <Labels labels={d.labels} />
                </td>
                <td className="mono">{d.version || '–'}</td>
                <td>
                  {d.connected ? (
                    <span className="badge badge-ok" data-connected="true">
                      connected
                    </span>
                  ) : (
                    <span className="badge badge-wait" data-connected="false">
                      offline
                    </span>
                  )}
                </td>
                <td className="nowrap">
                  <When at={d.lastHeartbeat} none="never" />
                </td>
                <td>{d.activeRuns > 0 ? <span className="badge badge-live">{d.activeRuns} running</span> : <span className="muted">0</span>}</td>
                <td className="mono">{d.replica ?? <span className="muted">–</span>}</td>
                {owner && (
                  <td className="actions">
                    <button
                      type="button"
                      onClick={() => {
                        setConfirmError(null);
                        setRevoking(d);
                      }}
                      aria-label={`Revoke ${d.name}`}
                    >
                      Revoke
                    </button>
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}

      {owner && <DelegateTokens />}

      {revoking && (
        <Confirm
          title={`Revoke delegate ${revoking.name}?`}
          confirmLabel="Revoke delegate"
          danger
          busy={revokeState.fetching}
          onCancel={() => setRevoking(null)}
          onConfirm={() => {
            const d = revoking;
            void revoke({ id: d.id }).then((r) => {
              if (r.error) return setConfirmError(r.error);
              setRevoking(null);
              setRevoked(`Revoked ${d.name}: it reverts every fault it holds and can no longer connect.`);
              refetch({ requestPolicy: 'network-only' });
            });
          }}
        >
          <p>
            Its credential stops working and its stream is closed at once; it reverts every fault it holds.
            {revoking.activeRuns > 0 && <strong> It has {revoking.activeRuns} active run(s): their faults are reverted.</strong>} To use
            the machine again, register a new delegate under another name with a registration token.
          </p>
          <ErrorBox error={confirmError} />
        </Confirm>
      )}
    </div>
  );
}
