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
  query DelegatesList($project: String!, $first: Int!, $after: String, $search: String) {
    delegates(project: $project, first: $first, after: $after, search: $search) {
      id
      name
      labels
      version
      capabilities
      connected
      lastHeartbeat
      replica
      activeRuns
      cursor
    }
    delegateSummary(project: $project) {
      total
      connected
    }
  }
`);

const DelegatesRevokeDoc = graphql(`
  mutation DelegatesRevoke($id: ID!) {
    revokeDelegate(id: $id)
  }
`);

export const REFRESH_MS = 5000;
/** Delegates per page: a fleet of thousands is read a page at a time (keyset cursors). */
export const PAGE_SIZE = 100;

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
  const [search, setSearch] = useState('');
  // Cursors of the pages before this one (the last is this page's `after`).
  const [cursors, setCursors] = useState<string[]>([]);
  const after = cursors.length > 0 ? cursors[cursors.length - 1] : null;
  const [{ data, fetching, error }, refetch] = useQuery({
    query: DelegatesListDoc,
    variables: { project: project.name, first: PAGE_SIZE, after, search: search.trim() || null },
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
  const summary = data?.delegateSummary;
  const last = delegates.length === PAGE_SIZE ? delegates[delegates.length - 1] : null;
  return (
    <div className="page admin-page">
      <div className="row">
        <h1>Delegates</h1>
        <div className="spacer" />
        {data && (
          <span className="muted" role="status">
            {summary && summary.total > 0 && `${summary.connected} of ${summary.total} connected · `}refreshes every {REFRESH_MS / 1000} s
          </span>
        )}
      </div>
      {revoked && (
        <div className="muted" role="status">
          {revoked}
        </div>
      )}
      {summary && (summary.total > PAGE_SIZE || search) && (
        <div className="row">
          <input
            type="search"
            aria-label="Search delegates"
            placeholder="Name contains…"
            value={search}
            onChange={(e) => {
              setSearch(e.target.value);
              setCursors([]);
            }}
          />
          <div className="spacer" />
          <button type="button" disabled={cursors.length === 0} onClick={() => setCursors(cursors.slice(0, -1))}>
            Previous page
          </button>
          <button type="button" disabled={!last} onClick={() => last && setCursors([...cursors, last.cursor])}>
            Next page
          </button>
        </div>
      )}
      {error && <ErrorBox error={error} retry={() => refetch({ requestPolicy: 'network-only' })} />}
      {!data && fetching ? (
        <Loading what="delegates" />
      ) : data && delegates.length === 0 && search ? (
        <Empty>No delegate of {project.name} has {JSON.stringify(search.trim())} in its name.</Empty>
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
