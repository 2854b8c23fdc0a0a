// The schedules of the project: what each runs and when (the next fire in the viewer's zone and
// in the schedule's), what its last fire did, and, for editors, Pause / Resume / Delete and a way
// to create one. Refreshed every few seconds, as fires happen on the hub's clock.
import { useEffect } from 'react';
import { useQuery } from 'urql';
import { Link } from 'wouter';
import { graphql } from '../gql';
import { useProject } from '../project';
import { Empty, ErrorBox, Loading } from '../ui';
import { CONCURRENCY } from './schedules/cron';
import { FireSummary, InZones, ScheduleActions } from './schedules/parts';
import './schedules/schedules.css';

const SchedulesListDoc = graphql(`
  query SchedulesList($project: String!) {
    schedules(project: $project) {
      id
      name
      cron
      description
      timezone
      concurrency
      enabled
      nextFireAt
      template {
        id
        name
      }
      lastFire {
        dueAt
        outcome
        reason
        missedCount
        runId
      }
    }
  }
`);

export const REFRESH_MS = 5000;

export function SchedulesPage() {
  const project = useProject();
  const editor = project.can('EDITOR');
  const [{ data, fetching, error }, refetch] = useQuery({ query: SchedulesListDoc, variables: { project: project.name } });
  useEffect(() => {
    const t = setInterval(() => refetch({ requestPolicy: 'network-only' }), REFRESH_MS);
    return () => clearInterval(t);
  }, [refetch]);
  const reload = () => refetch({ requestPolicy: 'network-only' });
  const schedules = data?.schedules ?? [];

  return (
    <div className="page sched-page">
      <div className="row">
        <h1>Schedules</h1>
        <div className="spacer" />
        {data && (
          <span className="muted" role="status">
            refreshes every {REFRESH_MS / 1000} s
          </span>
        )}
        {editor && (
          <Link href="/schedules/new" className="button primary">
            New schedule
          </Link>
        )}
      </div>
      {error && <ErrorBox error={error} retry={reload} />}
      {!data && fetching ? (
        <Loading what="schedules" />
      ) : data && schedules.length === 0 ? (
        <Empty>
          No schedule in {project.name} yet.{' '}
          {editor ? (
            <>
              <Link href="/schedules/new">Create one</Link>, or use “Schedule…” on a <Link href="/templates">template</Link>.
            </>
          ) : (
            'An editor of the project can create one.'
          )}
        </Empty>
      ) : data ? (
        <table aria-label="Schedules" className="sched-table">
          <thead>
            <tr>
              <th>Name</th>
              <th>Template</th>
              <th>When</th>
              <th>Next fire</th>
              <th>Concurrency</th>
              <th>Last fire</th>
              <th>State</th>
              {editor && (
                <th className="actions">
                  <span className="sr-only">Actions</span>
                </th>
              )}
            </tr>
          </thead>
          <tbody>
            {schedules.map((s) => (
              <tr key={s.id} data-testid="schedule-row" data-schedule={s.name}>
                <td>
                  <Link href={`/schedules/${s.id}`} className="sched-name">
                    {s.name}
                  </Link>
                </td>
                <td>
                  <Link href={`/templates/${s.template.id}`}>{s.template.name}</Link>
                </td>
                <td>
                  <code>{s.cron}</code> <span className="muted">{s.timezone}</span>
                  <div className="muted sched-desc">{s.description}</div>
                </td>
                <td data-testid="next-fire-at">
                  {s.enabled ? <InZones at={s.nextFireAt} zone={s.timezone} /> : <span className="muted">paused</span>}
                </td>
                <td title={CONCURRENCY.find((c) => c.value === s.concurrency)?.explain}>{s.concurrency.toLowerCase()}</td>
                <td data-testid="last-fire">
                  {s.lastFire ? <FireSummary fire={s.lastFire} /> : <span className="muted">never fired</span>}
                </td>
                <td>
                  {s.enabled ? (
                    <span className="badge badge-ok" data-enabled="true">
                      enabled
                    </span>
                  ) : (
                    <span className="badge badge-wait" data-enabled="false">
                      paused
                    </span>
                  )}
                </td>
                {editor && (
                  <td className="actions">
                    <ScheduleActions schedule={s} onChanged={reload} onDeleted={reload} />
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
    </div>
  );
}
