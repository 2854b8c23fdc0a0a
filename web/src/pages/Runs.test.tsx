import { fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { CombinedError } from 'urql';
import { RunsPage } from './Runs';
import { mockClient, opName, renderWith } from './runs/testing';

const now = Date.now();
const iso = (agoMs: number) => new Date(now - agoMs).toISOString();

const runs = [
  {
    id: 'aaaaaaaa-1111-4111-8111-111111111111',
    status: 'RUNNING',
    templateVersion: 3,
    createdBy: 'user:ana@example.com',
    createdAt: iso(5000),
    startedAt: iso(4000),
    endedAt: null,
    resilienceScore: null,
    dryRun: false,
    template: { id: 't1', name: 'checkout-survives-db-loss' },
    delegate: { id: 'd1', name: 'edge-1' },
    schedule: null,
    probeTally: { passed: 3, failed: 1, total: 4 },
  },
  {
    id: 'bbbbbbbb-2222-4222-8222-222222222222',
    status: 'FAILED',
    templateVersion: 1,
    createdBy: 'token:ci',
    createdAt: iso(3_600_000),
    startedAt: iso(3_590_000),
    endedAt: iso(3_578_000),
    resilienceScore: 73.66,
    dryRun: false,
    template: { id: 't2', name: 'web-survives-kill' },
    delegate: { id: 'd2', name: 'edge-2' },
    schedule: null,
    probeTally: { passed: 22, failed: 7, total: 29 },
  },
  {
    id: 'dddddddd-4444-4444-8444-444444444444',
    status: 'PASSED',
    templateVersion: 1,
    createdBy: 'user:ana@example.com',
    createdAt: iso(7_200_000),
    startedAt: iso(7_199_000),
    endedAt: iso(7_198_000),
    // A dry run's score, were the hub to send one, is not shown: nothing was applied.
    resilienceScore: 100,
    dryRun: true,
    template: { id: 't2', name: 'web-survives-kill' },
    delegate: { id: 'd2', name: 'edge-2' },
    schedule: null,
    probeTally: { passed: 0, failed: 0, total: 0 },
  },
];

// Started by a schedule, and one that could not start: no delegate matched.
const scheduled = {
  ...runs[1],
  id: 'eeeeeeee-5555-4555-8555-555555555555',
  status: 'ERROR',
  createdBy: 'schedule:nightly',
  resilienceScore: null,
  delegate: null,
  schedule: { id: 's1', name: 'nightly' },
  probeTally: { passed: 0, failed: 0, total: 0 },
};

const options = {
  templates: [
    { id: 't1', name: 'checkout-survives-db-loss' },
    { id: 't2', name: 'web-survives-kill' },
  ],
};

// A fleet larger than one page: the hub answers the delegate filter's search.
const fleet = Array.from({ length: 250 }, (_, i) => ({ id: `d${i + 1}`, name: `edge-${i + 1}` }));
const suggest = (v: Record<string, unknown>) => ({
  delegates: fleet.filter((d) => !v.search || d.name.includes(v.search as string)).slice(0, 20),
});

describe('RunsPage', () => {
  it('lists runs with status, template link, delegate, score, tally and dry-run marker', () => {
    const { client } = mockClient({ RunsList: { runs }, RunsFilterOptions: options, RunsDelegateSuggest: suggest });
    render(renderWith(<RunsPage />, { client, path: '/runs' }).tree);
    const rows = screen.getAllByTestId('run-row');
    expect(rows).toHaveLength(3);
    const [live, failed, dry] = rows.map((r) => within(r));
    expect(live.getByText('RUNNING')).toBeTruthy();
    expect(live.getByRole('link', { name: 'checkout-survives-db-loss' }).getAttribute('href')).toBe('/templates/t1');
    expect(live.getByText('v3')).toBeTruthy();
    expect(live.getByTestId('run-score').textContent).toBe('–');
    expect(live.getByTestId('run-tally').textContent).toBe('3/4');
    expect(live.queryByText('dry run')).toBeNull();
    expect(live.getByRole('link', { name: `Run ${runs[0].id}` }).getAttribute('href')).toBe(`/runs/${runs[0].id}`);
    expect(failed.getByText('FAILED')).toBeTruthy();
    expect(failed.getByText('edge-2')).toBeTruthy();
    expect(failed.getByText('token:ci')).toBeTruthy();
    expect(failed.getByTestId('run-score').textContent).toBe('73.7');
    expect(failed.getByTestId('run-tally').textContent).toBe('22/29');
    expect(failed.queryByText('dry run')).toBeNull();
    expect(failed.getByText('12 s')).toBeTruthy(); // duration
    // A dry run is PLANNED, never PASSED, and has no score.
    expect(dry.getByText('PLANNED')).toBeTruthy();
    expect(dry.queryByText('PASSED')).toBeNull();
    expect(dry.getByText('dry run')).toBeTruthy();
    expect(dry.getByTestId('run-score').textContent).toBe('–');
    expect(screen.getByRole('status').textContent).toMatch(/Live/); // a run is unfinished: polling
  });

  it('links a scheduled run to its schedule, and shows "none" for a run with no delegate', () => {
    const { client } = mockClient({ RunsList: { runs: [scheduled] }, RunsFilterOptions: options, RunsDelegateSuggest: suggest });
    render(renderWith(<RunsPage />, { client, path: '/runs' }).tree);
    const row = within(screen.getByTestId('run-row'));
    expect(row.getByRole('link', { name: 'schedule: nightly' }).getAttribute('href')).toBe('/schedules/s1');
    expect(row.queryByText('schedule:nightly')).toBeNull();
    expect(row.getByText('none')).toBeTruthy();
  });

  it('lists only a schedule’s runs from ?schedule=, and clears that filter', () => {
    const { client, ops } = mockClient({ RunsList: { runs: [scheduled] }, RunsFilterOptions: options, RunsDelegateSuggest: suggest });
    const { tree, location } = renderWith(<RunsPage />, { client, path: '/runs?schedule=s1' });
    render(tree);
    expect(ops.find((o) => opName(o) === 'RunsList')!.variables).toMatchObject({ scheduleId: 's1' });
    const chip = within(screen.getByTestId('schedule-filter'));
    expect(chip.getByRole('link', { name: 'nightly' }).getAttribute('href')).toBe('/schedules/s1');
    fireEvent.click(chip.getByRole('button', { name: 'Any schedule' }));
    expect(location.history!.at(-1)).toBe('/runs');
    expect(ops.filter((o) => opName(o) === 'RunsList').at(-1)!.variables).toMatchObject({ scheduleId: null });
  });

  it('queries with the filters in the URL', () => {
    const { client, ops } = mockClient({ RunsList: { runs: [] }, RunsFilterOptions: options, RunsDelegateSuggest: suggest });
    render(renderWith(<RunsPage />, { client, path: '/runs?template=t2&status=FAILED,ERROR&delegate=edge-2&window=24h' }).tree);
    const q = ops.find((o) => opName(o) === 'RunsList')!;
    expect(q.variables).toMatchObject({ project: 'default', templateId: 't2', status: ['FAILED', 'ERROR'], delegate: 'edge-2', limit: 50 });
    const since = Date.parse((q.variables as { since: string }).since);
    expect(Math.abs(Date.now() - 86_400_000 - since)).toBeLessThan(60_000);
    expect((screen.getByLabelText('Template') as HTMLSelectElement).value).toBe('t2');
    expect((screen.getByLabelText('Status') as HTMLSelectElement).value).toBe('FAILED,ERROR');
    expect((screen.getByLabelText('Delegate') as HTMLInputElement).value).toBe('edge-2');
    expect((screen.getByLabelText('Time window') as HTMLSelectElement).value).toBe('24h');
    expect(screen.getByText(/No run matches these filters/)).toBeTruthy();
  });

  it('writes chosen filters into the URL and clears them', () => {
    const { client, ops } = mockClient({ RunsList: { runs: [] }, RunsFilterOptions: options, RunsDelegateSuggest: suggest });
    const { tree, location } = renderWith(<RunsPage />, { client, path: '/runs' });
    render(tree);
    fireEvent.change(screen.getByLabelText('Status'), { target: { value: 'PENDING,DISPATCHED,RUNNING,ABORTING' } });
    fireEvent.change(screen.getByLabelText('Delegate'), { target: { value: 'edge-1' } });
    expect(location.history!.at(-1)).toBe('/runs?status=PENDING,DISPATCHED,RUNNING,ABORTING&delegate=edge-1');
    const last = ops.filter((o) => opName(o) === 'RunsList').at(-1)!;
    expect(last.variables).toMatchObject({ status: ['PENDING', 'DISPATCHED', 'RUNNING', 'ABORTING'], delegate: 'edge-1' });
    fireEvent.click(screen.getByRole('button', { name: 'Clear filters' }));
    expect(location.history!.at(-1)).toBe('/runs');
  });

  it('finds delegates beyond the first page by asking the hub, and applies a typed name', async () => {
    const { client, ops } = mockClient({ RunsList: { runs: [] }, RunsFilterOptions: options, RunsDelegateSuggest: suggest });
    const { tree, location } = renderWith(<RunsPage />, { client, path: '/runs' });
    render(tree);
    const box = screen.getByLabelText('Delegate') as HTMLInputElement;
    const suggested = () =>
      Array.from(screen.getByTestId('delegate-suggestions').querySelectorAll('option')).map((o) => o.value);
    await waitFor(() => expect(suggested()).toHaveLength(20));
    expect(suggested()).not.toContain('edge-240');
    // Typing is not yet a filter: the hub is asked for names containing it.
    fireEvent.change(box, { target: { value: 'edge-24' } });
    expect(location.history!.at(-1)).toBe('/runs');
    await waitFor(() => expect(suggested()).toContain('edge-240'));
    const asked = ops.filter((o) => opName(o) === 'RunsDelegateSuggest').at(-1)!;
    expect(asked.variables).toMatchObject({ project: 'default', search: 'edge-24' });
    expect(suggested().every((n) => n.includes('edge-24'))).toBe(true);
    // A suggested name applies as soon as it is picked.
    fireEvent.change(box, { target: { value: 'edge-245' } });
    expect(location.history!.at(-1)).toBe('/runs?delegate=edge-245');
    expect(ops.filter((o) => opName(o) === 'RunsList').at(-1)!.variables).toMatchObject({ delegate: 'edge-245' });
    // Any name typed applies on Enter (a delegate gone from the fleet still has runs).
    fireEvent.change(box, { target: { value: 'retired-7' } });
    fireEvent.keyDown(box, { key: 'Enter' });
    expect(location.history!.at(-1)).toBe('/runs?delegate=retired-7');
    // An emptied box is every delegate again.
    fireEvent.change(box, { target: { value: '' } });
    expect(location.history!.at(-1)).toBe('/runs');
  });

  it('shows an empty state without runs, and the error when the query fails', () => {
    const ok = mockClient({ RunsList: { runs: [] }, RunsFilterOptions: options, RunsDelegateSuggest: suggest });
    const first = render(renderWith(<RunsPage />, { client: ok.client, path: '/runs' }).tree);
    expect(screen.getByText(/No runs yet/)).toBeTruthy();
    first.unmount();
    const bad = mockClient({
      RunsList: new CombinedError({ graphQLErrors: [{ message: 'no such project', extensions: { code: 'NOT_FOUND' } }] }),
      RunsFilterOptions: options, RunsDelegateSuggest: suggest,
    });
    render(renderWith(<RunsPage />, { client: bad.client, path: '/runs' }).tree);
    expect(screen.getByRole('alert').textContent).toContain('no such project (NOT_FOUND)');
  });
  it('compares two ticked runs, the older as the baseline A', () => {
    // Same template: the failed run (an hour ago) and a newer one of t2.
    const newer = { ...runs[1], id: 'ffffffff-6666-4666-8666-666666666666', status: 'PASSED', createdAt: iso(60_000), resilienceScore: 90 };
    const { client } = mockClient({ RunsList: { runs: [newer, ...runs] }, RunsFilterOptions: options, RunsDelegateSuggest: suggest });
    const { tree, location } = renderWith(<RunsPage />, { client, path: '/runs' });
    render(tree);
    const compare = screen.getByRole('button', { name: 'Compare' });
    expect((compare as HTMLButtonElement).disabled).toBe(true);
    // Ticking the newer run first: the order ticked does not decide which is A.
    fireEvent.click(screen.getByRole('checkbox', { name: 'Compare run ffffffff' }));
    expect(location.history!.at(-1)).toBe('/runs'); // ticking is not opening the run
    expect(screen.getByTestId('compare-hint').textContent).toMatch(/tick one more/);
    expect((compare as HTMLButtonElement).disabled).toBe(true);
    fireEvent.click(screen.getByRole('checkbox', { name: 'Compare run bbbbbbbb' }));
    expect((compare as HTMLButtonElement).disabled).toBe(false);
    expect(screen.getByTestId('compare-hint').textContent).toBe('2 runs ticked.');
    // Two at most: the others wait until one is unticked.
    expect((screen.getByRole('checkbox', { name: 'Compare run aaaaaaaa' }) as HTMLInputElement).disabled).toBe(true);
    fireEvent.click(compare);
    expect(location.history!.at(-1)).toBe(`/runs/compare?a=${runs[1].id}&b=${newer.id}`);
  });

  it('warns when the ticked runs are of different templates, and clears the ticks', () => {
    const { client } = mockClient({ RunsList: { runs }, RunsFilterOptions: options, RunsDelegateSuggest: suggest });
    render(renderWith(<RunsPage />, { client, path: '/runs' }).tree);
    fireEvent.click(screen.getByRole('checkbox', { name: 'Compare run aaaaaaaa' }));
    fireEvent.click(screen.getByRole('checkbox', { name: 'Compare run bbbbbbbb' }));
    expect(screen.getByTestId('compare-hint').textContent).toMatch(/different templates/);
    expect((screen.getByRole('button', { name: 'Compare' }) as HTMLButtonElement).disabled).toBe(false);
    fireEvent.click(screen.getByRole('button', { name: 'Clear' }));
    expect(screen.getAllByRole('checkbox').every((c) => !(c as HTMLInputElement).checked && !(c as HTMLInputElement).disabled)).toBe(true);
    expect((screen.getByRole('button', { name: 'Compare' }) as HTMLButtonElement).disabled).toBe(true);
  });
});
