// Pieces the schedule list and the schedule page share: a fire time in both zones, a fire's
// outcome, and the editors' Pause / Resume / Delete buttons.
import { useState } from 'react';
import { useMutation, type CombinedError } from 'urql';
import { Link } from 'wouter';
import { graphql } from '../../gql';
import type { FireOutcome } from '../../gql/graphql';
import { useProject } from '../../project';
import { Confirm, ErrorBox } from '../../ui';
import { When } from '../admin/common';
import { browserZone, formatInZone, OUTCOME_CLASS } from './cron';

const PauseDoc = graphql(`
  mutation SchedulePause($id: ID!) {
    pauseSchedule(id: $id) {
      id
      enabled
      nextFireAt
    }
  }
`);

const ResumeDoc = graphql(`
  mutation ScheduleResume($id: ID!) {
    resumeSchedule(id: $id) {
      id
      enabled
      nextFireAt
    }
  }
`);

const DeleteDoc = graphql(`
  mutation ScheduleDelete($id: ID!) {
    deleteSchedule(id: $id)
  }
`);

/**
 * An instant in the schedule's zone and in the viewer's (once when they agree), and how far
 * away it is.
 */
export function InZones({ at, zone, relative = true }: { at: string | null | undefined; zone: string; relative?: boolean }) {
  if (!at) return <span className="muted">–</span>;
  const viewer = browserZone();
  return (
    <span className="sched-when" data-testid="in-zones">
      <time dateTime={at} data-zone={viewer} title={`your zone (${viewer})`}>
        {formatInZone(at, viewer)}
      </time>
      {viewer !== zone && (
        <span className="muted" data-zone={zone} title={`the schedule's zone (${zone})`}>
          {' '}
          · {formatInZone(at, zone)} in {zone}
        </span>
      )}
      {relative && (
        <span className="muted">
          {' '}
          (<When at={at} />)
        </span>
      )}
    </span>
  );
}

export function OutcomeBadge({ outcome }: { outcome: FireOutcome }) {
  return (
    <span className={`badge badge-${OUTCOME_CLASS[outcome]}`} data-outcome={outcome}>
      {outcome}
    </span>
  );
}

/** A fire's outcome, its reason, and a link to the run it started (or the ERROR run recording why not). */
export function FireSummary({
  fire,
}: {
  fire: { outcome: FireOutcome; reason?: string | null; missedCount: number; runId?: string | null };
}) {
  return (
    <span className="sched-fire">
      <OutcomeBadge outcome={fire.outcome} />
      {fire.outcome === 'MISSED' && fire.missedCount > 1 && <span className="muted"> ×{fire.missedCount}</span>}
      {fire.runId && (
        <>
          {' '}
          <Link href={`/runs/${fire.runId}`} className="mono" aria-label={`Run ${fire.runId}`}>
            {fire.runId.slice(0, 8)}
          </Link>
        </>
      )}
      {fire.reason && <span className="sched-reason"> {fire.reason}</span>}
    </span>
  );
}

/** Pause or Resume, and Delete (with a confirmation), for editors; nothing for viewers. */
export function ScheduleActions({
  schedule,
  onChanged,
  onDeleted,
}: {
  schedule: { id: string; name: string; enabled: boolean };
  onChanged?(): void;
  onDeleted?(): void;
}) {
  const project = useProject();
  const [pause, doPause] = useMutation(PauseDoc);
  const [resume, doResume] = useMutation(ResumeDoc);
  const [del, doDelete] = useMutation(DeleteDoc);
  const [confirming, setConfirming] = useState(false);
  const [error, setError] = useState<CombinedError | null>(null);
  if (!project.can('EDITOR')) return null;
  const busy = pause.fetching || resume.fetching || del.fetching;
  const toggle = () => {
    setError(null);
    const act = schedule.enabled ? doPause : doResume;
    void act({ id: schedule.id }, { additionalTypenames: ['Schedule'] }).then((r) => {
      if (r.error) setError(r.error);
      else onChanged?.();
    });
  };
  return (
    <span className="sched-actions">
      <button type="button" onClick={toggle} disabled={busy} aria-label={`${schedule.enabled ? 'Pause' : 'Resume'} ${schedule.name}`}>
        {schedule.enabled ? 'Pause' : 'Resume'}
      </button>
      <button
        type="button"
        onClick={() => {
          setError(null);
          setConfirming(true);
        }}
        disabled={busy}
        aria-label={`Delete ${schedule.name}`}
      >
        Delete
      </button>
      {error && <ErrorBox error={error} />}
      {confirming && (
        <Confirm
          title={`Delete the schedule ${schedule.name}?`}
          confirmLabel="Delete schedule"
          danger
          busy={del.fetching}
          onCancel={() => setConfirming(false)}
          onConfirm={() => {
            void doDelete({ id: schedule.id }, { additionalTypenames: ['Schedule'] }).then((r) => {
              // A refusal stays in the dialog.
              if (!r.error) {
                setConfirming(false);
                onDeleted?.();
              }
            });
          }}
        >
          <p>It stops firing and its fire history is deleted. The runs it started stay.</p>
          <ErrorBox error={del.error} />
        </Confirm>
      )}
    </span>
  );
}
