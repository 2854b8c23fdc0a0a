import { fireEvent, render, screen, within } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { CombinedError } from 'urql';
import ComparePage from './Compare';
import { mockClient, opName, renderWith } from './runs/testing';

const A = 'aaaaaaaa-1111-4111-8111-111111111111';
const B = 'bbbbbbbb-2222-4222-8222-222222222222';

const checks = (probe: string, phase: string, latencies: number[], failed = 0) => [
  ...latencies.map((latencyMs) => ({ probe, phase, ok: true, latencyMs })),
  ...Array.from({ length: failed }, () => ({ probe, phase, ok: false, latencyMs: 0.2 })),
];

function run(over: Record<string, unknown>) {
  return {
    id: A,
    status: 'FAILED',
    templateVersion: 3,
    gitCommit: null,
    createdAt: '2026-03-01T10:00:00Z',
    startedAt: '2026-03-01T10:00:01Z',
    endedAt: '2026-03-01T10:01:01Z',
    resilienceScore: 70,
    recoveryMs: 4000,
    reason: null,
    dryRun: false,
    template: { id: 't1', name: 'web-survives-kill' },
    delegate: { id: 'd1', name: 'edge-1' },
    probeTally: { passed: 18, failed: 2, total: 20 },
    latency: [{ probe: 'web-ok', summary: 'latency rose from 10 ms to 300 ms, p < 0.001', significant: true }],
    probeResults: [...checks('web-ok', 'before', [10, 10, 10, 12]), ...checks('web-ok', 'during', [200, 250, 300, 400], 2)],
    ...over,
  };
}

// B: the same template after a change: passes, a better score, faster recovery; but slower
// before the faults.
const runA = run({});
const runB = run({
  id: B,
  status: 'PASSED',
  templateVersion: 4,
  createdAt: '2026-03-02T10:00:00Z',
  startedAt: '2026-03-02T10:00:01Z',
  endedAt: '2026-03-02T10:01:01Z',
  resilienceScore: 95,
  recoveryMs: 1000,
  probeTally: { passed: 20, failed: 0, total: 20 },
  latency: [],
  probeResults: [...checks('web-ok', 'before', [20, 20, 20, 25]), ...checks('web-ok', 'during', [20, 22, 25, 30])],
});

const byId = (runs: Record<string, unknown>[]) => (v: Record<string, unknown>) => {
  const r = runs.find((x) => x.id === v.id);
  return r ? { run: r } : new CombinedError({ graphQLErrors: [{ message: `run ${v.id} not found`, extensions: { code: 'NOT_FOUND' } }] });
};

function open(path: string, runs: Record<string, unknown>[]) {
  const m = mockClient({ CompareRun: byId(runs) });
  const { tree, location } = renderWith(<ComparePage />, { client: m.client, path });
  render(tree);
  return { ...m, location };
}

/** The change cell of a summary row, or of a probe's row. */
function change(row: HTMLElement) {
  const cell = row.querySelector('td.delta') as HTMLElement;
  return { direction: cell.getAttribute('data-direction'), text: cell.textContent };
}
const summaryRow = (measure: string) => screen.getByTestId('compare-summary').querySelector(`tr[data-measure="${measure}"]`) as HTMLElement;

describe('ComparePage', () => {
  it('reads both runs from the deep link and shows the template versions', () => {
    const { ops } = open(`/runs/compare?a=${A}&b=${B}`, [runA, runB]);
    expect(ops.filter((o) => opName(o) === 'CompareRun').map((o) => o.variables?.id)).toEqual([A, B]);
    const head = within(screen.getByTestId('compare-summary'));
    expect(head.getByRole('link', { name: `Run A ${A}` }).getAttribute('href')).toBe(`/runs/${A}`);
    expect(head.getByRole('link', { name: `Run B ${B}` }).getAttribute('href')).toBe(`/runs/${B}`);
    const template = within(summaryRow('template'));
    expect(template.getByText('v3')).toBeTruthy();
    expect(template.getByText('v4')).toBeTruthy();
    expect(template.getByText('template changed: v3 → v4')).toBeTruthy();
    expect(screen.queryByTestId('note-templates')).toBeNull();
  });

  it('shows each difference with its direction, as an arrow and a word', () => {
    open(`/runs/compare?a=${A}&b=${B}`, [runA, runB]);
    expect(change(summaryRow('verdict'))).toEqual({ direction: 'better', text: '▲ now passes (better)' });
    expect(summaryRow('score').querySelectorAll('td')[0].textContent).toBe('70.0');
    expect(summaryRow('score').querySelectorAll('td')[1].textContent).toBe('95.0');
    expect(change(summaryRow('score'))).toEqual({ direction: 'better', text: '▲ +25.0 (better)' });
    expect(change(summaryRow('recovery'))).toEqual({ direction: 'better', text: '▼ −3.00 s (better)' });
    expect(change(summaryRow('checks'))).toEqual({ direction: 'better', text: '▼ −10.0 pts (better)' });

    const probe = screen.getByRole('region', { name: 'Probe web-ok' });
    const row = (phase: string, measure: string) => probe.querySelector(`tr[data-phase="${phase}"][data-measure="${measure}"]`) as HTMLElement;
    // Slower before the faults (10 → 20 ms): worse, in red words too.
    expect(change(row('before', 'p50'))).toEqual({ direction: 'worse', text: '▲ +10 ms (worse)' });
    expect(row('before', 'p50').querySelector('td.delta')!.className).toContain('delta-worse');
    // Much faster during them, and no failures any more.
    expect(change(row('during', 'p95'))).toEqual({ direction: 'better', text: '▼ −370 ms (better)' });
    expect(row('during', 'failed').querySelectorAll('td')[0].textContent).toBe('2 of 6 (33.3 %)');
    expect(change(row('during', 'failed')).direction).toBe('better');
    expect(change(row('before', 'failed'))).toEqual({ direction: 'same', text: '= no change' });
    // No checks after the faults in either run: no such rows.
    expect(row('after', 'p50')).toBeNull();
    // The hub's latency verdict, where a run has one.
    expect(within(probe).getByText('A: latency rose from 10 ms to 300 ms, p < 0.001')).toBeTruthy();
  });

  it('handles a run without a score: aborted, with the difference not judged', () => {
    const aborted = run({ id: B, status: 'ABORTED', createdAt: '2026-03-02T10:00:00Z', resilienceScore: null, recoveryMs: null, probeResults: [] });
    open(`/runs/compare?a=${A}&b=${B}`, [runA, aborted]);
    expect(summaryRow('score').querySelectorAll('td')[1].textContent).toBe('— (aborted)');
    expect(change(summaryRow('score'))).toEqual({ direction: 'none', text: 'no score to compare' });
    expect(change(summaryRow('verdict'))).toEqual({ direction: 'none', text: 'not comparable' });
    expect(change(summaryRow('recovery')).direction).toBe('none');
    // A's probe still shows; B has nothing there.
    const probe = screen.getByRole('region', { name: 'Probe web-ok' });
    const p50 = probe.querySelector('tr[data-phase="before"][data-measure="p50"]')!;
    expect(p50.querySelectorAll('td')[1].textContent).toBe('–');
    expect(p50.querySelector('td.delta')!.getAttribute('data-direction')).toBe('none');
  });

  it('warns about different templates and about a run still going', () => {
    const other = run({ id: B, status: 'RUNNING', endedAt: null, resilienceScore: null, template: { id: 't2', name: 'db-failover' } });
    open(`/runs/compare?a=${A}&b=${B}`, [runA, other]);
    expect(screen.getByTestId('note-templates').textContent).toContain('web-survives-kill and db-failover');
    expect(screen.getByTestId('note-unfinished').textContent).toMatch(/^Run B has not finished/);
    expect(summaryRow('score').querySelectorAll('td')[1].textContent).toBe('— (not finished)');
    expect(within(summaryRow('template')).getByText('different templates')).toBeTruthy();
  });

  it('says which run is missing', () => {
    open(`/runs/compare?a=${A}&b=${B}`, [runA]);
    expect(screen.getByRole('alert').textContent).toMatch(/^Run B bbbbbbbb not found/);
  });

  it('swaps A and B', () => {
    const { location } = open(`/runs/compare?a=${A}&b=${B}`, [runA, runB]);
    fireEvent.click(screen.getByRole('button', { name: 'Swap A and B' }));
    expect(location.history!.at(-1)).toBe(`/runs/compare?a=${B}&b=${A}`);
  });

  it('asks for two runs when the link names fewer', () => {
    const { ops } = open(`/runs/compare?a=${A}`, [runA]);
    expect(screen.getByText(/Choose two runs/)).toBeTruthy();
    expect(ops).toHaveLength(0);
  });
});
