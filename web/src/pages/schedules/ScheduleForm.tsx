// The schedule form, for `createSchedule` (from a template, preselected or picked) and for
// `updateSchedule` (the settings of an existing schedule; pausing is the page's Pause button).
// Its cron helper offers presets and, as you type, the hub's reading of the expression and its
// next fires in the chosen zone.
import { useId, useMemo, useState } from 'react';
import { useMutation, useQuery, type CombinedError } from 'urql';
import { graphql } from '../../gql';
import type { ScheduleConcurrency } from '../../gql/graphql';
import { useProject } from '../../project';
import { ErrorBox } from '../../ui';
import { browserZone, CONCURRENCY, CRON_PRESETS, errorField, formatInZone, formatJitter, zoneNames } from './cron';
import { useCronPreview } from './useCronPreview';

const FormTemplatesDoc = graphql(`
  query ScheduleFormTemplates($project: String!) {
    templates(project: $project) {
      id
      name
      version
    }
  }
`);

const CreateDoc = graphql(`
  mutation ScheduleCreate(
    $templateId: ID!
    $name: String
    $cron: String!
    $timezone: String!
    $delegate: String
    $version: Int
    $concurrency: ScheduleConcurrency!
    $jitter: String
    $enabled: Boolean!
  ) {
    createSchedule(
      templateId: $templateId
      name: $name
      cron: $cron
      timezone: $timezone
      delegate: $delegate
      version: $version
      concurrency: $concurrency
      jitter: $jitter
      enabled: $enabled
    ) {
      id
      name
    }
  }
`);

const UpdateDoc = graphql(`
  mutation ScheduleUpdate(
    $id: ID!
    $name: String!
    $cron: String!
    $timezone: String!
    $delegate: String
    $version: Int
    $concurrency: ScheduleConcurrency!
    $jitter: String!
  ) {
    updateSchedule(
      id: $id
      name: $name
      cron: $cron
      timezone: $timezone
      delegate: $delegate
      version: $version
      concurrency: $concurrency
      jitter: $jitter
    ) {
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
      updatedAt
    }
  }
`);

/** An existing schedule's settings, for editing. */
export interface ScheduleSettings {
  id: string;
  name: string;
  cron: string;
  timezone: string;
  delegate?: string | null;
  version?: number | null;
  concurrency: ScheduleConcurrency;
  jitterMs: number;
  template: { id: string; name: string; version: number };
}

interface Values {
  templateId: string;
  name: string;
  cron: string;
  timezone: string;
  delegate: string;
  /** '' for the latest version at each fire, else the pinned number. */
  version: string;
  concurrency: ScheduleConcurrency;
  jitter: string;
  enabled: boolean;
}

/**
 * `schedule` given: edits it and calls `onSaved`; otherwise creates one (from `templateId` when
 * given) and calls `onCreated` with its id.
 */
export function ScheduleForm({
  schedule,
  templateId,
  onCreated,
  onSaved,
  onCancel,
}: {
  schedule?: ScheduleSettings;
  templateId?: string;
  onCreated?(id: string): void;
  onSaved?(): void;
  onCancel?(): void;
}) {
  const project = useProject();
  const ids = useId();
  const [v, setV] = useState<Values>(() =>
    schedule
      ? {
          templateId: schedule.template.id,
          name: schedule.name,
          cron: schedule.cron,
          timezone: schedule.timezone,
          delegate: schedule.delegate ?? '',
          version: schedule.version ? String(schedule.version) : '',
          concurrency: schedule.concurrency,
          jitter: formatJitter(schedule.jitterMs),
          enabled: true,
        }
      : {
          templateId: templateId ?? '',
          name: '',
          cron: '0 * * * *',
          timezone: browserZone(),
          delegate: '',
          version: '',
          concurrency: 'FORBID',
          jitter: '',
          enabled: true,
        },
  );
  const set = <K extends keyof Values>(k: K, value: Values[K]) => setV((old) => ({ ...old, [k]: value }));
  const [templates] = useQuery({ query: FormTemplatesDoc, variables: { project: project.name }, pause: !!schedule });
  const [created, create] = useMutation(CreateDoc);
  const [updated, update] = useMutation(UpdateDoc);
  const writeError: CombinedError | undefined = schedule ? updated.error : created.error;
  const busy = created.fetching || updated.fetching;
  const zones = useMemo(zoneNames, []);

  const template = schedule
    ? schedule.template
    : templates.data?.templates.find((t) => t.id === v.templateId);
  const latest = template?.version ?? 0;

  const submit = () => {
    const common = {
      cron: v.cron.trim(),
      timezone: v.timezone.trim(),
      delegate: v.delegate.trim() || null,
      version: v.version ? Number(v.version) : null,
      concurrency: v.concurrency,
    };
    if (schedule) {
      void update(
        { id: schedule.id, name: v.name.trim(), jitter: v.jitter.trim() || '0s', ...common },
        { additionalTypenames: ['Schedule'] },
      ).then((r) => {
        if (r.data) onSaved?.();
      });
    } else {
      void create(
        {
          // The template names its project: the hub refuses `project` beside `templateId`.
          templateId: v.templateId,
          name: v.name.trim() || null,
          jitter: v.jitter.trim() || null,
          enabled: v.enabled,
          ...common,
        },
        { additionalTypenames: ['Schedule'] },
      ).then((r) => {
        if (r.data) onCreated?.(r.data.createSchedule.id);
      });
    }
  };

  const bad = errorField(writeError);
  return (
    <form
      className="sched-form"
      aria-label={schedule ? 'Schedule settings' : 'New schedule'}
      onSubmit={(e) => {
        e.preventDefault();
        submit();
      }}
    >
      {schedule ? (
        <div className="sched-field">
          <span className="sched-label">Template</span>
          <span>{schedule.template.name}</span>
        </div>
      ) : (
        <label>
          Template
          <select
            aria-label="Template"
            value={v.templateId}
            onChange={(e) => setV((old) => ({ ...old, templateId: e.target.value, version: '' }))}
            required
            aria-invalid={bad === 'templateId' || bad === 'template' || undefined}
          >
            <option value="">{templates.data ? 'Pick a template…' : 'Loading templates…'}</option>
            {templates.data?.templates.map((t) => (
              <option key={t.id} value={t.id}>
                {t.name}
              </option>
            ))}
          </select>
        </label>
      )}
      <ErrorBox error={templates.error} />
      <label>
        Name
        <input
          value={v.name}
          onChange={(e) => set('name', e.target.value)}
          placeholder={schedule ? undefined : 'default: the template’s name'}
          aria-invalid={bad === 'name' || undefined}
        />
      </label>

      <CronHelper
        cron={v.cron}
        timezone={v.timezone}
        onCron={(c) => set('cron', c)}
        onTimezone={(z) => set('timezone', z)}
        zones={zones}
        zonesId={`${ids}-zones`}
        refused={bad === 'cron' || bad === 'timezone' ? bad : undefined}
      />

      <label>
        Delegate
        <input
          value={v.delegate}
          onChange={(e) => set('delegate', e.target.value)}
          placeholder="default: the template’s target.delegate"
          title="A delegate name or a k=v,... label selector"
          aria-invalid={bad === 'delegate' || undefined}
        />
      </label>
      <label>
        Version
        <select aria-label="Version" value={v.version} onChange={(e) => set('version', e.target.value)} aria-invalid={bad === 'version' || undefined}>
          <option value="">Latest at each fire</option>
          {Array.from({ length: Math.max(latest, v.version ? Number(v.version) : 0) }, (_, i) => i + 1)
            .reverse()
            .map((n) => (
              <option key={n} value={String(n)}>
                v{n} (pinned)
              </option>
            ))}
        </select>
      </label>
      <fieldset className="sched-concurrency">
        <legend>While the previous run is unfinished</legend>
        {CONCURRENCY.map((c) => (
          <label key={c.value} className="inline">
            <input
              type="radio"
              name={`${ids}-concurrency`}
              value={c.value}
              checked={v.concurrency === c.value}
              onChange={() => set('concurrency', c.value)}
            />{' '}
            <strong>{c.label}</strong> <span className="muted">{c.explain}</span>
          </label>
        ))}
      </fieldset>
      <label>
        Jitter
        <input
          value={v.jitter}
          onChange={(e) => set('jitter', e.target.value)}
          placeholder="none, or e.g. 30s (at most 24h)"
          title="A random delay of up to this much is added to each fire, so many schedules do not start at once"
          aria-invalid={bad === 'jitter' || undefined}
        />
      </label>
      {!schedule && (
        <label className="inline">
          <input type="checkbox" checked={v.enabled} onChange={(e) => set('enabled', e.target.checked)} /> Enabled (fires
          from its next time; unchecked: created paused)
        </label>
      )}
      {writeError && <ErrorBox error={writeError} />}
      <div className="row">
        <button type="submit" className="primary" disabled={busy || (!schedule && !v.templateId)}>
          {schedule ? (updated.fetching ? 'Saving…' : 'Save') : created.fetching ? 'Creating…' : 'Create schedule'}
        </button>
        {onCancel && (
          <button type="button" onClick={onCancel} disabled={busy}>
            Cancel
          </button>
        )}
      </div>
    </form>
  );
}

/** The cron and zone fields, presets, and the hub's reading of them with the next 5 fires. */
export function CronHelper({
  cron,
  timezone,
  onCron,
  onTimezone,
  zones,
  zonesId,
  refused,
}: {
  cron: string;
  timezone: string;
  onCron(c: string): void;
  onTimezone(z: string): void;
  zones: string[];
  zonesId: string;
  /** The field the hub refused on saving, when it did. */
  refused?: 'cron' | 'timezone';
}) {
  const { preview, error, pending } = useCronPreview(cron, timezone);
  const field = errorField(error) ?? refused;
  const viewer = browserZone();
  return (
    <div className="sched-cron">
      <div className="row sched-cron-inputs">
        <label>
          Cron
          <input
            className="mono"
            value={cron}
            onChange={(e) => onCron(e.target.value)}
            placeholder="minute hour day-of-month month day-of-week"
            title="5 fields (minute hour day-of-month month day-of-week), 6 with seconds first, or an alias such as @hourly"
            aria-invalid={field === 'cron' || undefined}
            required
          />
        </label>
        <label>
          Time zone
          <input
            value={timezone}
            onChange={(e) => onTimezone(e.target.value)}
            list={zones.length ? zonesId : undefined}
            aria-invalid={field === 'timezone' || undefined}
            required
          />
          {zones.length > 0 && (
            <datalist id={zonesId}>
              {zones.map((z) => (
                <option key={z} value={z} />
              ))}
            </datalist>
          )}
        </label>
      </div>
      <div className="row sched-presets" role="group" aria-label="Cron presets">
        {CRON_PRESETS.map((p) => (
          <button
            key={p.cron}
            type="button"
            className={p.cron === cron.trim() ? 'preset picked' : 'preset'}
            aria-pressed={p.cron === cron.trim()}
            onClick={() => onCron(p.cron)}
            title={p.cron}
          >
            {p.label}
          </button>
        ))}
      </div>
      <div className="sched-preview" data-testid="cron-preview" aria-live="polite">
        {error ? (
          <ErrorBox error={error} />
        ) : preview ? (
          <>
            <div data-testid="cron-description">
              <strong>{preview.description}</strong> <span className="muted">({preview.timezone})</span>
            </div>
            <ol className="sched-next" aria-label="Next fires">
              {preview.nextFires.map((f) => (
                <li key={f} data-testid="next-fire">
                  <time dateTime={f}>{formatInZone(f, preview.timezone)}</time>
                  {viewer !== preview.timezone && <span className="muted"> · {formatInZone(f, viewer)} your time</span>}
                </li>
              ))}
            </ol>
          </>
        ) : pending ? (
          <span className="muted">Checking…</span>
        ) : null}
      </div>
    </div>
  );
}
