// The audit log (owners): who did what to which object, from where, how it ended. Filters
// live in the URL query string; "Older" pages back with the hub's cursor.
import { Fragment, useEffect, useMemo, useState, type FormEvent } from 'react';
import { useQuery } from 'urql';
import { useSearchParams } from 'wouter';
import { graphql } from '../gql';
import type { AuditEntriesQuery } from '../gql/graphql';
import { useProject } from '../project';
import { Empty, ErrorBox, Loading } from '../ui';
import {
  KNOWN_ACTIONS,
  WINDOWS,
  auditFilterToSearch,
  auditVariables,
  isoToLocalInput,
  localInputToIso,
  parseAuditFilter,
  windowProblem,
  type AuditFilter,
  type Outcome,
  type Window,
} from './admin/auditFilter';
import { OwnersOnly } from './admin/common';
import './admin/admin.css';

const AuditEntriesDoc = graphql(`
  query AuditEntries(
    $project: String!
    $actor: String
    $action: String
    $outcome: String
    $since: DateTime
    $until: DateTime
    $before: ID
    $first: Int!
  ) {
    auditLog(
      project: $project
      actor: $actor
      action: $action
      outcome: $outcome
      since: $since
      until: $until
      before: $before
      first: $first
    ) {
      entries {
        id
        at
        actor
        action
        target
        address
        outcome
        detail
      }
      next
    }
  }
`);

export const PAGE_SIZE = 50;

type Entry = AuditEntriesQuery['auditLog']['entries'][number];

export function AuditPage() {
  const project = useProject();
  if (!project.can('OWNER'))
    return (
      <div className="page admin-page">
        <h1>Audit log</h1>
        <OwnersOnly project={project.name} what="its audit log" />
      </div>
    );
  return <AuditLog />;
}

function AuditLog() {
  const [params, setParams] = useSearchParams();
  const search = params.toString();
  const filter = useMemo(() => parseAuditFilter(search), [search]);
  // Pushed, not replaced: Back undoes a filter.
  const apply = (f: AuditFilter) => setParams(auditFilterToSearch(f));
  // A relative window ends when the filter was applied (or refreshed), not at every render.
  const [tick, setTick] = useState(0);
  const now = useMemo(() => Date.now(), [search, tick]);
  const problem = windowProblem(filter);

  return (
    <div className="page admin-page">
      <div className="row">
        <h1>Audit log</h1>
        <div className="spacer" />
        <button type="button" onClick={() => setTick((t) => t + 1)}>
          Refresh
        </button>
      </div>
      <Filters filter={filter} apply={apply} />
      {problem ? (
        <div className="error-box" role="alert">
          {problem}
        </div>
      ) : (
        // A new filter starts again at the newest page.
        <Entries key={`${search}|${now}`} filter={filter} now={now} apply={apply} />
      )}
    </div>
  );
}

function Filters({ filter, apply }: { filter: AuditFilter; apply(f: AuditFilter): void }) {
  const [actor, setActor] = useState(filter.actor);
  const [action, setAction] = useState(filter.action);
  // Follow the URL when it changes from outside (back button, a click on an actor).
  useEffect(() => setActor(filter.actor), [filter.actor]);
  useEffect(() => setAction(filter.action), [filter.action]);
  const typed = { ...filter, actor, action };
  const submit = (e: FormEvent) => {
    e.preventDefault();
    apply(typed);
  };
  const active = auditFilterToSearch(filter) !== '';
  return (
    <form className="filters" onSubmit={submit} aria-label="Audit filters">
      <label>
        Actor
        <input
          type="text"
          value={actor}
          onChange={(e) => setActor(e.target.value)}
          placeholder="user:alice@example.com"
          title="Exact: user:<email>, token:<name> or delegate:<name>"
        />
      </label>
      <label>
        Action
        <input
          type="text"
          value={action}
          onChange={(e) => setAction(e.target.value)}
          placeholder="run.start or run."
          list="audit-actions"
          title="Exact, or a prefix ending in '.'"
        />
        <datalist id="audit-actions">
          {KNOWN_ACTIONS.map((a) => (
            <option key={a} value={a} />
          ))}
        </datalist>
      </label>
      <label>
        Outcome
        <select value={filter.outcome} onChange={(e) => apply({ ...typed, outcome: e.target.value as Outcome })}>
          <option value="">Any</option>
          <option value="ok">ok</option>
          <option value="error">error</option>
        </select>
      </label>
      <label>
        Time
        <select value={filter.window} onChange={(e) => apply({ ...typed, window: e.target.value as Window })}>
          {WINDOWS.map((w) => (
            <option key={w.value} value={w.value}>
              {w.label}
            </option>
          ))}
        </select>
      </label>
      {filter.window === 'custom' && (
        <>
          <label>
            From
            <input
              type="datetime-local"
              value={isoToLocalInput(filter.since)}
              onChange={(e) => apply({ ...typed, since: localInputToIso(e.target.value) })}
            />
          </label>
          <label>
            Until
            <input
              type="datetime-local"
              value={isoToLocalInput(filter.until)}
              onChange={(e) => apply({ ...typed, until: localInputToIso(e.target.value) })}
            />
          </label>
        </>
      )}
      <button type="submit" className="primary">
        Apply
      </button>
      {active && (
        <button type="button" className="link" onClick={() => apply({ actor: '', action: '', outcome: '', window: '', since: '', until: '' })}>
          Clear filters
        </button>
      )}
    </form>
  );
}

/** One page of entries at a time; "Older" follows the cursor, "Newest" goes back. */
function Entries({ filter, now, apply }: { filter: AuditFilter; now: number; apply(f: AuditFilter): void }) {
  const project = useProject();
  // The cursors of the pages walked so far; the last one is shown (null: the newest page).
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const before = cursors[cursors.length - 1];
  const variables = useMemo(
    () => ({ project: project.name, ...auditVariables(filter, now), before, first: PAGE_SIZE }),
    [project.name, filter, now, before],
  );
  const [{ data, fetching, error }, refetch] = useQuery({ query: AuditEntriesDoc, variables });
  const page = data?.auditLog;

  if (error && !page) return <ErrorBox error={error} retry={() => refetch({ requestPolicy: 'network-only' })} />;
  if (!page) return <Loading what="the audit log" />;
  const filtered = auditFilterToSearch(filter) !== '';
  return (
    <>
      <ErrorBox error={error} />
      {page.entries.length === 0 ? (
        <Empty>{filtered ? 'No entry matches these filters.' : 'Nothing recorded yet.'}</Empty>
      ) : (
        <table className="audit-table" aria-label="Audit log">
          <thead>
            <tr>
              <th>Time</th>
              <th>Actor</th>
              <th>Action</th>
              <th>Target</th>
              <th>Outcome</th>
              <th>Address</th>
              <th>Detail</th>
            </tr>
          </thead>
          <tbody>
            {page.entries.map((e) => (
              <Row key={e.id} e={e} filter={filter} apply={apply} />
            ))}
          </tbody>
        </table>
      )}
      <div className="pager">
        {cursors.length > 1 && (
          <button type="button" onClick={() => setCursors([null])} disabled={fetching}>
            Newest
          </button>
        )}
        <button
          type="button"
          onClick={() => page.next && setCursors([...cursors, page.next])}
          disabled={!page.next || fetching}
          title={page.next ? undefined : 'No older entries'}
        >
          Older
        </button>
        <span className="muted">
          {cursors.length > 1 ? `Page ${cursors.length}` : 'Newest first'} · {page.entries.length} entries
          {fetching && ' · loading…'}
        </span>
      </div>
    </>
  );
}

/** A compact one-line view of the detail JSON; "" when there is nothing in it. */
export function detailPreview(detail: unknown, max = 60): string {
  if (detail === null || detail === undefined) return '';
  if (typeof detail === 'object' && Object.keys(detail as object).length === 0) return '';
  const s = JSON.stringify(detail);
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

export function outcomeBadge(outcome: string): { cls: string; text: string } {
  return outcome === 'ok' ? { cls: 'badge-ok', text: 'ok' } : { cls: 'badge-bad', text: outcome.replace(/^error:?/, 'error ') };
}

function Row({ e, filter, apply }: { e: Entry; filter: AuditFilter; apply(f: AuditFilter): void }) {
  const [open, setOpen] = useState(false);
  const preview = detailPreview(e.detail);
  const badge = outcomeBadge(e.outcome);
  return (
    <Fragment>
      <tr data-testid="audit-row">
        <td className="nowrap">
          <time dateTime={e.at}>{new Date(e.at).toLocaleString()}</time>
        </td>
        <td>
          <button type="button" className="chip" title="Show only this actor" onClick={() => apply({ ...filter, actor: e.actor })}>
            {e.actor}
          </button>
        </td>
        <td className="mono">
          <button type="button" className="chip" title="Show only this action" onClick={() => apply({ ...filter, action: e.action })}>
            {e.action}
          </button>
        </td>
        <td className="target mono">{e.target || <span className="muted">–</span>}</td>
        <td>
          <span className={`badge ${badge.cls}`} data-outcome={e.outcome}>
            {badge.text.trim()}
          </span>
        </td>
        <td className="mono">{e.address ?? <span className="muted">–</span>}</td>
        <td>
          {preview ? (
            <button type="button" className="detail" aria-expanded={open} onClick={() => setOpen(!open)} title="Show the detail">
              {open ? '▾ ' : '▸ '}
              {preview}
            </button>
          ) : (
            <span className="muted">–</span>
          )}
        </td>
      </tr>
      {open && (
        <tr className="detail-row">
          <td colSpan={7}>
            <pre>{JSON.stringify(e.detail, null, 2)}</pre>
          </td>
        </tr>
      )}
    </Fragment>
  );
}
