import { render, screen, within } from '@testing-library/react';
import { describe, expect, it, vi } from 'vitest';
import TrendsPage from './Trends';
import { mockClient, opName, renderWith } from './runs/testing';
import type { ChartData } from './runs/trends';

// uPlot needs a canvas: the chart is replaced by what it was given.
vi.mock('./runs/TrendChart', () => ({
  TrendChart: ({ chart }: { chart: ChartData }) => (
    <div data-testid="trend-chart">{chart.series.map((s) => s.label).join('|')}</div>
  ),
}));

const A = { id: 'a', name: 'alpha' };
const B = { id: 'b', name: 'beta' };
const runs = [
  { id: 'r3', resilienceScore: 90, endedAt: '2026-03-02T08:00:00Z', template: A },
  { id: 'r2', resilienceScore: 60, endedAt: '2026-03-01T10:00:00Z', template: B },
  { id: 'r1', resilienceScore: 70, endedAt: '2026-03-01T09:00:00Z', template: A },
];

describe('TrendsPage', () => {
  it('charts every template and the project, and tabulates latest/mean/min/runs', () => {
    const { client, ops } = mockClient({ TrendsRuns: { runs }, TrendsTemplates: { templates: [A, B] } });
    render(renderWith(<TrendsPage />, { client, path: '/trends' }).tree);
    expect(ops.find((o) => opName(o) === 'TrendsRuns')?.variables).toMatchObject({ project: 'default' });
    expect(screen.getByTestId('trend-chart').textContent).toBe('alpha|beta|Project (daily mean)');
    const rows = within(screen.getByTestId('trend-table')).getAllByRole('row').slice(1);
    expect(rows.map((r) => [...r.querySelectorAll('td')].slice(0, 5).map((td) => td.textContent))).toEqual([
      ['alpha', '90.0', '80.0', '70.0', '2'],
      ['beta', '60.0', '60.0', '60.0', '1'],
    ]);
  });

  it('charts only the chosen template (from its own query) beside the project line', () => {
    const { client, ops } = mockClient({
      TrendsRuns: (v: Record<string, unknown>) => ({ runs: v.templateId ? runs.filter((r) => r.template.id === v.templateId) : runs }),
      TrendsTemplates: { templates: [A, B] },
    });
    render(renderWith(<TrendsPage />, { client, path: '/trends?template=b' }).tree);
    expect(ops.some((o) => opName(o) === 'TrendsRuns' && o.variables?.templateId === 'b')).toBe(true);
    expect(screen.getByTestId('trend-chart').textContent).toBe('beta|Project (daily mean)');
    expect((screen.getByLabelText('Template') as HTMLSelectElement).value).toBe('b');
  });

  it('says so when no run has finished', () => {
    const { client } = mockClient({ TrendsRuns: { runs: [] }, TrendsTemplates: { templates: [A] } });
    render(renderWith(<TrendsPage />, { client, path: '/trends' }).tree);
    expect(screen.getByText(/No finished runs yet/)).toBeTruthy();
    expect(screen.queryByTestId('trend-chart')).toBeNull();
  });
});
