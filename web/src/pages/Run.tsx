// The live run view: header (status, elapsed, abort), the timeline of steps and faults with the
// faults active now, probe checks streaming in, and the verdict once the run has ended.
import { lazy, Suspense, useEffect, useMemo, useState } from 'react';
import { useMutation, useQuery } from 'urql';
import { Link, useLocation } from 'wouter';
import { graphql } from '../gql';
import type { RunViewQuery } from '../gql/graphql';
import { useProject } from '../project';
import { Confirm, Empty, ErrorBox, isNotFound, Loading, NotFound, StatusBadge, finished } from '../ui';
import { CompareWithButton } from './runs/CompareWith';
import { activeFaults, offset, type RunLive } from './runs/events';
import { formatPrecise, formatRunDuration, formatScore, useNow } from './runs/time';
import { useRunEvents } from './runs/useRunEvents';
import './runs/runs.css';

// uPlot and the chart are loaded with the run view's chart, not with the app.
const RunChart = lazy(() => import('./runs/RunChart'));

const RunViewDoc = graphql(`
  query RunView($id: ID!) {
    run(id: $id) {
      id
      status
      templateVersion
      gitCommit
      createdBy
      createdAt
      startedAt
      endedAt
      abortRequestedAt
      resilienceScore
      delegateScore
      recoveryMs
      recoveryFrom {
        event
        path
        what
        atMs
        summary
      }
      reason
      dryRun
      template {
        id
        name
      }
      delegate {
        id
        name
        connected
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
      latency {
        probe
        controlSamples
        chaosSamples
        controlFailed
        chaosFailed
        controlMedianMs
        chaosMedianMs
        shiftMs
        pValue
        significant
        summary
      }
    }
  }
`);

const RunViewAbortDoc = graphql(`
  mutation RunViewAbort($id: ID!, $reason: String) {
    abortRun(id: $id, reason: $reason) {
      id
      status
      abortRequestedAt
    }
  }
`);

const RunAgainDoc = graphql(`
  mutation RunAgain($templateId: ID!, $delegate: String, $dryRun: Boolean!) {
    startRun(templateId: $templateId, delegate: $delegate, dryRun: $dryRun) {
      id
      status
    }
  }
`);

/** How often the run itself (status, tally) is re-read while it is unfinished. */
const POLL_MS = 2000;

type Run = RunViewQuery['run'];

export function RunPage({ id }: { id: string }) {
  // Keyed: another run is a fresh view, with nothing of the previous run's stream or state.
  return <RunView key={id} id={id} />;
}

/** A full run id (a shorter prefix is resolved by the hub's `run(id:)` first). */
const FULL_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function RunView({ id }: { id: string }) {
  const [{ data, fetching, error }, reexecute] = useQuery({ query: RunViewDoc, variables: { id } });
  const run = data?.run;
  // The stream needs the full id: at once from the URL, or once the hub resolved a prefix.
  const { live, error: streamError } = useRunEvents(FULL_ID.test(id) ? id : (run?.id ?? null));
  const done = run ? finished(run.status) : false;

  // Status changes that are no event (dispatched, aborting, a pending timeout) come from polling.
  const loaded = run !== undefined;
  useEffect(() => {
    if (!loaded || done) return;
    const t = setInterval(() => reexecute({ requestPolicy: 'network-only' }), POLL_MS);
    return () => clearInterval(t);
  }, [loaded, done, reexecute]);

  // The final event is in: read the hub's verdict (recomputed score, tally, latency, recovery).
  const ended = live.finished !== null || live.aborted !== null;
  useEffect(() => {
    if (ended) reexecute({ requestPolicy: 'network-only' });
  }, [ended, reexecute]);

  if (!run && fetching) return <Loading what="the run" />;
  if (!run && isNotFound(error)) return <NotFound what="Run" id={id} back="/runs" backLabel="← All runs" />;
  if (!run) {
    return (
      <div className="page">
        <h1>Run</h1>
        <ErrorBox error={error ?? 'No answer from the hub'} retry={() => reexecute({ requestPolicy: 'network-only' })} />
        <Link href="/runs">All runs</Link>
      </div>
    );
  }
  return (
    <div className="page run-page">
      <RunHeader run={run} live={live} />
      {error && <ErrorBox error={error} retry={() => reexecute({ requestPolicy: 'network-only' })} />}
      {streamError && !done && (
        <ErrorBox
          error={
            streamError.networkError || streamError.graphQLErrors.length === 0
              ? `Live updates interrupted, reconnecting… (${streamError.message})`
              : streamError
          }
        />
      )}
      {done && <Verdict run={run} live={live} />}
      {!run.dryRun && (
        <Suspense fallback={<div className="run-chart muted">Loading the chart…</div>}>
          <RunChart live={live} done={done} />
        </Suspense>
      )}
      <div className="run-grid">
        <Timeline live={live} status={run.status} />
        <Probes live={live} status={run.status} />
      </div>
    </div>
  );
}

/** The status to show: the hub's, or ahead of it what the events already say. */
export function shownStatus(status: string, live: RunLive, abortRequested = false): string {
  if (finished(status)) return status;
  if (live.finished) return live.finished.verdict;
  if (abortRequested) return 'ABORTING';
  if ((status === 'PENDING' || status === 'DISPATCHED') && live.startedAt !== null) return 'RUNNING';
  return status;
}

/**
 * When the run started, as the page knows it: its `run.started` event (the timeline's zero),
 * else the hub's start time, else the first event. ms since the epoch, or null.
 */
export function startedAt(run: { startedAt?: string | null }, live: RunLive): number | null {
  if (live.started && live.startedAt !== null) return live.startedAt;
  const hub = run.startedAt ? Date.parse(run.startedAt) : NaN;
  if (Number.isFinite(hub)) return hub;
  return live.startedAt;
}

/**
 * How long the run has taken: to its end, else to now, but never less than its latest event
 * (the header keeps up with the timeline even when this browser's clock is behind the delegate's).
 */
export function elapsed(run: { startedAt?: string | null; endedAt?: string | null }, live: RunLive, now: number): number | null {
  const start = startedAt(run, live);
  if (start === null) return null;
  const ended = run.endedAt ? Date.parse(run.endedAt) : NaN;
  const end = Number.isFinite(ended) ? ended : Math.max(now, live.lastAt ?? now);
  return Math.max(0, end - start);
}

function RunHeader({ run, live }: { run: Run; live: RunLive }) {
  // The abort mutation answers ABORTING at once; show it before the next poll.
  const [abortRequested, setAbortRequested] = useState(false);
  const status = shownStatus(run.status, live, abortRequested || !!run.abortRequestedAt);
  const done = finished(run.status);
  const now = useNow(250, !done);
  const took = elapsed(run, live, now);
  return (
    <header className="run-header">
      <div className="row">
        <Link href="/runs" className="muted">
          ← Runs
        </Link>
      </div>
      <div className="row">
        <h1>
          <Link href={`/templates/${run.template.id}`}>{run.template.name}</Link>{' '}
          <span className="muted">v{run.templateVersion}</span>
          {run.gitCommit && (
            <span className="muted run-commit" title={`Template version synced from git commit ${run.gitCommit}`}>
              {' '}
              @ <code>{run.gitCommit.slice(0, 10)}</code>
            </span>
          )}
        </h1>
        <span data-testid="run-status">
          <StatusBadge status={status} dryRun={run.dryRun} />
        </span>
        <div className="spacer" />
        <CompareWithButton run={run} />
        <ReportLinks run={run} />
        <RunAgainButton run={run} />
        <AbortButton run={run} aborting={status === 'ABORTING'} onAborted={() => setAbortRequested(true)} />
      </div>
      <dl className="run-facts">
        <div>
          <dt>Delegate</dt>
          <dd>
            {run.delegate ? run.delegate.name : <span className="muted">none</span>}
            {run.delegate && !run.delegate.connected && !done && <span className="muted"> (offline)</span>}
          </dd>
        </div>
        <div>
          <dt>Created by</dt>
          <dd>
            {run.schedule ? (
              <Link href={`/schedules/${run.schedule.id}`} data-testid="run-schedule">
                schedule: {run.schedule.name}
              </Link>
            ) : (
              run.createdBy.replace(/^user:/, '')
            )}
          </dd>
        </div>
        <div>
          <dt>{done ? 'Took' : 'Elapsed'}</dt>
          <dd data-testid="elapsed">
            {took !== null ? formatRunDuration(took) : <span className="muted">not started</span>}
          </dd>
        </div>
        <div>
          <dt>Run</dt>
          <dd className="mono">{run.id}</dd>
        </div>
      </dl>
      {done && run.reason && (
        <p className="run-reason" data-testid="reason">
          <strong>Reason:</strong> {run.reason}
        </p>
      )}
      {!done && (status === 'PENDING' || status === 'DISPATCHED') && (
        <p className="muted" data-testid="waiting">
          {status === 'PENDING'
            ? `Waiting for delegate ${run.delegate?.name ?? ''} to take the run.`
            : `Sent to delegate ${run.delegate?.name ?? ''}: waiting for it to start.`}
        </p>
      )}
      {!done && status === 'ABORTING' && (
        <p className="muted">Abort requested: waiting for the delegate to revert every fault.</p>
      )}
    </header>
  );
}

/**
 * The run's report, served by the hub (`GET /runs/{id}/report`, the session cookie goes along):
 * the printable page in a new tab, or the PDF as a download. Plain links, outside the app's
 * router: the report is a document of its own, with no script.
 */
export function ReportLinks({ run }: { run: { id: string } }) {
  const href = `/runs/${encodeURIComponent(run.id)}/report`;
  return (
    <>
      <a
        className="button"
        href={href}
        target="_blank"
        rel="noopener noreferrer"
        data-testid="report-link"
        title="The run's report: a self-contained, printable page to share (opens in a new tab)"
      >
        Report
      </a>
      <a
        className="button"
        href={`${href}?format=pdf`}
        download={`faultline-run-${run.id.slice(0, 8)}.pdf`}
        data-testid="report-pdf"
        title="The run's report as a PDF"
      >
        PDF
      </a>
    </>
  );
}

/** Starts the same template (its latest version) on the same delegate, and opens that run. */
function RunAgainButton({ run }: { run: Run }) {
  const project = useProject();
  const [, navigate] = useLocation();
  const [state, start] = useMutation(RunAgainDoc);
  if (!project.can('EDITOR')) return null;
  return (
    <>
      <button
        type="button"
        disabled={state.fetching}
        title={`Run ${run.template.name} again${run.delegate ? ` on ${run.delegate.name}` : ''}${run.dryRun ? ' (a dry run)' : ''}`}
        onClick={() => {
          void start(
            { templateId: run.template.id, delegate: run.delegate?.name, dryRun: run.dryRun },
            { additionalTypenames: ['Run'] },
          ).then((r) => {
            if (r.data) navigate(`/runs/${r.data.startRun.id}`);
          });
        }}
      >
        {state.fetching ? 'Starting…' : 'Run again'}
      </button>
      {state.error && <ErrorBox error={state.error} />}
    </>
  );
}

function AbortButton({ run, aborting, onAborted }: { run: Run; aborting: boolean; onAborted(): void }) {
  const project = useProject();
  const [open, setOpen] = useState(false);
  const [reason, setReason] = useState('');
  const [state, abort] = useMutation(RunViewAbortDoc);
  if (finished(run.status) || !project.can('EDITOR')) return null;
  return (
    <>
      <button
        type="button"
        className="danger"
        onClick={() => setOpen(true)}
        disabled={aborting}
        title={aborting ? 'Abort requested' : 'Abort the run: the delegate reverts every fault at once'}
      >
        Abort
      </button>
      {open && (
        <Confirm
          title="Abort this run?"
          confirmLabel="Abort run"
          danger
          busy={state.fetching}
          onCancel={() => setOpen(false)}
          onConfirm={() => {
            void abort({ id: run.id, reason: reason.trim() || null }, { additionalTypenames: ['Run'] }).then((r) => {
              if (!r.error) {
                setOpen(false);
                onAborted();
              }
            });
          }}
        >
          <p>The delegate reverts every fault at once and the run ends as ABORTED.</p>
          <label>
            Reason (optional)
            <input value={reason} onChange={(e) => setReason(e.target.value)} placeholder="e.g. customer impact" autoFocus />
          </label>
          <ErrorBox error={state.error} />
        </Confirm>
      )}
    </>
  );
}

function Verdict({ run, live }: { run: Run; live: RunLive }) {
  const score = run.resilienceScore ?? live.finished?.score ?? null;
  const recovery = run.recoveryMs ?? live.recoveryMs;
  const tally = run.probeTally.total ? run.probeTally : live.checks;
  const mismatch =
    run.delegateScore !== null &&
    run.delegateScore !== undefined &&
    run.resilienceScore !== null &&
    run.resilienceScore !== undefined &&
    Math.abs(run.delegateScore - run.resilienceScore) >= 0.05;
  return (
    <section className="panel verdict" aria-label="Verdict">
      <div className="stats">
        <div className="stat">
          <div className="label">Verdict</div>
          <div className="value">
            <StatusBadge status={run.status} dryRun={run.dryRun} />
          </div>
        </div>
        {run.dryRun ? (
          <p className="muted">A dry run resolves the faults and lists their targets: nothing was applied, no probe ran.</p>
        ) : (
          <>
            <div className="stat">
              <div className="label">Resilience score</div>
              <div className="value" data-testid="score">
                <ScoreValue run={run} live={live} score={score} />
              </div>
            </div>
            <div className="stat">
              <div className="label">Recovery time</div>
              <div className="value" data-testid="recovery">
                {recovery !== null && recovery !== undefined ? formatPrecise(recovery) : '–'}
                {recovery !== null && recovery !== undefined && run.recoveryFrom && (
                  <span className="stat-sub" data-testid="recovery-from">
                    {' '}
                    {run.recoveryFrom.summary}
                  </span>
                )}
              </div>
            </div>
            <div className="stat">
              <div className="label">Probe checks passed</div>
              <div className="value">
                <span data-testid="tally">
                  {tally.passed}/{tally.total}
                </span>
                {tally.failed > 0 && <span className="stat-sub"> {tally.failed} failed</span>}
              </div>
            </div>
          </>
        )}
      </div>
      {mismatch && (
        <div className="warn-box" role="alert" data-testid="score-mismatch">
          The delegate computed a score of {formatScore(run.delegateScore)}, the hub {formatScore(run.resilienceScore)} from
          the stored checks: some checks may be missing.
        </div>
      )}
      {run.latency.length > 0 && (
        <>
          <h3>Latency under chaos</h3>
          <table className="latency-table" data-testid="latency">
            <thead>
              <tr>
                <th>Probe</th>
                <th className="num">Before (median)</th>
                <th className="num">During (median)</th>
                <th className="num">Shift</th>
                <th className="num">p</th>
                <th>Verdict</th>
              </tr>
            </thead>
            <tbody>
              {run.latency.map((l) => (
                <tr key={l.probe}>
                  <td>{l.probe}</td>
                  <td className="num">{fmtMs(l.controlMedianMs)} <span className="muted">n={l.controlSamples}</span></td>
                  <td className="num">
                    {fmtMs(l.chaosMedianMs)} <span className="muted">n={l.chaosSamples}</span>
                    {l.chaosFailed > 0 && <span className="muted"> ({l.chaosFailed} failed)</span>}
                  </td>
                  <td className="num">{l.shiftMs !== null && l.shiftMs !== undefined ? `${l.shiftMs > 0 ? '+' : ''}${fmtMs(l.shiftMs)}` : '–'}</td>
                  <td className="num">{l.pValue !== null && l.pValue !== undefined ? (l.pValue < 0.001 ? '< 0.001' : l.pValue.toFixed(3)) : '–'}</td>
                  <td>
                    <LatencyBadge significant={l.significant} measured={l.pValue !== null && l.pValue !== undefined} />{' '}
                    <span className="muted">{l.summary}</span>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </section>
  );
}

/**
 * The score, or why there is none: an aborted or errored run measured less than it promised
 * ("—, aborted at steps[0]"); a steady-state check has no fault to score ("n/a").
 */
function ScoreValue({ run, live, score }: { run: Run; live: RunLive; score: number | null }) {
  if (score !== null || !finished(run.status)) return <>{formatScore(score)}</>;
  if (run.status === 'ABORTED' || run.status === 'ERROR') {
    // Where the method was when it stopped: the last fault or action it had started.
    const last = live.faults.filter((f) => !f.planned).at(-1)?.path;
    const word = run.status === 'ABORTED' ? 'aborted' : 'ended in error';
    return (
      <span title="A run that did not measure what it promised has no score; it keeps its checks and tallies">
        —, {word}
        {last ? ` at ${last}` : ' before the faults'}
      </span>
    );
  }
  return <span title="No check counted for a fault: a steady-state check (no fault) has a verdict and no score">n/a</span>;
}

function LatencyBadge({ significant, measured }: { significant: boolean; measured: boolean }) {
  if (!measured) return <span className="badge badge-wait">no verdict</span>;
  return significant ? (
    <span className="badge badge-warn">significant shift</span>
  ) : (
    <span className="badge badge-ok">no significant change</span>
  );
}

function fmtMs(v: number | null | undefined): string {
  if (v === null || v === undefined) return '–';
  return `${Math.abs(v) < 10 ? v.toFixed(1) : Math.round(v)} ms`;
}

function Timeline({ live, status }: { live: RunLive; status: string }) {
  const done = finished(status);
  // A run ends only after its delegate reverted every fault, even if those events are still
  // on their way to this page.
  const active = done ? [] : activeFaults(live);
  return (
    <section className="panel timeline-panel" aria-label="Timeline">
      <h2>Faults active now</h2>
      <div data-testid="active-faults" className="active-faults" aria-live="polite">
        {active.length === 0 ? (
          <span className="muted">{done ? 'None: the run has ended.' : 'None'}</span>
        ) : (
          active.map((f) => (
            <span key={f.step} className="fault-chip" data-step={f.step}>
              <strong>{f.fault}</strong> {f.path && <span className="mono">{f.path}</span>}{' '}
              <span className="muted">since {offset(f.appliedAt, live.startedAt)}</span>
            </span>
          ))
        )}
      </div>
      <h2>Timeline</h2>
      {live.timeline.length === 0 ? (
        <Empty>{done ? 'This run recorded no events.' : 'No events yet.'}</Empty>
      ) : (
        <ol className="timeline" data-testid="timeline">
          {live.timeline.map((t) => (
            <li key={t.seq + t.kind} className={`tl-${t.tone}`} data-kind={t.kind}>
              <span className="tl-at mono" title={new Date(t.at).toLocaleString()}>
                {offset(t.at, live.startedAt)}
              </span>
              <span className="tl-body">
                <span className="tl-title">{t.title}</span>
                {t.detail && <span className="tl-detail muted">{t.detail}</span>}
              </span>
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}

function Probes({ live, status }: { live: RunLive; status: string }) {
  const probes = useMemo(() => Object.values(live.probes).sort((a, b) => a.probe.localeCompare(b.probe)), [live.probes]);
  const done = finished(status);
  return (
    <section className="panel probes-panel" aria-label="Probes">
      <div className="row">
        <h2>Probes</h2>
        <div className="spacer" />
        <span className="muted" data-testid="live-tally">
          {live.checks.passed} passed · {live.checks.failed} failed · {live.checks.total} checks
        </span>
      </div>
      {probes.length === 0 ? (
        <Empty>{done ? 'No probe checks were recorded.' : 'No probe checks yet.'}</Empty>
      ) : (
        <>
          <table className="probe-summary" data-testid="probe-summary">
            <thead>
              <tr>
                <th>Probe</th>
                <th>Mode</th>
                <th className="num">Passed</th>
                <th className="num">Failed</th>
                <th className="num">Last latency</th>
                <th>Last</th>
              </tr>
            </thead>
            <tbody>
              {probes.map((p) => (
                <tr key={p.probe} data-probe={p.probe}>
                  <td>{p.probe}</td>
                  <td className="muted">{p.mode || '–'}</td>
                  <td className="num">{p.passed}</td>
                  <td className="num">{p.failed}</td>
                  <td className="num">{p.lastLatencyMs.toFixed(1)} ms</td>
                  <td>
                    <OkBadge ok={p.lastOk} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          <h3>
            Checks <span className="muted">(newest first{live.checks.total > live.feed.length ? `, last ${live.feed.length}` : ''})</span>
          </h3>
          <div className="probe-feed" data-testid="probe-feed">
            <table>
              <thead>
                <tr>
                  <th>At</th>
                  <th>Probe</th>
                  <th>Result</th>
                  <th className="num">Latency</th>
                  <th>Phase</th>
                  <th>Detail</th>
                </tr>
              </thead>
              <tbody>
                {live.feed.map((c) => (
                  <tr key={c.seq} data-testid="probe-row" data-ok={c.ok}>
                    <td className="mono" title={new Date(c.at).toLocaleTimeString()}>
                      {offset(c.at, live.startedAt)}
                    </td>
                    <td>{c.probe}</td>
                    <td>
                      <OkBadge ok={c.ok} />
                    </td>
                    <td className="num">{c.latencyMs.toFixed(1)} ms</td>
                    <td>{c.phase}</td>
                    <td className="ellipsis muted" title={c.detail}>
                      {c.detail}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
    </section>
  );
}

function OkBadge({ ok }: { ok: boolean }) {
  return <span className={ok ? 'badge badge-ok' : 'badge badge-bad'}>{ok ? 'pass' : 'fail'}</span>;
}
