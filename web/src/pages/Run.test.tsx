import { fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import { describe, expect, it, vi } from 'vitest';
import { CombinedError } from 'urql';
import { GraphQLError } from 'graphql';
import { elapsed, RunPage, shownStatus } from './Run';
import { applyEvents, initialRunLive, type RunLive } from './runs/events';
import { mockClient, opName, renderWith } from './runs/testing';

// uPlot needs a real browser (the e2e draws it); here the chart shows what it was given.
vi.mock('./runs/RunChart', () => ({
  default: ({ live }: { live: RunLive }) => <div data-testid="run-chart" data-checks={live.checkLog?.size ?? 0} />,
}));

const ID = 'cccccccc-3333-4333-8333-333333333333';
const start = Date.now() - 6000;
const at = (ms: number) => new Date(start + ms).toISOString();

function run(over: Record<string, unknown> = {}) {
  return {
    id: ID,
    status: 'RUNNING',
    templateVersion: 2,
    gitCommit: null,
    createdBy: 'user:ana@example.com',
    createdAt: at(-500),
    startedAt: at(0),
    endedAt: null,
    abortRequestedAt: null,
    resilienceScore: null,
    delegateScore: null,
    recoveryMs: null,
    recoveryFrom: null,
    reason: null,
    dryRun: false,
    template: { id: 't1', name: 'web-survives-kill' },
    delegate: { id: 'd1', name: 'edge-1', connected: true },
    schedule: null,
    probeTally: { passed: 0, failed: 0, total: 0 },
    latency: [],
    ...over,
  };
}

const check = (seq: number, ms: number, ok: boolean, phase: string, latencyMs: number) => ({
  seq,
  at: at(ms),
  kind: 'probe.check',
  payload: { probe: 'web-ok', ok, phase, latencyMs, mode: 'continuous', attempts: 1, detail: ok ? '200 OK' : 'connection refused', step: 0 },
});

const events = [
  { seq: 1, at: at(0), kind: 'run.started', payload: { template: 'web-survives-kill', version: 2 } },
  check(2, 100, true, 'before', 2.5),
  check(3, 350, true, 'before', 3.5),
  { seq: 4, at: at(2000), kind: 'fault.applied', payload: { step: 0, path: 'steps[0]', fault: 'process-kill', detail: 'SIGKILL to pid 42' } },
  check(5, 2100, false, 'during', 0.3),
  check(5, 2100, false, 'during', 0.3), // a repeat: shown once
  check(6, 2350, false, 'during', 0.2),
];

describe('RunPage', () => {
  it('streams the run: header, timeline, active faults, probe feed newest first', async () => {
    const { client } = mockClient({ RunView: { run: run() } }, events);
    render(renderWith(<RunPage id={ID} />, { client, role: 'EDITOR' }).tree);
    expect(within(screen.getByTestId('run-status')).getByText('RUNNING')).toBeTruthy();
    expect(screen.getByRole('link', { name: 'web-survives-kill' }).getAttribute('href')).toBe('/templates/t1');
    expect(screen.getByTestId('elapsed').textContent).toMatch(/^\d+ s$/);
    const rows = await screen.findAllByTestId('probe-row');
    expect(rows).toHaveLength(4);
    expect(rows.map((r) => r.getAttribute('data-ok'))).toEqual(['false', 'false', 'true', 'true']);
    expect(within(rows[0]).getByText('0.2 ms')).toBeTruthy();
    expect(within(rows[0]).getByText('during')).toBeTruthy();
    expect(screen.getByTestId('active-faults').textContent).toContain('process-kill');
    expect(screen.getByTestId('live-tally').textContent).toBe('2 passed · 2 failed · 4 checks');
    const timeline = within(screen.getByTestId('timeline'));
    expect(timeline.getByText('Applied process-kill (steps[0])')).toBeTruthy();
    expect(timeline.getByText('+2.0 s')).toBeTruthy();
    expect(screen.getByRole('button', { name: 'Abort' })).toBeTruthy();
  });

  it('links the run report: the page in a new tab and the PDF as a download, by the full id', async () => {
    // Opened by an 8-character prefix: the links name the run's full id, which the hub resolved.
    const { client } = mockClient({ RunView: { run: run() } }, events);
    render(renderWith(<RunPage id={ID.slice(0, 8)} />, { client, role: 'VIEWER' }).tree);
    const report = await screen.findByRole('link', { name: 'Report' });
    expect(report.getAttribute('href')).toBe(`/runs/${ID}/report`);
    expect(report.getAttribute('target')).toBe('_blank');
    expect(report.getAttribute('rel')).toContain('noopener');
    const pdf = screen.getByRole('link', { name: 'PDF' });
    expect(pdf.getAttribute('href')).toBe(`/runs/${ID}/report?format=pdf`);
    expect(pdf.getAttribute('download')).toBe('faultline-run-cccccccc.pdf');
  });

  it('shows the git commit of its template version', async () => {
    const { client } = mockClient({ RunView: { run: run({ gitCommit: '0123456789abcdef' }) } }, events);
    render(renderWith(<RunPage id={ID} />, { client, role: 'EDITOR' }).tree);
    const code = await screen.findByText('0123456789');
    expect(code.closest('.run-commit')?.getAttribute('title')).toContain('0123456789abcdef');
  });

  it('hides Abort from viewers', async () => {
    const { client } = mockClient({ RunView: { run: run() } }, events);
    render(renderWith(<RunPage id={ID} />, { client, role: 'VIEWER' }).tree);
    await screen.findAllByTestId('probe-row');
    expect(screen.queryByRole('button', { name: 'Abort' })).toBeNull();
  });

  it('aborts after confirming, with the reason, and shows ABORTING at once', async () => {
    const { client, ops } = mockClient(
      { RunView: { run: run() }, RunViewAbort: { abortRun: { id: ID, status: 'ABORTING', abortRequestedAt: at(3000) } } },
      events,
    );
    render(renderWith(<RunPage id={ID} />, { client, role: 'EDITOR' }).tree);
    fireEvent.click(screen.getByRole('button', { name: 'Abort' }));
    const dialog = screen.getByRole('dialog', { name: 'Abort this run?' });
    fireEvent.change(within(dialog).getByLabelText('Reason (optional)'), { target: { value: 'customer impact' } });
    fireEvent.click(within(dialog).getByRole('button', { name: 'Abort run' }));
    await screen.findByText(/Abort requested/);
    expect(screen.queryByRole('dialog')).toBeNull();
    expect(ops.find((o) => opName(o) === 'RunViewAbort')?.variables).toEqual({ id: ID, reason: 'customer impact' });
    expect(within(screen.getByTestId('run-status')).getByText('ABORTING')).toBeTruthy();
  });

  it('shows the verdict of a finished run: score, tally, recovery, latency, reason, a score mismatch', async () => {
    const done = run({
      status: 'PASSED',
      endedAt: at(8200),
      resilienceScore: 73.66,
      delegateScore: 70,
      recoveryMs: 1249,
      recoveryFrom: { event: 'fault.applied', path: 'steps[0]', what: 'process-kill', atMs: 2000, summary: 'after process-kill (steps[0]) at +2.0 s' },
      reason: 'recovered in 1249ms',
      probeTally: { passed: 22, failed: 7, total: 29 },
      latency: [
        { probe: 'web-ok', controlSamples: 8, chaosSamples: 8, controlFailed: 0, chaosFailed: 3, controlMedianMs: 2, chaosMedianMs: 214, shiftMs: 212, pValue: 0.0004, significant: true, summary: 'latency rose from 2 ms to 214 ms, p < 0.001' },
      ],
    });
    const { client } = mockClient({ RunView: { run: done } }, events);
    render(renderWith(<RunPage id={ID} />, { client, role: 'EDITOR' }).tree);
    expect(screen.getByTestId('score').textContent).toBe('73.7');
    expect(screen.getByTestId('tally').textContent).toBe('22/29');
    expect(screen.getByTestId('recovery').textContent).toBe('1.2 s after process-kill (steps[0]) at +2.0 s');
    expect(screen.getByTestId('latency').textContent).toContain('(3 failed)');
    expect(screen.getByTestId('reason').textContent).toContain('recovered in 1249ms');
    expect(screen.getByTestId('elapsed').textContent).toBe('8 s');
    expect(screen.getByTestId('latency').textContent).toContain('latency rose from 2 ms to 214 ms');
    expect(screen.getByTestId('score-mismatch').textContent).toContain('70.0');
    expect(screen.queryByRole('button', { name: 'Abort' })).toBeNull();
  });

  it('gives an aborted run no score and says where it stopped; a steady-state check n/a', async () => {
    const aborted = run({ status: 'ABORTED', endedAt: at(3000), reason: 'enough', probeTally: { passed: 2, failed: 2, total: 4 } });
    const { client } = mockClient({ RunView: { run: aborted } }, events);
    render(renderWith(<RunPage id={ID} />, { client, role: 'VIEWER' }).tree);
    await screen.findAllByTestId('probe-row');
    await waitFor(() => expect(screen.getByTestId('score').textContent).toBe('—, aborted at steps[0]'));
    expect(screen.getByTestId('tally').textContent).toBe('2/4');

    const plain = run({ status: 'PASSED', endedAt: at(3000), probeTally: { passed: 2, failed: 0, total: 2 } });
    const second = mockClient({ RunView: { run: plain } }, []);
    render(renderWith(<RunPage id={ID} />, { client: second.client, role: 'VIEWER' }).tree);
    expect(screen.getAllByTestId('score').at(-1)?.textContent).toBe('n/a');
  });

  it('shows the error when the run cannot be read', () => {
    const { client } = mockClient({ RunView: new Error('[GraphQL] run not found') });
    render(renderWith(<RunPage id={ID} />, { client }).tree);
    expect(screen.getByRole('alert').textContent).toContain('run not found');
  });
});

describe('RunPage, more', () => {
  it('draws the chart from every check', async () => {
    const { client } = mockClient({ RunView: { run: run() } }, events);
    render(renderWith(<RunPage id={ID} />, { client, role: 'VIEWER' }).tree);
    const chart = await screen.findByTestId('run-chart');
    await waitFor(() => expect(chart.getAttribute('data-checks')).toBe('4'));
  });

  it('follows the events while the hub still says PENDING: RUNNING, no waiting line, elapsed from run.started', async () => {
    const { client } = mockClient({ RunView: { run: run({ status: 'PENDING', startedAt: null }) } }, events);
    render(renderWith(<RunPage id={ID} />, { client, role: 'VIEWER' }).tree);
    await screen.findAllByTestId('probe-row');
    expect(within(screen.getByTestId('run-status')).getByText('RUNNING')).toBeTruthy();
    expect(screen.queryByTestId('waiting')).toBeNull();
    expect(screen.getByTestId('elapsed').textContent).toMatch(/^[6-9] s$/); // run.started was 6 s ago
  });

  it('says it waits for the delegate while no event has come', () => {
    const { client } = mockClient({ RunView: { run: run({ status: 'PENDING', startedAt: null }) } }, []);
    render(renderWith(<RunPage id={ID} />, { client, role: 'VIEWER' }).tree);
    expect(screen.getByTestId('waiting').textContent).toBe('Waiting for delegate edge-1 to take the run.');
    expect(screen.getByTestId('elapsed').textContent).toBe('not started');
  });

  it('links a scheduled run to its schedule; a run no delegate took shows none', () => {
    const failed = run({
      status: 'ERROR',
      startedAt: null,
      endedAt: at(0),
      createdBy: 'schedule:nightly',
      reason: 'no delegate matches env=web',
      delegate: null,
      schedule: { id: 's1', name: 'nightly' },
    });
    const { client } = mockClient({ RunView: { run: failed } }, []);
    render(renderWith(<RunPage id={ID} />, { client, role: 'VIEWER' }).tree);
    expect(screen.getByTestId('run-schedule').getAttribute('href')).toBe('/schedules/s1');
    expect(screen.getByTestId('run-schedule').textContent).toBe('schedule: nightly');
    expect(screen.getByText('none')).toBeTruthy();
    expect(screen.queryByTestId('waiting')).toBeNull();
  });

  it('shows a dry run as PLANNED, with no score and no chart', () => {
    const dry = run({ status: 'PASSED', dryRun: true, endedAt: at(300), resilienceScore: 100 });
    const { client } = mockClient({ RunView: { run: dry } }, []);
    render(renderWith(<RunPage id={ID} />, { client, role: 'VIEWER' }).tree);
    expect(within(screen.getByTestId('run-status')).getByText('PLANNED')).toBeTruthy();
    expect(screen.queryByText('PASSED')).toBeNull();
    expect(screen.getAllByText('dry run').length).toBeGreaterThan(0);
    expect(screen.queryByTestId('score')).toBeNull();
    expect(screen.queryByTestId('run-chart')).toBeNull();
  });

  it('says a missing run is not found, with a way back, not the raw error', () => {
    const notFound = new CombinedError({ graphQLErrors: [new GraphQLError('run 1234abcd not found', { extensions: { code: 'NOT_FOUND' } })] });
    const { client } = mockClient({ RunView: notFound });
    render(renderWith(<RunPage id="1234abcd" />, { client }).tree);
    expect(screen.getByRole('heading').textContent).toBe('Run 1234abcd not found');
    expect(screen.getByRole('link', { name: '← All runs' }).getAttribute('href')).toBe('/runs');
    expect(screen.queryByText(/NOT_FOUND/)).toBeNull();
  });

  it('runs again: the same template on the same delegate, then opens the new run', async () => {
    const NEW = 'eeeeeeee-5555-4555-8555-555555555555';
    const { client, ops } = mockClient(
      { RunView: { run: run({ status: 'FAILED', endedAt: at(5000) }) }, RunAgain: { startRun: { id: NEW, status: 'PENDING' } } },
      events,
    );
    const { tree, location } = renderWith(<RunPage id={ID} />, { client, role: 'EDITOR', path: `/runs/${ID}` });
    render(tree);
    fireEvent.click(screen.getByRole('button', { name: 'Run again' }));
    await waitFor(() => expect(location.history?.at(-1)).toBe(`/runs/${NEW}`));
    expect(ops.find((o) => opName(o) === 'RunAgain')?.variables).toEqual({ templateId: 't1', delegate: 'edge-1', dryRun: false });
  });

  it('offers Run again only to editors and owners', () => {
    const { client } = mockClient({ RunView: { run: run({ status: 'PASSED', endedAt: at(5000) }) } }, events);
    render(renderWith(<RunPage id={ID} />, { client, role: 'VIEWER' }).tree);
    expect(screen.queryByRole('button', { name: 'Run again' })).toBeNull();
  });
});

describe('Compare with…', () => {
  const cand = (id: string, createdAt: string, status: string, over: Record<string, unknown> = {}) => ({
    id,
    status,
    createdAt,
    dryRun: false,
    templateVersion: 2,
    resilienceScore: status === 'PASSED' || status === 'FAILED' ? 80 : null,
    ...over,
  });
  const PREV = 'dddddddd-4444-4444-8444-444444444444';
  const NEXT = 'ffffffff-6666-4666-8666-666666666666';
  const candidates = {
    later: [cand(NEXT, at(60_000), 'PASSED'), cand(ID, at(-500), 'RUNNING')],
    earlier: [
      cand('aaaaaaaa-0000-4000-8000-000000000001', at(-60_000), 'ABORTED'),
      cand('aaaaaaaa-0000-4000-8000-000000000002', at(-120_000), 'PASSED', { dryRun: true }),
      cand(PREV, at(-180_000), 'FAILED', { templateVersion: 1 }),
    ],
  };

  it('offers the template’s other runs, defaults to the previous finished one, and opens the comparison', () => {
    const { client, ops } = mockClient({ RunView: { run: run() }, CompareCandidates: candidates }, events);
    const { tree, location } = renderWith(<RunPage id={ID} />, { client, role: 'VIEWER', path: `/runs/${ID}` });
    render(tree);
    expect(ops.some((o) => opName(o) === 'CompareCandidates')).toBe(false); // only asked once opened
    fireEvent.click(screen.getByRole('button', { name: 'Compare with…' }));
    const dialog = within(screen.getByRole('dialog', { name: 'Compare with another run' }));
    expect(ops.find((o) => opName(o) === 'CompareCandidates')?.variables).toEqual({ project: 'default', templateId: 't1', at: at(-500) });
    const select = dialog.getByLabelText('Run to compare with') as HTMLSelectElement;
    // Not this run itself; newest first; the aborted and the dry run are skipped for the default.
    expect([...select.options].map((o) => o.value)).toEqual([NEXT, candidates.earlier[0].id, candidates.earlier[1].id, PREV]);
    expect(select.value).toBe(PREV);
    expect(select.selectedOptions[0].textContent).toMatch(/^dddddddd · FAILED · v1 · score 80\.0 · .* \(previous finished\)$/);
    fireEvent.click(dialog.getByRole('button', { name: 'Compare' }));
    expect(location.history!.at(-1)).toBe(`/runs/compare?a=${PREV}&b=${ID}`);
  });

  it('puts a newer run chosen as B, this one as the baseline', () => {
    const { client } = mockClient({ RunView: { run: run() }, CompareCandidates: candidates }, events);
    const { tree, location } = renderWith(<RunPage id={ID} />, { client, path: `/runs/${ID}` });
    render(tree);
    fireEvent.click(screen.getByRole('button', { name: 'Compare with…' }));
    const dialog = within(screen.getByRole('dialog'));
    fireEvent.change(dialog.getByLabelText('Run to compare with'), { target: { value: NEXT } });
    fireEvent.click(dialog.getByRole('button', { name: 'Compare' }));
    expect(location.history!.at(-1)).toBe(`/runs/compare?a=${ID}&b=${NEXT}`);
  });

  it('says so when the template has no other run', () => {
    const { client } = mockClient({ RunView: { run: run() }, CompareCandidates: { later: [cand(ID, at(-500), 'RUNNING')], earlier: [] } }, events);
    render(renderWith(<RunPage id={ID} />, { client, path: `/runs/${ID}` }).tree);
    fireEvent.click(screen.getByRole('button', { name: 'Compare with…' }));
    const dialog = within(screen.getByRole('dialog'));
    expect(dialog.getByText('No other run of web-survives-kill yet.')).toBeTruthy();
    expect((dialog.getByRole('button', { name: 'Compare' }) as HTMLButtonElement).disabled).toBe(true);
  });
});

describe('elapsed', () => {
  const started = applyEvents(initialRunLive(), [
    { seq: 1, at: at(0), kind: 'run.started', payload: {} },
    { seq: 2, at: at(4000), kind: 'probe.check', payload: { probe: 'p', ok: true, phase: 'before', latencyMs: 1 } },
  ]);
  it('counts from run.started, not the hub time, and never trails the latest event', () => {
    const t0 = Date.parse(at(0));
    expect(elapsed({ startedAt: at(1500) }, started, t0 + 6000)).toBe(6000);
    // This browser's clock is behind the delegate's: the header still shows the 4 s the timeline shows.
    expect(elapsed({ startedAt: null }, started, t0 + 1000)).toBe(4000);
    expect(elapsed({ startedAt: at(0), endedAt: at(9000) }, started, t0 + 60_000)).toBe(9000);
    expect(elapsed({ startedAt: null }, initialRunLive(), t0)).toBeNull();
  });
});

describe('shownStatus', () => {
  it('runs ahead of the hub with what the events say', () => {
    const started = applyEvents(initialRunLive(), [events[0]]);
    expect(shownStatus('DISPATCHED', started)).toBe('RUNNING');
    expect(shownStatus('RUNNING', started, true)).toBe('ABORTING');
    const ended = applyEvents(started, [{ seq: 9, at: at(9000), kind: 'run.finished', payload: { verdict: 'FAILED' } }]);
    expect(shownStatus('RUNNING', ended)).toBe('FAILED');
    expect(shownStatus('ABORTED', ended)).toBe('ABORTED');
    expect(shownStatus('PENDING', initialRunLive())).toBe('PENDING');
  });
});
