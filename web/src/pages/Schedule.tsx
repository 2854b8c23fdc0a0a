// One schedule (`/schedules/:id`): its settings (editable by editors, through the same form as
// creating one), its next fires in both zones, and its history: every fire newest first with its
// outcome, the reason when it did not start, and the run it started. Refreshed every few
// seconds. Also `/schedules/new` (`NewSchedulePage`), from a template when one is given.
import { useEffect, useState } from 'react';
import { useQuery } from 'urql';
import { Link, useLocation } from 'wouter';
import { graphql } from '../gql';
import type { ScheduleViewQuery } from '../gql/graphql';
import { useProject } from '../project';
import { Empty, ErrorBox, isNotFound, Loading, NotFound, StatusBadge } from '../ui';
import { CONCURRENCY, formatJitter } from './schedules/cron';
import { InZones, OutcomeBadge, ScheduleActions } from './schedules/parts';
import { ScheduleForm } from './schedules/ScheduleForm';
import { REFRESH_MS } from './Schedules';
import './schedules/schedules.css';

const ScheduleViewDoc = graphql(`
  query ScheduleView($id: ID!) {
    schedule(id: $id) {
      id
      name
      cron
      timezone
      description
      delegate
      version
      concurrency
      jitterMs
      enabled
      nextFireAt
      nextFires(n: 5)
      createdBy
      createdAt
      updatedAt
      template {
        id
        name
        version
      }
      fires(limit: 100) {
        dueAt
        lastDueAt
        missedCount
        firedAt
        outcome
        reason
        runId
        run {
          id
          status
          dryRun
        }
      }
    }
  }
`);

type Loaded = ScheduleViewQuery['schedule'];

export function SchedulePage({ id }: { id: string }) {
  const [, navigate] = useLocation();
  const [{ data, fetching, error }, refetch] = useQuery({ query: ScheduleViewDoc, variables: { id } });
  useEffect(() => {
    const t = setInterval(() => refetch({ requestPolicy: 'network-only' }), REFRESH_MS);
    return () => clearInterval(t);
  }, [refetch]);
  const reload = () => refetch({ requestPolicy: 'network-only' });
  if (fetching && !data) return <Loading what="the schedule" />;
  if (!data && isNotFound(error)) return <NotFound what="Schedule" id={id} back="/schedules" backLabel="← All schedules" />;
  if (!data) {
    return (
      <div className="page">
        <h1>Schedule</h1>
        <ErrorBox error={error ?? 'No answer from the hub'} retry={reload} />
        <Link href="/schedules">Back to the list</Link>
      </div>
    );
  }
  return <View key={data.schedule.id} s={data.schedule} reload={reload} onDeleted={() => navigate('/schedules')} />;
}

function View({ s, reload, onDeleted }: { s: Loaded; reload(): void; onDeleted(): void }) {
  const project = useProject();
  const [editing, setEditing] = useState(false);
  const concurrency = CONCURRENCY.find((c) => c.value === s.concurrency);
  return (
    <div className="page sched-view">
      <div className="row sched-head">
        <Link href="/schedules" className="muted" aria-label="Back to the schedule list" title="Back to the schedule list">
          ← Back
        </Link>
        <h1>{s.name}</h1>
        {s.enabled ? (
          <span className="badge badge-ok" data-enabled="true">
            enabled
          </span>
        ) : (
          <span className="badge badge-wait" data-enabled="false">
            paused
          </span>
        )}
        <div className="spacer" />
        {project.can('EDITOR') && !editing && (
          <button type="button" onClick={() => setEditing(true)}>
            Edit
          </button>
        )}
        <ScheduleActions schedule={s} onChanged={reload} onDeleted={onDeleted} />
      </div>

      <div className="sched-grid">
        <section className="panel" aria-label="Settings">
          <h2>Settings</h2>
          {editing ? (
            <ScheduleForm
              schedule={s}
              onSaved={() => {
                setEditing(false);
                reload();
              }}
              onCancel={() => setEditing(false)}
            />
          ) : (
            <dl className="sched-facts">
              <dt>Template</dt>
              <dd>
                <Link href={`/templates/${s.template.id}`}>{s.template.name}</Link>{' '}
                <span className="muted">{s.version ? `v${s.version} (pinned)` : `latest (now v${s.template.version})`}</span>
              </dd>
              <dt>Cron</dt>
              <dd>
                <code>{s.cron}</code> <span className="muted">{s.description}</span>
              </dd>
              <dt>Time zone</dt>
              <dd>{s.timezone}</dd>
              <dt>Delegate</dt>
              <dd>{s.delegate ?? <span className="muted">the template’s target.delegate</span>}</dd>
              <dt>Concurrency</dt>
              <dd>
                {s.concurrency.toLowerCase()} <span className="muted">{concurrency?.explain}</span>
              </dd>
              <dt>Jitter</dt>
              <dd>{s.jitterMs ? `up to ${formatJitter(s.jitterMs)}` : <span className="muted">none</span>}</dd>
              <dt>Created</dt>
              <dd>
                by {s.createdBy.replace(/^user:/, '')}, <InZones at={s.createdAt} zone={s.timezone} />
              </dd>
            </dl>
          )}
        </section>

        <section className="panel" aria-label="Next fires">
          <h2>Next fires</h2>
          {!s.enabled && <p className="muted">Paused: these are the times it would fire after a resume now.</p>}
          {s.enabled && s.nextFireAt && (
            <p data-testid="next-fire-at">
              Next: <InZones at={s.nextFireAt} zone={s.timezone} />
            </p>
          )}
          <ol className="sched-next" aria-label="Next fire times">
            {s.nextFires.map((f) => (
              <li key={f} data-testid="next-fire">
                <InZones at={f} zone={s.timezone} relative={false} />
              </li>
            ))}
          </ol>
          <p className="muted">By the clock, without jitter.</p>
        </section>
      </div>

      <section className="panel sched-history" aria-label="History">
        <div className="row">
          <h2>History</h2>
          <div className="spacer" />
          <span className="muted">newest first · refreshes every {REFRESH_MS / 1000} s</span>
          <Link href={`/runs?schedule=${encodeURIComponent(s.id)}`}>All its runs</Link>
        </div>
        {s.fires.length === 0 ? (
          <Empty>Not fired yet.</Empty>
        ) : (
          <table aria-label="Fires" className="sched-fires">
            <thead>
              <tr>
                <th>Due</th>
                <th>Outcome</th>
                <th>Run</th>
                <th>Reason</th>
              </tr>
            </thead>
            <tbody>
              {s.fires.map((f) => (
                <tr key={`${f.dueAt}-${f.firedAt}`} data-testid="fire-row" data-outcome={f.outcome}>
                  <td>
                    <InZones at={f.dueAt} zone={s.timezone} relative={false} />
                    {f.lastDueAt && f.missedCount > 1 && (
                      <div className="muted">
                        to <InZones at={f.lastDueAt} zone={s.timezone} relative={false} />
                      </div>
                    )}
                  </td>
                  <td>
                    <OutcomeBadge outcome={f.outcome} />
                    {f.outcome === 'MISSED' && (
                      <span className="muted" data-testid="missed-count">
                        {' '}
                        {f.missedCount} missed
                      </span>
                    )}
                  </td>
                  <td>
                    {f.runId ? (
                      <>
                        <Link href={`/runs/${f.runId}`} className="mono" aria-label={`Run ${f.runId}`}>
                          {f.runId.slice(0, 8)}
                        </Link>{' '}
                        {f.run && <StatusBadge status={f.run.status} dryRun={f.run.dryRun} />}
                      </>
                    ) : (
                      <span className="muted">–</span>
                    )}
                  </td>
                  <td className="sched-reason">{f.reason ?? ''}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
    </div>
  );
}

/** `/schedules/new`, or `?template=<id>` from a template's page. */
export function NewSchedulePage({ templateId }: { templateId?: string }) {
  const project = useProject();
  const [, navigate] = useLocation();
  if (!project.can('EDITOR')) {
    return (
      <div className="page">
        <h1>New schedule</h1>
        <Empty>
          Your role in {project.name} is {project.role.toLowerCase()}: only editors and owners create schedules.{' '}
          <Link href="/schedules">Back to the list</Link>
        </Empty>
      </div>
    );
  }
  return (
    <div className="page sched-new">
      <div className="row sched-head">
        <Link href="/schedules" className="muted" aria-label="Back to the schedule list" title="Back to the schedule list">
          ← Back
        </Link>
        <h1>New schedule</h1>
      </div>
      <p className="muted">
        Runs a template on a cron clock in a time zone. Each fire starts a run, as if someone pressed Run; its history shows
        what each fire did.
      </p>
      <div className="panel">
        <ScheduleForm templateId={templateId} onCreated={(id) => navigate(`/schedules/${id}`)} />
      </div>
    </div>
  );
}
