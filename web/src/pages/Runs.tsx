// The runs list: newest first, filtered by template, status, delegate and time window (all in the
// URL), refreshed every few seconds while any listed run is unfinished. Ticking two runs and
// pressing Compare opens them side by side.
import { useEffect, useMemo, useRef, useState } from 'react';
import { useQuery } from 'urql';
import { Link, useLocation, useSearch } from 'wouter';
import { graphql } from '../gql';
import type { RunsListQuery } from '../gql/graphql';
import { useProject } from '../project';
import { Ago, Empty, ErrorBox, Loading, StatusBadge, finished } from '../ui';
import {
  NO_FILTERS,
  STATUS_PRESETS,
  WINDOWS,
  parseFilters,
  serializeFilters,
  sinceOf,
  type RunFilters,
  type Window,
} from './runs/filters';
import { compareHref, orderPair } from './runs/comparePair';
import { formatRunDuration, formatScore, runDuration, useNow } from './runs/time';
import './runs/runs.css';

const RunsListDoc = graphql(`
  query RunsList(
    $project: String!
    $limit: Int!
    $templateId: ID
    $status: [RunStatus!]
    $delegate: String
    $since: DateTime
    $scheduleId: ID
  ) {
    runs(
      project: $project
      limit: $limit
      templateId: $templateId
      status: $status
      delegate: $delegate
      since: $since
      scheduleId: $scheduleId
    ) {
      id
      status
      templateVersion
      createdBy
      createdAt
      startedAt
      endedAt
      resilienceScore
      dryRun
      template {
        id
        name
      }
      delegate {
        id
        name
      }
      schedule {
        id
        name
      }
      probeTally {
        passed
        failed
        total
      }
    }
  }
`);

const RunsFilterOptionsDoc = graphql(`
  query RunsFilterOptions($project: String!) {
    templates(project: $project) {
      id
      name
    }
  }
`);

/** Delegates whose name contains what is typed into the filter (any fleet size: the hub searches). */
const RunsDelegateSuggestDoc = graphql(`
  query RunsDelegateSuggest($project: String!, $search: String) {
    delegates(project: $project, first: 20, search: $search) {
      id
      name
    }
  }
`);

/** How long typing in the delegate filter pauses before the hub is asked for names. */
const SUGGEST_MS = 200;

/** How often the list refreshes while a listed run is unfinished. */
const POLL_MS = 3000;
const PAGE = 50;

export function RunsPage() {
  const project = useProject();
  const search = useSearch();
  const [, navigate] = useLocation();
  const filters = useMemo(() => parseFilters(search), [search]);
  const [limit, setLimit] = useState(PAGE);
  // Runs ticked for comparing, in the order ticked (at most two); kept across filter changes.
  const [picked, setPicked] = useState<Picked[]>([]);
  // `since` is fixed when the window is chosen: recomputing it on every render would make every
  // refresh a new query.
  const since = useMemo(() => sinceOf(filters.window), [filters.window]);
  const variables = useMemo(
    () => ({
      project: project.name,
      limit,
      templateId: filters.templateId,
      status: filters.status.length ? filters.status : null,
      delegate: filters.delegate,
      since,
      scheduleId: filters.scheduleId ?? null,
    }),
    [project.name, limit, filters, since],
  );
  const [{ data, fetching, error }, reexecute] = useQuery({ query: RunsListDoc, variables });
  const [options] = useQuery({ query: RunsFilterOptionsDoc, variables: { project: project.name } });

  // Keep showing the last answer while a changed filter loads, instead of flashing a spinner.
  const last = useRef<RunsListQuery | undefined>(undefined);
  if (data) last.current = data;
  const runs = (data ?? last.current)?.runs;

  const live = runs?.some((r) => !finished(r.status)) ?? false;
  useEffect(() => {
    if (!live) return;
    const t = setInterval(() => reexecute({ requestPolicy: 'network-only' }), POLL_MS);
    return () => clearInterval(t);
  }, [live, reexecute]);

  const setFilters = (f: RunFilters) => {
    setLimit(PAGE);
    navigate(`/runs${serializeFilters(f)}`, { replace: true });
  };
  const filtered = serializeFilters(filters) !== '';

  return (
    <div className="page runs-page">
      <div className="row">
        <h1>Runs</h1>
        <div className="spacer" />
        {live && (
          <span className="muted" role="status">
            Live: refreshing every {POLL_MS / 1000} s
          </span>
        )}
        <button type="button" onClick={() => reexecute({ requestPolicy: 'network-only' })} disabled={fetching}>
          Refresh
        </button>
      </div>
      <RunFiltersBar
        filters={filters}
        onChange={setFilters}
        options={options.data}
        scheduleName={runs?.find((r) => r.schedule)?.schedule?.name}
      />
      <ErrorBox error={options.error} />
      {error && <ErrorBox error={error} retry={() => reexecute({ requestPolicy: 'network-only' })} />}
      {!runs && fetching && <Loading what="runs" />}
      {runs && runs.length === 0 && (
        <Empty>
          {filtered ? (
            <>
              No run matches these filters.{' '}
              <button type="button" className="link" onClick={() => setFilters(NO_FILTERS)}>
                Clear filters
              </button>
            </>
          ) : (
            <>
              No runs yet. Start one from a <Link href="/templates">template</Link>.
            </>
          )}
        </Empty>
      )}
      {runs && runs.length > 0 && (
        <>
          <CompareBar picked={picked} onClear={() => setPicked([])} onCompare={([a, b]) => navigate(compareHref(a, b))} />
          <RunsTable runs={runs} picked={picked} onPick={setPicked} />
          {runs.length >= limit && limit < 1000 && (
            <div className="runs-more">
              <button type="button" onClick={() => setLimit((l) => Math.min(1000, l + PAGE * 2))} disabled={fetching}>
                Show more
              </button>
            </div>
          )}
        </>
      )}
    </div>
  );
}

type Options = { templates: { id: string; name: string }[] } | undefined;

function RunFiltersBar({
  filters,
  onChange,
  options,
  scheduleName,
}: {
  filters: RunFilters;
  onChange(f: RunFilters): void;
  options: Options;
  /** The name of the schedule filtered by, when a listed run says it. */
  scheduleName?: string;
}) {
  const statusValue = filters.status.join(',');
  const presets = STATUS_PRESETS.some((p) => p.value === statusValue)
    ? STATUS_PRESETS
    : [...STATUS_PRESETS, { value: statusValue, label: filters.status.join(', ').toLowerCase(), statuses: filters.status }];
  const templates = options?.templates ?? [];
  return (
    <div className="filters" role="search" aria-label="Filter runs">
      {filters.scheduleId && (
        <span className="label-chip run-schedule-filter" data-testid="schedule-filter">
          Started by schedule{' '}
          <Link href={`/schedules/${filters.scheduleId}`}>{scheduleName ?? filters.scheduleId.slice(0, 8)}</Link>{' '}
          <button type="button" className="link" aria-label="Any schedule" onClick={() => onChange({ ...filters, scheduleId: null })}>
            ×
          </button>
        </span>
      )}
      <label>
        Template
        <select
          aria-label="Template"
          value={filters.templateId ?? ''}
          onChange={(e) => onChange({ ...filters, templateId: e.target.value || null })}
        >
          <option value="">All templates</option>
          {filters.templateId && !templates.some((t) => t.id === filters.templateId) && (
            <option value={filters.templateId}>{options ? 'unknown template' : 'loading…'}</option>
          )}
          {templates.map((t) => (
            <option key={t.id} value={t.id}>
              {t.name}
            </option>
          ))}
        </select>
      </label>
      <label>
        Status
        <select
          aria-label="Status"
          value={statusValue}
          onChange={(e) => {
            const p = presets.find((x) => x.value === e.target.value);
            onChange({ ...filters, status: p ? p.statuses : [] });
          }}
        >
          {presets.map((p) => (
            <option key={p.value || 'any'} value={p.value}>
              {p.label}
            </option>
          ))}
        </select>
      </label>
      <label>
        Delegate
        <DelegateFilter value={filters.delegate} onChange={(delegate) => onChange({ ...filters, delegate })} />
      </label>
      <label>
        Created
        <select
          aria-label="Time window"
          value={filters.window}
          onChange={(e) => onChange({ ...filters, window: e.target.value as Window })}
        >
          <option value="all">Any time</option>
          {Object.entries(WINDOWS).map(([k, w]) => (
            <option key={k} value={k}>
              {w.label}
            </option>
          ))}
        </select>
      </label>
    </div>
  );
}

type RunRow = RunsListQuery['runs'][number];

/** A run ticked for comparing: what ordering the pair and warning about it need. */
export interface Picked {
  id: string;
  createdAt: string;
  templateId: string;
}

/** Compare (enabled with two runs ticked: the older is A, the baseline), and what is ticked. */
function CompareBar({ picked, onClear, onCompare }: { picked: Picked[]; onClear(): void; onCompare(pair: [string, string]): void }) {
  const ready = picked.length === 2;
  return (
    <div className="runs-compare-bar">
      <button
        type="button"
        disabled={!ready}
        onClick={() => {
          if (!ready) return;
          const [a, b] = orderPair(picked[0], picked[1]);
          onCompare([a.id, b.id]);
        }}
        title={ready ? 'Compare the two ticked runs side by side (the older one is the baseline)' : 'Tick two runs to compare them'}
      >
        Compare
      </button>
      <span className="muted" aria-live="polite" data-testid="compare-hint">
        {picked.length === 0
          ? 'Tick two runs to compare them.'
          : picked.length === 1
            ? '1 run ticked: tick one more to compare.'
            : picked[0].templateId !== picked[1].templateId
              ? '2 runs ticked, of different templates: they can be compared, but they ran different experiments.'
              : '2 runs ticked.'}
      </span>
      {picked.length > 0 && (
        <button type="button" className="link" onClick={onClear}>
          Clear
        </button>
      )}
    </div>
  );
}

export function RunsTable({ runs, picked, onPick }: { runs: RunRow[]; picked?: Picked[]; onPick?(p: Picked[]): void }) {
  const [, navigate] = useLocation();
  const now = useNow(1000, runs.some((r) => !finished(r.status)));
  const isPicked = (id: string) => picked?.some((p) => p.id === id) ?? false;
  const full = (picked?.length ?? 0) >= 2;
  return (
    <table className="runs-table" aria-label="Runs">
      <thead>
        <tr>
          {onPick && (
            <th className="runs-select">
              <span className="sr-only">Compare</span>
            </th>
          )}
          <th>Status</th>
          <th>Run</th>
          <th>Template</th>
          <th>Delegate</th>
          <th>Created by</th>
          <th>Started</th>
          <th>Duration</th>
          <th className="num">Score</th>
          <th className="num">Probes</th>
        </tr>
      </thead>
      <tbody>
        {runs.map((r) => (
          <tr
            key={r.id}
            data-testid="run-row"
            data-run-id={r.id}
            className="clickable"
            onClick={(e) => {
              if (!(e.target as HTMLElement).closest('a, button, input, label, .runs-select')) navigate(`/runs/${r.id}`);
            }}
          >
            {onPick && (
              <td className="runs-select">
                <input
                  type="checkbox"
                  aria-label={`Compare run ${r.id.slice(0, 8)}`}
                  checked={isPicked(r.id)}
                  // Two at most: untick one to pick another.
                  disabled={full && !isPicked(r.id)}
                  onChange={(e) =>
                    onPick(
                      e.target.checked
                        ? [...(picked ?? []), { id: r.id, createdAt: r.createdAt, templateId: r.template.id }]
                        : (picked ?? []).filter((p) => p.id !== r.id),
                    )
                  }
                />
              </td>
            )}
            <td>
              <StatusBadge status={r.status} dryRun={r.dryRun} />
            </td>
            <td>
              <Link href={`/runs/${r.id}`} className="mono" aria-label={`Run ${r.id}`}>
                {r.id.slice(0, 8)}
              </Link>
            </td>
            <td>
              <Link href={`/templates/${r.template.id}`}>{r.template.name}</Link> <span className="muted">v{r.templateVersion}</span>
            </td>
            <td>{r.delegate ? r.delegate.name : <span className="muted">none</span>}</td>
            <td className="ellipsis" title={r.createdBy}>
              {r.schedule ? (
                <Link href={`/schedules/${r.schedule.id}`} data-testid="run-schedule">
                  schedule: {r.schedule.name}
                </Link>
              ) : (
                r.createdBy.replace(/^user:/, '')
              )}
            </td>
            <td>{r.startedAt ? <Ago at={r.startedAt} /> : <span className="muted">not yet</span>}</td>
            <td>{formatRunDuration(runDuration(r.startedAt, r.endedAt, now))}</td>
            <td className="num" data-testid="run-score">
              {r.dryRun ? <span className="muted" title="A dry run applies nothing: no score">–</span> : formatScore(r.resilienceScore)}
            </td>
            <td className="num" data-testid="run-tally" title={`${r.probeTally.failed} failed`}>
              {r.probeTally.total ? `${r.probeTally.passed}/${r.probeTally.total}` : '–'}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/**
 * The delegate filter: a search box whose suggestions the hub finds among the whole fleet (the
 * first 20 names containing what is typed). A suggested name applies at once; anything else typed
 * applies on Enter or when the box loses focus; an empty box means every delegate.
 */
function DelegateFilter({ value, onChange }: { value: string | null; onChange(delegate: string | null): void }) {
  const project = useProject();
  const [text, setText] = useState(value ?? '');
  const [search, setSearch] = useState('');
  // The URL changed (Clear filters, back): show what it says.
  useEffect(() => setText(value ?? ''), [value]);
  useEffect(() => {
    const t = setTimeout(() => setSearch(text.trim()), SUGGEST_MS);
    return () => clearTimeout(t);
  }, [text]);
  const [{ data }] = useQuery({
    query: RunsDelegateSuggestDoc,
    variables: { project: project.name, search: search || null },
  });
  const names = data?.delegates.map((d) => d.name) ?? [];
  const apply = (v: string) => {
    const next = v.trim() || null;
    if (next !== value) onChange(next);
  };
  return (
    <>
      <input
        type="search"
        aria-label="Delegate"
        list="run-delegate-options"
        placeholder="All delegates"
        autoComplete="off"
        value={text}
        onChange={(e) => {
          const v = e.target.value;
          setText(v);
          if (v === '' || names.includes(v)) apply(v);
        }}
        onKeyDown={(e) => {
          if (e.key === 'Enter') apply(text);
        }}
        onBlur={() => apply(text)}
      />
      <datalist id="run-delegate-options" data-testid="delegate-suggestions">
        {names.map((n) => (
          <option key={n} value={n} />
        ))}
      </datalist>
    </>
  );
}
