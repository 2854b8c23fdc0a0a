// Two runs side by side (`/runs/compare?a=<baseline>&b=<candidate>`): verdict, score, recovery
// and each probe's latency and failures before, during and after the faults, with whether B did
// better or worse than A. Lazy-loaded; the numbers come from compare.ts.
import { useEffect, useMemo } from 'react';
import { useQuery } from 'urql';
import { Link, useLocation, useSearch } from 'wouter';
import { graphql } from '../gql';
import type { CompareRunQuery } from '../gql/graphql';
import { Empty, ErrorBox, isNotFound, Loading, StatusBadge, finished } from '../ui';
import {
  PHASES,
  failureDelta,
  formatMs,
  latencyDelta,
  pairNotes,
  probeStats,
  recoveryDelta,
  scoreDelta,
  verdictDelta,
  type Delta,
  type PhaseStats,
  type ProbeStats,
} from './runs/compare';
import { compareHref, parseCompare } from './runs/comparePair';
import { formatRunDuration, formatScore, runDuration } from './runs/time';
import './runs/runs.css';

const CompareRunDoc = graphql(`
  query CompareRun($id: ID!) {
    run(id: $id) {
      id
      status
      templateVersion
      gitCommit
      createdAt
      startedAt
      endedAt
      resilienceScore
      recoveryMs
      reason
      dryRun
      template {
        id
        name
      }
      delegate {
        id
        name
      }
      probeTally {
        passed
        failed
        total
      }
      latency {
        probe
        summary
        significant
      }
      probeResults {
        probe
        phase
        ok
        latencyMs
      }
    }
  }
`);

type Run = CompareRunQuery['run'];

/** How often an unfinished run is read again (its checks so far: heavier than the run view's poll). */
const POLL_MS = 5000;

export default function ComparePage() {
  const search = useSearch();
  const { a, b } = useMemo(() => parseCompare(search), [search]);
  if (!a || !b) {
    return (
      <div className="page compare-page">
        <h1>Compare runs</h1>
        <Empty>
          Choose two runs: tick them on the <Link href="/runs">Runs</Link> page and press Compare, or use “Compare with…” on a
          run’s page.
        </Empty>
      </div>
    );
  }
  // Keyed: another pair is a fresh view.
  return <CompareView key={`${a}|${b}`} a={a} b={b} />;
}

function useRun(id: string) {
  const [{ data, fetching, error }, reexecute] = useQuery({ query: CompareRunDoc, variables: { id } });
  const run = data?.run;
  const live = run ? !finished(run.status) : false;
  useEffect(() => {
    if (!live) return;
    const t = setInterval(() => reexecute({ requestPolicy: 'network-only' }), POLL_MS);
    return () => clearInterval(t);
  }, [live, reexecute]);
  return { run, fetching, error, retry: () => reexecute({ requestPolicy: 'network-only' }) };
}

function CompareView({ a, b }: { a: string; b: string }) {
  const [, navigate] = useLocation();
  const ra = useRun(a);
  const rb = useRun(b);
  const header = (
    <>
      <div className="row">
        <Link href="/runs" className="muted">
          ← Runs
        </Link>
      </div>
      <div className="row">
        <h1>Compare runs</h1>
        <div className="spacer" />
        <button type="button" onClick={() => navigate(compareHref(b, a))} title="Make B the baseline and A the run compared with it">
          Swap A and B
        </button>
      </div>
    </>
  );
  const missing = (
    [
      ['A', a, ra],
      ['B', b, rb],
    ] as const
  ).filter(([, , r]) => !r.run);
  if (missing.some(([, , r]) => r.fetching)) {
    return (
      <div className="page compare-page">
        {header}
        <Loading what="the runs" />
      </div>
    );
  }
  if (missing.length > 0) {
    return (
      <div className="page compare-page">
        {header}
        {missing.map(([k, id, r]) =>
          isNotFound(r.error) ? (
            <div key={k} className="error-box" role="alert">
              Run {k} <span className="mono">{id.length > 12 ? id.slice(0, 8) : id}</span> not found: there is no run with this id in
              this project, or you cannot see it.
            </div>
          ) : (
            <ErrorBox key={k} error={r.error ?? 'No answer from the hub'} retry={r.retry} />
          ),
        )}
      </div>
    );
  }
  return (
    <div className="page compare-page">
      {header}
      <ErrorBox error={ra.error ?? rb.error} />
      <Comparison a={ra.run!} b={rb.run!} />
    </div>
  );
}

/** The comparison of two loaded runs. Exported for tests. */
export function Comparison({ a, b }: { a: Run; b: Run }) {
  const notes = pairNotes(a, b);
  const statsA = useMemo(() => probeStats(a.probeResults), [a.probeResults]);
  const statsB = useMemo(() => probeStats(b.probeResults), [b.probeResults]);
  const probes = useMemo(() => [...new Set([...statsA, ...statsB].map((s) => s.probe))].sort((x, y) => x.localeCompare(y)), [statsA, statsB]);
  return (
    <>
      {notes.sameRun && (
        <div className="warn-box" role="note" data-testid="note-same-run">
          A and B are the same run: every difference is zero.
        </div>
      )}
      {notes.differentTemplates && (
        <div className="warn-box" role="note" data-testid="note-templates">
          These runs are of different templates ({a.template.name} and {b.template.name}): they ran different experiments, so
          the differences below may not mean the service changed.
        </div>
      )}
      {notes.unfinished.length > 0 && (
        <div className="warn-box" role="note" data-testid="note-unfinished">
          Run {notes.unfinished.join(' and ')} {notes.unfinished.length > 1 ? 'have' : 'has'} not finished: its numbers are those
          so far, and refresh every {POLL_MS / 1000} s.
        </div>
      )}
      {notes.dry.length > 0 && (
        <div className="warn-box" role="note" data-testid="note-dry">
          Run {notes.dry.join(' and ')} {notes.dry.length > 1 ? 'are dry runs' : 'is a dry run'}: nothing was applied and no probe
          ran.
        </div>
      )}
      <p className="muted compare-legend">
        B is compared with A (the baseline). ▲ and ▼ show which way a number moved, and the word and colour whether that is{' '}
        <span className="delta-better">better</span> or <span className="delta-worse">worse</span> for the service.
      </p>
      <SummaryTable a={a} b={b} versionChanged={notes.versionChanged} />
      <h2>Latency and failures per probe</h2>
      <p className="muted">
        From each run’s stored checks, by the phase a check started in. Percentiles are of the checks that passed (nearest
        rank); failures are counted apart, as a share of the phase’s checks.
      </p>
      {probes.length === 0 ? (
        <Empty>Neither run recorded a probe check.</Empty>
      ) : (
        probes.map((p) => (
          <ProbeTable
            key={p}
            probe={p}
            a={statsA.find((s) => s.probe === p)}
            b={statsB.find((s) => s.probe === p)}
            verdictA={a.latency.find((l) => l.probe === p)?.summary}
            verdictB={b.latency.find((l) => l.probe === p)?.summary}
          />
        ))
      )}
    </>
  );
}

function RunHead({ run, label }: { run: Run; label: string }) {
  return (
    <th scope="col" className="compare-run">
      <span className="compare-key">{label}</span>{' '}
      <Link href={`/runs/${run.id}`} className="mono" aria-label={`Run ${label} ${run.id}`}>
        {run.id.slice(0, 8)}
      </Link>
    </th>
  );
}

function SummaryTable({ a, b, versionChanged }: { a: Run; b: Run; versionChanged: boolean }) {
  const now = Date.now();
  const templateChange: Delta =
    a.template.id !== b.template.id
      ? { direction: 'none', diff: null, text: 'different templates' }
      : versionChanged
        ? { direction: 'none', diff: null, text: `template changed: v${a.templateVersion} → v${b.templateVersion}` }
        : { direction: 'none', diff: null, text: 'same template version' };
  return (
    <table className="compare-table" aria-label="Summary" data-testid="compare-summary">
      <thead>
        <tr>
          <th scope="col">Measure</th>
          <RunHead run={a} label="A" />
          <RunHead run={b} label="B" />
          <th scope="col">Change (B vs A)</th>
        </tr>
      </thead>
      <tbody>
        <tr data-measure="template">
          <th scope="row">Template</th>
          <td>
            <TemplateCell run={a} />
          </td>
          <td>
            <TemplateCell run={b} />
          </td>
          <td className="muted">{templateChange.text}</td>
        </tr>
        <tr data-measure="verdict">
          <th scope="row">Verdict</th>
          <td>
            <StatusBadge status={a.status} dryRun={a.dryRun} />
          </td>
          <td>
            <StatusBadge status={b.status} dryRun={b.dryRun} />
          </td>
          <DeltaCell d={verdictDelta(a.status, b.status)} />
        </tr>
        <tr data-measure="score">
          <th scope="row">Resilience score</th>
          <td className="num">
            <Score run={a} />
          </td>
          <td className="num">
            <Score run={b} />
          </td>
          <DeltaCell d={scoreDelta(a.resilienceScore, b.resilienceScore)} />
        </tr>
        <tr data-measure="recovery">
          <th scope="row">Recovery time</th>
          <td className="num">{formatMs(a.recoveryMs)}</td>
          <td className="num">{formatMs(b.recoveryMs)}</td>
          <DeltaCell d={recoveryDelta(a.recoveryMs, b.recoveryMs)} />
        </tr>
        <tr data-measure="checks">
          <th scope="row">Probe checks failed</th>
          <td className="num">
            <Tally t={a.probeTally} />
          </td>
          <td className="num">
            <Tally t={b.probeTally} />
          </td>
          <DeltaCell
            d={failureDelta(
              { failed: a.probeTally.failed, checks: a.probeTally.total },
              { failed: b.probeTally.failed, checks: b.probeTally.total },
            )}
          />
        </tr>
        <tr data-measure="delegate">
          <th scope="row">Delegate</th>
          <td>{a.delegate?.name ?? <span className="muted">none</span>}</td>
          <td>{b.delegate?.name ?? <span className="muted">none</span>}</td>
          <td />
        </tr>
        <tr data-measure="started">
          <th scope="row">Started</th>
          <td>{a.startedAt ? new Date(a.startedAt).toLocaleString() : <span className="muted">not yet</span>}</td>
          <td>{b.startedAt ? new Date(b.startedAt).toLocaleString() : <span className="muted">not yet</span>}</td>
          <td />
        </tr>
        <tr data-measure="duration">
          <th scope="row">Took</th>
          <td className="num">{formatRunDuration(runDuration(a.startedAt, a.endedAt, now))}</td>
          <td className="num">{formatRunDuration(runDuration(b.startedAt, b.endedAt, now))}</td>
          <td />
        </tr>
      </tbody>
    </table>
  );
}

function TemplateCell({ run }: { run: Run }) {
  return (
    <>
      <Link href={`/templates/${run.template.id}`}>{run.template.name}</Link> <span className="muted">v{run.templateVersion}</span>
      {run.gitCommit && (
        <span className="muted" title={`Template version synced from git commit ${run.gitCommit}`}>
          {' '}
          @ <code>{run.gitCommit.slice(0, 10)}</code>
        </span>
      )}
    </>
  );
}

/** The score, or why there is none. */
function Score({ run }: { run: Run }) {
  if (run.resilienceScore !== null && run.resilienceScore !== undefined) return <>{formatScore(run.resilienceScore)}</>;
  const why = run.dryRun
    ? 'dry run'
    : !finished(run.status)
      ? 'not finished'
      : run.status === 'ABORTED'
        ? 'aborted'
        : run.status === 'ERROR'
          ? 'ended in error'
          : 'no fault scored';
  return (
    <span className="muted" title={run.reason ?? undefined}>
      — ({why})
    </span>
  );
}

function Tally({ t }: { t: { passed: number; failed: number; total: number } }) {
  if (!t.total) return <span className="muted">no checks</span>;
  return (
    <>
      {t.failed} of {t.total} <span className="muted">({((100 * t.failed) / t.total).toFixed(1)} %)</span>
    </>
  );
}

const ARROW: Record<string, string> = { up: '▲', down: '▼', flat: '=' };

/** A difference: an arrow for its sign and a word for its meaning, both beside the colour. */
function DeltaCell({ d }: { d: Delta }) {
  const way = d.diff === null || d.direction === 'none' ? null : d.direction === 'same' || d.diff === 0 ? 'flat' : d.diff > 0 ? 'up' : 'down';
  const word = d.direction === 'better' ? 'better' : d.direction === 'worse' ? 'worse' : d.direction === 'same' ? 'no change' : null;
  return (
    <td className={`delta delta-${d.direction}`} data-direction={d.direction}>
      {way && (
        <span className="delta-arrow" aria-hidden="true">
          {ARROW[way]}{' '}
        </span>
      )}
      {d.diff === 0 && d.direction === 'same' ? (
        <span className="delta-text">no change</span>
      ) : (
        <>
          <span className="delta-text">{d.text}</span>
          {word && <span className="delta-word"> ({word})</span>}
        </>
      )}
    </td>
  );
}

const PHASE_LABEL: Record<string, string> = {
  before: 'Before the faults',
  during: 'During the faults',
  between: 'Between faults',
  after: 'After the faults',
};

function ProbeTable({
  probe,
  a,
  b,
  verdictA,
  verdictB,
}: {
  probe: string;
  a: ProbeStats | undefined;
  b: ProbeStats | undefined;
  verdictA?: string;
  verdictB?: string;
}) {
  const phases = PHASES.filter((p) => a?.phases[p] || b?.phases[p]);
  return (
    <section className="compare-probe" aria-label={`Probe ${probe}`} data-probe={probe}>
      <h3>{probe}</h3>
      {(verdictA || verdictB) && (
        <ul className="compare-verdicts muted">
          {verdictA && <li>A: {verdictA}</li>}
          {verdictB && <li>B: {verdictB}</li>}
        </ul>
      )}
      <table aria-label={`Latency and failures of ${probe}`}>
        <thead>
          <tr>
            <th scope="col">Phase</th>
            <th scope="col">Measure</th>
            <th scope="col" className="num">
              A
            </th>
            <th scope="col" className="num">
              B
            </th>
            <th scope="col">Change (B vs A)</th>
          </tr>
        </thead>
        <tbody>
          {phases.map((phase) => (
            <PhaseRows key={phase} phase={phase} a={a?.phases[phase]} b={b?.phases[phase]} />
          ))}
        </tbody>
      </table>
    </section>
  );
}

function PhaseRows({ phase, a, b }: { phase: string; a?: PhaseStats; b?: PhaseStats }) {
  const rows: { measure: string; label: string; a: string; b: string; d: Delta }[] = [
    { measure: 'failed', label: 'Failed checks', a: failedText(a), b: failedText(b), d: failureDelta(a, b) },
    ...(['p50', 'p95', 'p99'] as const).map((q) => ({
      measure: q,
      label: `Latency ${q}`,
      a: formatMs(a?.[q]),
      b: formatMs(b?.[q]),
      d: latencyDelta(a?.[q], b?.[q]),
    })),
  ];
  return (
    <>
      {rows.map((r, i) => (
        <tr key={r.measure} data-phase={phase} data-measure={r.measure} className={i === 0 ? 'phase-first' : undefined}>
          {i === 0 && (
            <th scope="rowgroup" rowSpan={rows.length}>
              {PHASE_LABEL[phase] ?? phase}
            </th>
          )}
          <th scope="row">{r.label}</th>
          <td className="num">{r.a}</td>
          <td className="num">{r.b}</td>
          <DeltaCell d={r.d} />
        </tr>
      ))}
    </>
  );
}

function failedText(s: PhaseStats | undefined): string {
  if (!s) return '–';
  return `${s.failed} of ${s.checks} (${((100 * s.failed) / s.checks).toFixed(1)} %)`;
}
