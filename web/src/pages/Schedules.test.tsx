import { fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { SchedulesPage } from './Schedules';
import { browserZone, formatInZone } from './schedules/cron';
import { fakeHub, Wrap, type Handlers } from './templates/testClient';

// A zone other than this machine's, so both are shown.
const ZONE = browserZone() === 'Asia/Tokyo' ? 'America/New_York' : 'Asia/Tokyo';
const NEXT = new Date(Date.now() + 3_600_000).toISOString();
const RUN = 'aaaaaaaa-1111-4111-8111-111111111111';

const schedules = [
  {
    id: 's1',
    name: 'nightly-kill',
    cron: '0 2 * * *',
    description: 'At 02:00',
    timezone: ZONE,
    concurrency: 'FORBID',
    enabled: true,
    nextFireAt: NEXT,
    template: { id: 't1', name: 'web-survives-kill' },
    lastFire: { dueAt: new Date(Date.now() - 86_400_000).toISOString(), outcome: 'STARTED', reason: null, missedCount: 1, runId: RUN },
  },
  {
    id: 's2',
    name: 'hourly-loss',
    cron: '0 * * * *',
    description: 'Every hour',
    timezone: 'UTC',
    concurrency: 'QUEUE',
    enabled: false,
    nextFireAt: null,
    template: { id: 't2', name: 'db-loss' },
    lastFire: {
      dueAt: new Date(Date.now() - 3_600_000).toISOString(),
      outcome: 'SKIPPED',
      reason: 'run bbbbbbbb is unfinished',
      missedCount: 1,
      runId: null,
    },
  },
];

function setup(role: 'OWNER' | 'EDITOR' | 'VIEWER', extra: Handlers = {}) {
  const seen: { name: string; variables: Record<string, unknown> }[] = [];
  const client = fakeHub(
    {
      SchedulesList: () => ({ schedules }),
      SchedulePause: (v) => ({ pauseSchedule: { id: v.id, enabled: false, nextFireAt: null } }),
      ScheduleResume: (v) => ({ resumeSchedule: { id: v.id, enabled: true, nextFireAt: NEXT } }),
      ScheduleDelete: () => ({ deleteSchedule: true }),
      ...extra,
    },
    seen,
  );
  render(
    <Wrap client={client} role={role}>
      <SchedulesPage />
    </Wrap>,
  );
  return seen;
}

describe('SchedulesPage', () => {
  it('lists schedules: template link, cron and its words, next fire in both zones, last fire', async () => {
    setup('VIEWER');
    const rows = await screen.findAllByTestId('schedule-row');
    expect(rows).toHaveLength(2);
    const [nightly, hourly] = rows.map((r) => within(r));
    expect(nightly.getByRole('link', { name: 'nightly-kill' }).getAttribute('href')).toBe('/schedules/s1');
    expect(nightly.getByRole('link', { name: 'web-survives-kill' }).getAttribute('href')).toBe('/templates/t1');
    expect(nightly.getByText('0 2 * * *')).toBeTruthy();
    expect(nightly.getByText('At 02:00')).toBeTruthy();
    // The next fire in the viewer's zone and in the schedule's.
    const next = nightly.getByTestId('next-fire-at');
    expect(next.querySelector(`[data-zone="${browserZone()}"]`)?.textContent).toBe(formatInZone(NEXT, browserZone()));
    expect(next.querySelector(`[data-zone="${ZONE}"]`)?.textContent).toContain(`${formatInZone(NEXT, ZONE)} in ${ZONE}`);
    expect(formatInZone(NEXT, ZONE)).not.toBe(formatInZone(NEXT, browserZone()));
    expect(nightly.getByText('forbid')).toBeTruthy();
    // The last fire's outcome, its run linked; a skipped one says why.
    expect(nightly.getByText('STARTED')).toBeTruthy();
    expect(nightly.getByRole('link', { name: `Run ${RUN}` }).getAttribute('href')).toBe(`/runs/${RUN}`);
    expect(nightly.getByText('enabled')).toBeTruthy();
    expect(hourly.getByText('SKIPPED')).toBeTruthy();
    expect(hourly.getByText(/run bbbbbbbb is unfinished/)).toBeTruthy();
    expect(hourly.getAllByText('paused')).toHaveLength(2); // no next fire, and its state
    expect(hourly.getByText('queue')).toBeTruthy();
  });

  it('shows viewers no buttons', async () => {
    setup('VIEWER');
    await screen.findAllByTestId('schedule-row');
    expect(screen.queryByRole('button', { name: /Pause|Resume|Delete/ })).toBeNull();
    expect(screen.queryByRole('link', { name: 'New schedule' })).toBeNull();
  });

  it('gives editors Pause on an enabled schedule and Resume on a paused one', async () => {
    const seen = setup('EDITOR');
    await screen.findAllByTestId('schedule-row');
    expect(screen.getByRole('link', { name: 'New schedule' }).getAttribute('href')).toBe('/schedules/new');
    fireEvent.click(screen.getByRole('button', { name: 'Pause nightly-kill' }));
    fireEvent.click(screen.getByRole('button', { name: 'Resume hourly-loss' }));
    expect(screen.queryByRole('button', { name: 'Resume nightly-kill' })).toBeNull();
    await waitFor(() => expect(seen.filter((s) => s.name === 'SchedulePause' || s.name === 'ScheduleResume')).toHaveLength(2));
    expect(seen.find((s) => s.name === 'SchedulePause')?.variables).toEqual({ id: 's1' });
    expect(seen.find((s) => s.name === 'ScheduleResume')?.variables).toEqual({ id: 's2' });
    // Each change reloads the list.
    await waitFor(() => expect(seen.filter((s) => s.name === 'SchedulesList').length).toBeGreaterThanOrEqual(3));
  });

  it('deletes only after a confirmation', async () => {
    const seen = setup('EDITOR');
    await screen.findAllByTestId('schedule-row');
    fireEvent.click(screen.getByRole('button', { name: 'Delete hourly-loss' }));
    const dialog = screen.getByRole('dialog', { name: 'Delete the schedule hourly-loss?' });
    expect(seen.some((s) => s.name === 'ScheduleDelete')).toBe(false);
    fireEvent.click(within(dialog).getByRole('button', { name: 'Delete schedule' }));
    await waitFor(() => expect(seen.find((s) => s.name === 'ScheduleDelete')?.variables).toEqual({ id: 's2' }));
    await waitFor(() => expect(screen.queryByRole('dialog')).toBeNull());
  });

  it('says when there is none', async () => {
    setup('EDITOR', { SchedulesList: () => ({ schedules: [] }) });
    expect(await screen.findByText(/No schedule in default yet/)).toBeTruthy();
    expect(screen.getByRole('link', { name: 'Create one' }).getAttribute('href')).toBe('/schedules/new');
  });
});
